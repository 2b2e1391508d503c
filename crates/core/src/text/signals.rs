//! Conversation signals in one message (asking an age, secrecy, isolation, gifts, another app,
//! meetings, pictures, sexual talk, personal details, flattery) by word patterns, and what a
//! message says about its writer's age ("im 12").
//!
//! Patterns, one per line of `data/conversation-signals.txt` as `<signal> <pattern>`: words
//! separated by spaces; `a|b` alternatives (`_` joins the words of one alternative); `word*`
//! a prefix; `~N` up to N words of anything. Matched on lower-cased words with apostrophes
//! dropped ("don't" reads `dont`), so a pattern is written as people type it.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::model::{AgeGroup, SignalKind};

pub const DEFAULT_PATTERNS: &str = include_str!("../../data/conversation-signals.txt");

#[derive(Debug, Clone, PartialEq)]
enum Slot {
    /// Alternatives, each a run of words; a word ending in `*` matches by prefix.
    Words(Vec<Vec<String>>),
    /// Up to this many words of anything.
    Gap(usize),
}

#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    kind: SignalKind,
    slots: Vec<Slot>,
}

/// The compiled pattern list.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalPatterns {
    patterns: Vec<Pattern>,
}

impl SignalPatterns {
    /// Parse a list; errors name the line.
    pub fn parse(list: &str) -> Result<Self> {
        let mut patterns = Vec::new();
        for (n, line) in list.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| {
                Error::Config(format!(
                    "conversation signal list line {}: {why}: {line:?}",
                    n + 1
                ))
            };
            let (name, body) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("expected `<signal> <pattern>`"))?;
            let kind = SignalKind::parse(name).ok_or_else(|| bad("unknown signal"))?;
            let slots = body
                .split_whitespace()
                .map(parse_slot)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("a gap must be `~` and a number"))?;
            if !matches!(slots.first(), Some(Slot::Words(_))) {
                return Err(bad("a pattern starts with a word"));
            }
            patterns.push(Pattern { kind, slots });
        }
        Ok(SignalPatterns { patterns })
    }

    /// The list compiled into the binary.
    pub fn embedded() -> &'static SignalPatterns {
        static LIST: OnceLock<SignalPatterns> = OnceLock::new();
        LIST.get_or_init(|| {
            // The shipped list is checked by a unit test; an error here cannot reach users.
            SignalPatterns::parse(DEFAULT_PATTERNS).unwrap_or(SignalPatterns {
                patterns: Vec::new(),
            })
        })
    }

    /// The signals `text` shows, each once, in the order of [`SignalKind::ALL`].
    pub fn find(&self, text: &str) -> Vec<SignalKind> {
        let words = words(text);
        let mut found: Vec<SignalKind> = Vec::new();
        for p in &self.patterns {
            if !found.contains(&p.kind)
                && (0..words.len()).any(|at| matches(&p.slots, &words[at..]))
            {
                found.push(p.kind);
            }
        }
        found.sort();
        found
    }
}

fn parse_slot(token: &str) -> Option<Slot> {
    if let Some(n) = token.strip_prefix('~') {
        return n.parse().ok().map(Slot::Gap);
    }
    Some(Slot::Words(
        token
            .split('|')
            .map(|alt| alt.split('_').map(str::to_string).collect())
            .collect(),
    ))
}

/// Lower-cased words, apostrophes dropped, everything else a separator.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if matches!(c, '\'' | '’' | '‘' | '`') {
            continue;
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn word_matches(want: &str, got: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => want == got,
    }
}

/// Whether `slots` match at the start of `words`.
fn matches(slots: &[Slot], words: &[String]) -> bool {
    let Some((slot, rest)) = slots.split_first() else {
        return true;
    };
    match slot {
        Slot::Gap(n) => (0..=*n)
            .take_while(|skip| *skip <= words.len())
            .any(|skip| matches(rest, &words[skip..])),
        Slot::Words(alts) => alts.iter().any(|alt| {
            alt.len() <= words.len()
                && alt.iter().zip(words).all(|(w, g)| word_matches(w, g))
                && matches(rest, &words[alt.len()..])
        }),
    }
}

/// Words that may follow a stated age ("im 12 and", "im 12 lol").
const AFTER_AGE: &[&str] = &[
    "and", "lol", "lmao", "haha", "btw", "u", "you", "wbu", "hbu", "ur", "too", "but", "so", "now",
    "rn", "soon", "next", "actually", "tho", "ok", "xd", "almost", "nearly", "why", "what", "how",
    "turning", "yrs", "old",
];

