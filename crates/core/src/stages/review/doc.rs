//! The review document of one report (`review/reports/<id>.json`): its items that need or had a
//! person, each with every decision, undo and appeal applied. Pure steps; the store and the
//! compare-and-swap loop are in `store.rs`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{
    Appeal, AppealState, AppealView, Decision, DecisionView, HumanVerdict, Item, Report, Source,
    StageDocument, Undo, Verdict,
};

pub const REVIEW_SCHEMA: &str = "moderation.review/v1";
/// Characters of an item's text kept in the queue; the report has the rest.
const TEXT_CHARS: usize = 2_000;

/// Where an item stands for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Waiting for a first decision.
    Open,
    Decided,
    /// Handed on: waiting for someone more senior.
    Escalated,
    /// Appealed: waiting for a person to look again.
    Appeal,
}

impl QueueState {
    pub const ALL: [QueueState; 4] = [
        QueueState::Open,
        QueueState::Decided,
        QueueState::Escalated,
        QueueState::Appeal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Open => "open",
            QueueState::Decided => "decided",
            QueueState::Escalated => "escalated",
            QueueState::Appeal => "appeal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

/// How many items of a report (or a page of reports) are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub open: u64,
    pub decided: u64,
    pub escalated: u64,
    pub appeal: u64,
}

impl StateCounts {
    pub fn get(&self, s: QueueState) -> u64 {
        match s {
            QueueState::Open => self.open,
            QueueState::Decided => self.decided,
            QueueState::Escalated => self.escalated,
            QueueState::Appeal => self.appeal,
        }
    }

    fn bump(&mut self, s: QueueState) {
        let slot = match s {
            QueueState::Open => &mut self.open,
            QueueState::Decided => &mut self.decided,
            QueueState::Escalated => &mut self.escalated,
            QueueState::Appeal => &mut self.appeal,
        };
        *slot += 1;
    }

    pub fn add(&mut self, o: &StateCounts) {
        self.open += o.open;
        self.decided += o.decided;
        self.escalated += o.escalated;
        self.appeal += o.appeal;
    }
}

/// One item as people see it in the queue, and everything they did about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewEntry {
    pub item_id: String,
    /// The automatic verdict, never changed here.
    pub verdict: Verdict,
    /// Categories over the gate, and rule categories, highest first.
    pub categories: Vec<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    pub toxicity: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// The models behind the automatic verdict.
    #[serde(default)]
    pub models: Vec<String>,
    /// Put in the queue by its automatic verdict (not only by a person deciding on it).
    pub queued: bool,
    pub state: Option<QueueState>,
    /// Every decision, oldest first; undone ones are listed in `undone`.
    #[serde(default)]
    pub decisions: Vec<Decision>,
    #[serde(default)]
    pub undone: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appeal: Option<Appeal>,
}

impl ReviewEntry {
    /// The entry for `item`; `queued` when its automatic verdict needs a person.
    pub fn of(item: &Item, threshold: f64) -> Self {
        let verdict = item.verdict.unwrap_or(Verdict::NeedsReview);
        let queued = needs_person(verdict);
        let mut categories: Vec<String> = item
            .categories
            .ranked()
            .into_iter()
            .filter(|(_, s)| *s >= threshold)
            .map(|(c, _)| c.as_str().to_string())
            .collect();
        for hit in &item.rule_hits {
            if !categories.iter().any(|c| c == hit.category()) {
                categories.push(hit.category().to_string());
            }
        }
        let models = item.evaluation.iter().map(|e| e.model.clone()).collect();
        ReviewEntry {
            item_id: item.id.clone(),
            verdict,
            categories,
            text: item.text.chars().take(TEXT_CHARS).collect(),
            user: item.user.clone(),
            conversation: item.conversation.clone(),
            toxicity: item.toxicity,
            start_time: item.start_time,
            end_time: item.end_time,
            models,
            queued,
            state: queued.then_some(QueueState::Open),
            decisions: Vec::new(),
            undone: Vec::new(),
            appeal: None,
        }
    }

    /// The latest decision not taken back.
    pub fn standing(&self) -> Option<&Decision> {
        self.decisions
            .iter()
            .rev()
            .find(|d| !self.undone.contains(&d.id))
    }

    /// What the queue shows for the entry now.
    fn derive_state(&self) -> Option<QueueState> {
        if self
            .appeal
            .as_ref()
            .is_some_and(|a| a.state == AppealState::Open)
        {
            return Some(QueueState::Appeal);
        }
        match self.standing().map(|d| d.verdict) {
            Some(HumanVerdict::Escalated) => Some(QueueState::Escalated),
            Some(_) => Some(QueueState::Decided),
            None if self.queued || !self.decisions.is_empty() => Some(QueueState::Open),
            None => None,
        }
    }

    pub fn decision_view(&self) -> Option<DecisionView> {
        self.standing().map(DecisionView::from)
    }

    pub fn appeal_view(&self) -> Option<AppealView> {
        self.appeal.as_ref().map(AppealView::from)
    }
}

/// What a decision does to an open appeal: a final verdict settles it, escalating does not.
fn settle(v: HumanVerdict) -> Option<AppealState> {
    match v {
        HumanVerdict::Violation => Some(AppealState::Upheld),
        HumanVerdict::NoViolation => Some(AppealState::Overturned),
        HumanVerdict::Escalated => None,
    }
}

