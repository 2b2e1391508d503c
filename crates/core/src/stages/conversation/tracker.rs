//! The conversations of an upload as its items stream past in order: each conversation's last
//! messages, its users and their ages, and the riskiest window seen, kept in bounded memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::model::{
    AgeGroup, Conversation, ConversationCount, ConversationSignal, Item, SignalKind, ThreadLine,
};
use crate::text::signals::stated_age;

use super::risk::{age_factor, history_factor, risk};
use super::{ConversationConfig, UserContexts};

/// A conversation with no signal in its window keeps only this many lines: the context an
/// arc's first signal is read with.
const QUIET_LINES: usize = 5;
/// A thread line's text is cut here: the view and the prompt need the gist, not a wall.
const LINE_CHARS: usize = 500;
/// Users listed per conversation (a world chat has thousands).
const MAX_USERS: usize = 50;
/// Messages without a user are one speaker.
const NO_USER: &str = "(unknown)";

struct Line {
    item: String,
    user: String,
    text: String,
    kinds: Vec<SignalKind>,
}

/// The riskiest window of one conversation so far.
struct Snapshot {
    risk: f64,
    user: String,
    signals: Vec<ConversationSignal>,
    evidence: Vec<String>,
    thread: Vec<ThreadLine>,
}

#[derive(Default)]
struct Conv {
    lines: VecDeque<Line>,
    users: BTreeSet<String>,
    /// Bands as given, and ages as said in the chat ("im 12") where no band was given.
    bands: BTreeMap<String, String>,
    said: BTreeMap<String, AgeGroup>,
    /// Who asked an age last, so that a bare "12" after it is read as an answer.
    probe_by: Option<String>,
    best: Option<Snapshot>,
}

impl Conv {
    fn group(&self, user: &str) -> AgeGroup {
        match self.bands.get(user) {
            Some(band) => AgeGroup::of_band(Some(band)),
            None => self.said.get(user).copied().unwrap_or(AgeGroup::Unknown),
        }
    }
}

/// Follows an upload's conversations; [`Tracker::finish`] gives those over the gate.
pub struct Tracker {
    cfg: ConversationConfig,
    convs: HashMap<String, Conv>,
    /// Conversation ids in order of first message, so the result does not depend on hashing.
    order: Vec<String>,
}