/// The writer's age where a message states it ("im 12", "i'm 24 lol", "13 yo", "turning 14"),
/// or where it answers an age question with a bare number (`after_age_probe`: "12", "13 u?").
pub fn stated_age(text: &str, after_age_probe: bool) -> Option<AgeGroup> {
    let w = words(text);
    let age = |s: &str| s.parse::<u32>().ok().filter(|n| (6..=80).contains(n));
    let units = ["yo", "yrs", "years", "y", "yr"];
    let mut found = None;
    for (i, word) in w.iter().enumerate() {
        let Some(n) = age(word) else { continue };
        let prev = i.checked_sub(1).map(|p| w[p].as_str());
        let prev2 = i.checked_sub(2).map(|p| w[p].as_str());
        let next = w.get(i + 1).map(String::as_str);
        // "im 20 levels up" is not an age: after "im" the number ends the thought.
        let ends = next.is_none_or(|n| units.contains(&n) || AFTER_AGE.contains(&n));
        let next2 = w.get(i + 2).map(String::as_str);
        // "15 years ago" is a time, not an age.
        let ago = next2 == Some("ago") || next == Some("ago");
        // "im only 13", "i am just 12".
        let (prev, prev2) = match prev {
            Some("only" | "just") => (prev2, i.checked_sub(3).map(|p| w[p].as_str())),
            _ => (prev, prev2),
        };
        let claims = (matches!(prev, Some("im" | "turning" | "turned")) && ends)
            || (prev == Some("am") && prev2 == Some("i") && ends)
            || (next.is_some_and(|n| units.contains(&n)) && !ago);
        // A bare number answering "how old are you" (with at most "u?" or "wbu" after it).
        let answers = after_age_probe && i == 0 && w.len() <= 3;
        if claims || answers {
            found = Some(n);
            break;
        }
    }
    found
        .map(|n| {
            if n < 18 {
                AgeGroup::Minor
            } else {
                AgeGroup::Adult
            }
        })
        .or_else(|| school_grade(&w))
}

/// "im in 8th grade", "8th grade" as an answer, "year 9": a school year is a child's age. A
/// grade someone was in once ("i was in 8th grade 15 years ago") is not.
fn school_grade(w: &[String]) -> Option<AgeGroup> {
    let past = w
        .iter()
        .any(|x| matches!(x.as_str(), "was" | "ago" | "back"));
    if past {
        return None;
    }
    let said = |a: &str, b: &str| w.windows(2).any(|p| p[0] == a && p[1] == b);
    if said("in", "college") || said("at", "uni") || said("at", "university") {
        return Some(AgeGroup::Adult);
    }
    w.windows(2).find_map(|pair| {
        let n: u32 = pair[0]
            .trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse()
            .ok()?;
        let ordinal = pair[0].len() > n.to_string().len();
        (ordinal && pair[1] == "grade" && (1..=12).contains(&n)).then_some(AgeGroup::Minor)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(text: &str) -> Vec<&'static str> {
        SignalPatterns::embedded()
            .find(text)
            .into_iter()
            .map(SignalKind::as_str)
            .collect()
    }

    #[test]
    fn the_shipped_list_parses() {
        let list = SignalPatterns::parse(DEFAULT_PATTERNS).expect("shipped list parses");
        assert!(list.patterns.len() > 50);
        for k in SignalKind::ALL {
            assert!(
                list.patterns.iter().any(|p| p.kind == k),
                "no pattern for {}",
                k.as_str()
            );
        }
    }

    #[test]
    fn bad_lines_are_named() {
        for (list, why) in [
            ("secrecy", "expected"),
            ("nonsense dont tell", "unknown signal"),
            ("secrecy dont ~x tell", "gap"),
            ("secrecy ~2 tell", "starts with a word"),
        ] {
            let e = SignalPatterns::parse(&format!("# c\n{list}\n")).expect_err(list);
            let m = e.to_string();
            assert!(m.contains("line 2") && m.contains(why), "{m}");
        }
    }

    #[test]
    fn patterns_match_as_people_type() {
        let p = SignalPatterns::parse("secrecy dont|do_not tell ~2 mom|parents\ngift free robux*")
            .expect("ok");
        let kinds = |t: &str| p.find(t);
        assert_eq!(kinds("Don't tell your MOM ok"), vec![SignalKind::Secrecy]);
        assert_eq!(kinds("do not tell parents"), vec![SignalKind::Secrecy]);
        assert_eq!(kinds("dont tell anyone"), vec![]);
        assert_eq!(kinds("FREE ROBUXXX here"), vec![SignalKind::Gift]);
        assert_eq!(kinds("tell mom"), vec![]);
    }

    #[test]
    fn the_shipped_list_reads_the_usual_markers() {
        assert_eq!(find("how old r u"), vec!["age_probe"]);
        assert_eq!(find("dont tell ur parents about us ok"), vec!["secrecy"]);
        assert_eq!(find("are you home alone rn?"), vec!["isolation"]);
        assert_eq!(find("add me on snap"), vec!["off_platform"]);
        assert_eq!(find("send me a selfie"), vec!["image_request"]);
        assert!(find("gg wp, push mid").is_empty());
        assert!(find("send me a screenshot of your base").is_empty());
    }

    #[test]
    fn stated_ages() {
        assert_eq!(stated_age("im 12 lol", false), Some(AgeGroup::Minor));
        assert_eq!(stated_age("i'm 24", false), Some(AgeGroup::Adult));
        assert_eq!(stated_age("I am 15", false), Some(AgeGroup::Minor));
        assert_eq!(stated_age("13 yo", false), Some(AgeGroup::Minor));
        assert_eq!(stated_age("13 u?", true), Some(AgeGroup::Minor));
        assert_eq!(stated_age("13 u?", false), None);
        assert_eq!(stated_age("i got 12 kills", false), None);
        assert_eq!(stated_age("im 100% sure", false), None);
        assert_eq!(stated_age("8th grade", false), Some(AgeGroup::Minor));
        assert_eq!(
            stated_age("thx!! im only 13 lol", false),
            Some(AgeGroup::Minor)
        );
        assert_eq!(
            stated_age("i was in 8th grade like 15 years ago", false),
            None
        );
        assert_eq!(stated_age("gg 2nd place", false), None);
        assert_eq!(stated_age("im in college so", false), Some(AgeGroup::Adult));
    }
}