/// Whether an automatic verdict puts an item in front of a person.
pub fn needs_person(v: Verdict) -> bool {
    matches!(v, Verdict::Violation | Verdict::NeedsReview)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewDoc {
    pub schema: String,
    pub report_id: String,
    /// The report's own time: the queue is oldest first by it.
    pub created_at: String,
    pub source: Source,
    /// The queue page listing this report, if it is listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_page: Option<u64>,
    /// Grows with every change, so a copy of the counts (the queue page) is only replaced by
    /// a newer one.
    pub seq: u64,
    pub entries: Vec<ReviewEntry>,
}

impl ReviewDoc {
    pub fn new<I>(report: &Report<I>) -> Self {
        Self::with(&report.report_id, &report.created_at, &report.source)
    }

    /// For a report none of whose items was flagged (a person decides on one anyway).
    pub fn of_document<I>(doc: &StageDocument<I>) -> Self {
        Self::with(&doc.id, &doc.created_at, &doc.source)
    }

    /// A document holding nothing yet, to try a change on.
    pub fn empty(report_id: &str) -> Self {
        Self::with(
            report_id,
            "",
            &Source::new("", crate::model::SourceKind::Text),
        )
    }

    fn with(report_id: &str, created_at: &str, source: &Source) -> Self {
        ReviewDoc {
            schema: REVIEW_SCHEMA.into(),
            report_id: report_id.to_string(),
            created_at: created_at.to_string(),
            source: source.clone(),
            queue_page: None,
            seq: 0,
            entries: Vec::new(),
        }
    }

    pub fn entry(&self, item_id: &str) -> Option<&ReviewEntry> {
        self.entries.iter().find(|e| e.item_id == item_id)
    }

    fn entry_mut(&mut self, item_id: &str) -> Result<&mut ReviewEntry> {
        self.entries
            .iter_mut()
            .find(|e| e.item_id == item_id)
            .ok_or_else(|| Error::Unknown {
                what: "item",
                id: item_id.to_string(),
            })
    }

    pub fn counts(&self) -> StateCounts {
        let mut c = StateCounts::default();
        for s in self.entries.iter().filter_map(|e| e.state) {
            c.bump(s);
        }
        c
    }

    /// Categories of the items that are in the queue, for the queue's category filter.
    pub fn categories(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.entries.iter().filter(|e| e.state.is_some()) {
            for c in &e.categories {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        out
    }

    pub fn conversations(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.entries.iter().filter_map(|e| e.conversation.as_ref()) {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }

    /// Record `d`. An open appeal is settled by a final verdict (upheld or overturned);
    /// escalating leaves it open.
    pub fn apply_decision(&mut self, d: &Decision) -> Result<()> {
        let e = self.entry_mut(&d.item_id)?;
        if e.decisions.iter().any(|x| x.id == d.id) {
            return Ok(()); // the same record applied twice (a retried swap)
        }
        e.decisions.push(d.clone());
        if let Some(a) = e.appeal.as_mut().filter(|a| a.state == AppealState::Open) {
            if let Some(s) = settle(d.verdict) {
                a.state = s;
                a.settled_by = Some(d.id.clone());
            }
        }
        e.state = e.derive_state();
        self.seq += 1;
        Ok(())
    }

    /// Take back decision `u.decision_id`: the one before it stands again, and an appeal it
    /// settled is open again.
    pub fn apply_undo(&mut self, u: &Undo) -> Result<()> {
        let e = self.entry_mut(&u.item_id)?;
        if e.undone.contains(&u.decision_id) {
            return Err(Error::Invalid(format!(
                "decision {} was already taken back",
                u.decision_id
            )));
        }
        if !e.decisions.iter().any(|d| d.id == u.decision_id) {
            return Err(Error::Unknown {
                what: "decision",
                id: u.decision_id.clone(),
            });
        }
        e.undone.push(u.decision_id.clone());
        let settled_by_undone = e
            .appeal
            .as_ref()
            .is_some_and(|a| a.settled_by.as_deref() == Some(u.decision_id.as_str()));
        if settled_by_undone {
            // The latest final decision made since the appeal, not taken back, settles it
            // instead; without one it is open again.
            let settles = e.appeal.as_ref().and_then(|a| {
                e.decisions
                    .iter()
                    .rev()
                    .filter(|d| d.at >= a.at && !e.undone.contains(&d.id))
                    .find_map(|d| settle(d.verdict).map(|s| (s, d.id.clone())))
            });
            if let Some(a) = e.appeal.as_mut() {
                (a.state, a.settled_by) = match settles {
                    Some((s, id)) => (s, Some(id)),
                    None => (AppealState::Open, None),
                };
            }
        }
        e.state = e.derive_state();
        self.seq += 1;
        Ok(())
    }

    /// Record an appeal: the item goes back to the queue as `appeal`.
    pub fn apply_appeal(&mut self, a: &Appeal) -> Result<()> {
        let e = self.entry_mut(&a.item_id)?;
        if e.appeal.as_ref().is_some_and(|x| x.id == a.id) {
            return Ok(());
        }
        if e.appeal
            .as_ref()
            .is_some_and(|x| x.state == AppealState::Open)
        {
            return Err(Error::Invalid(format!(
                "item {} already has an open appeal",
                a.item_id
            )));
        }
        e.appeal = Some(a.clone());
        e.state = e.derive_state();
        self.seq += 1;
        Ok(())
    }

    /// Add an entry for an item people decide on that was not flagged (found in the report).
    pub fn ensure_entry(&mut self, item: &Item, threshold: f64) {
        if self.entry(&item.id).is_none() {
            let mut e = ReviewEntry::of(item, threshold);
            e.queued = false;
            e.state = None;
            self.entries.push(e);
        }
    }
}

#[cfg(test)]
#[path = "doc_tests.rs"]
mod tests;