impl Tracker {
    pub fn new(cfg: ConversationConfig) -> Self {
        Tracker {
            cfg,
            convs: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// Take in the next item of the upload (in upload order).
    pub fn observe(&mut self, item: &Item) {
        let key = item.conversation.clone().unwrap_or_default();
        if !self.convs.contains_key(&key) {
            self.order.push(key.clone());
        }
        let users = &self.cfg.users;
        let conv = self.convs.entry(key).or_default();
        let user = item.user.clone().unwrap_or_else(|| NO_USER.to_string());
        if conv.users.len() < MAX_USERS {
            conv.users.insert(user.clone());
        }
        let band = item
            .age_band
            .clone()
            .or_else(|| users.get(&user).and_then(|c| c.age_band.clone()));
        let mut learned = false;
        if let Some(band) = band {
            if !conv.bands.contains_key(&user) {
                conv.bands.insert(user.clone(), band);
                learned = true;
            }
        }
        let answering = conv.probe_by.as_ref().is_some_and(|p| *p != user);
        if let Some(group) = stated_age(&item.text, answering) {
            if !conv.said.contains_key(&user) {
                conv.said.insert(user.clone(), group);
                learned = true;
            }
        }
        if item.signals.contains(&SignalKind::AgeProbe) {
            conv.probe_by = Some(user.clone());
        } else if answering {
            conv.probe_by = None;
        }
        conv.lines.push_back(Line {
            item: item.id.clone(),
            user,
            text: item.text.chars().take(LINE_CHARS).collect(),
            kinds: item.signals.clone(),
        });
        let window = self.cfg.window.max(1);
        while conv.lines.len() > window {
            conv.lines.pop_front();
        }
        if conv.lines.iter().all(|l| l.kinds.is_empty()) {
            while conv.lines.len() > QUIET_LINES {
                conv.lines.pop_front();
            }
        }
        // An age learned after the signals (the child says "im 12" later) changes their weight.
        let signalled = conv.lines.iter().any(|l| !l.kinds.is_empty());
        if !item.signals.is_empty() || (learned && signalled) {
            reassess(conv, users);
        }
    }

    /// Every conversation counted, and those at or over the gate, riskiest first. A message
    /// with no conversation belongs to `default_id` (the upload, or the conversation a user
    /// report names).
    pub fn finish(self, default_id: &str) -> (Vec<Conversation>, ConversationCount) {
        let mut count = ConversationCount {
            assessed: self.order.len() as u64,
            ..Default::default()
        };
        let mut convs = self.convs;
        let mut out = Vec::new();
        for key in self.order {
            let Some(conv) = convs.remove(&key) else {
                continue;
            };
            let Some(best) = conv.best.filter(|b| b.risk >= self.cfg.threshold) else {
                continue;
            };
            count.over_threshold += 1;
            let id = if key.is_empty() {
                default_id.to_string()
            } else {
                key
            };
            let mut ages = conv.bands;
            for (user, group) in conv.said {
                if let std::collections::btree_map::Entry::Vacant(e) = ages.entry(user) {
                    let said = match group {
                        AgeGroup::Minor => "under 18 (said in chat)",
                        AgeGroup::Adult => "18+ (said in chat)",
                        AgeGroup::Unknown => continue,
                    };
                    e.insert(said.to_string());
                }
            }
            out.push(Conversation {
                id,
                users: conv.users.into_iter().collect(),
                risk: (best.risk * 1000.0).round() / 1000.0,
                verdict: None,
                signals: best.signals,
                evidence: best.evidence,
                evaluation: None,
                user: Some(best.user).filter(|u| u != NO_USER),
                ages,
                thread: best.thread,
            });
        }
        out.sort_by(|a, b| b.risk.total_cmp(&a.risk));
        (out, count)
    }
}

/// The risk of the window as it stands; kept when it is the highest yet.
fn reassess(conv: &mut Conv, users: &UserContexts) {
    let mut per_user: BTreeMap<&str, BTreeMap<SignalKind, u32>> = BTreeMap::new();
    for line in &conv.lines {
        for k in &line.kinds {
            *per_user
                .entry(&line.user)
                .or_default()
                .entry(*k)
                .or_insert(0) += 1;
        }
    }
    let mut top: Option<(f64, &str)> = None;
    for (user, kinds) in &per_user {
        let others: Vec<AgeGroup> = conv
            .users
            .iter()
            .filter(|u| u.as_str() != *user)
            .map(|u| conv.group(u))
            .collect();
        let factor = age_factor(conv.group(user), &others) * history_factor(users.get(user));
        let r = risk(kinds, factor);
        if top.is_none_or(|(best, _)| r > best) {
            top = Some((r, user));
        }
    }
    let Some((r, user)) = top else { return };
    if conv.best.as_ref().is_some_and(|b| b.risk >= r) {
        return;
    }
    let snapshot = Snapshot {
        risk: r,
        user: user.to_string(),
        signals: conv
            .lines
            .iter()
            .flat_map(|l| {
                l.kinds.iter().map(|k| ConversationSignal {
                    name: k.as_str().to_string(),
                    item: l.item.clone(),
                })
            })
            .collect(),
        evidence: conv
            .lines
            .iter()
            .filter(|l| l.user == user && !l.kinds.is_empty())
            .map(|l| l.item.clone())
            .collect(),
        thread: conv
            .lines
            .iter()
            .map(|l| ThreadLine {
                item: l.item.clone(),
                user: Some(l.user.clone()).filter(|u| u != NO_USER),
                text: l.text.clone(),
            })
            .collect(),
    };
    conv.best = Some(snapshot);
}
