//! A chunk's messages as items: their readings (the original, the revealed one, the English
//! translation), rule hits, the segments each sends to the detector, and why one needs review.

use crate::model::{ErrorEntry, Item, Revealed, RuleHit};
use crate::ports::Segment;
use crate::text::parse::ParsedMessage;
use crate::text::rules::RuleFilter;
use crate::text::segment::chunk_text;
use crate::text::signals::SignalPatterns;
use crate::text::split_runs::{self, Joined, Line};

use super::language::LanguageOf;

/// One hit per rule: a term found in both readings of a message, or a detector's rule
/// category found in several chunks, is listed once.
pub(super) fn add_rule_hit(hits: &mut Vec<RuleHit>, hit: RuleHit) {
    if !hits.iter().any(|h| h.rule == hit.rule) {
        hits.push(hit);
    }
}

/// Each message's revealed reading, where evasions hide one.
pub(super) fn reveal_each(messages: &[ParsedMessage]) -> Vec<Option<Revealed>> {
    messages
        .iter()
        .map(|m| crate::text::evasion::reveal(&m.text))
        .collect()
}

/// The text each message's language is told from: the revealed reading when there is one
/// (English written with look-alike Cyrillic letters is still English).
pub(super) fn language_texts<'a>(
    messages: &'a [ParsedMessage],
    revealed: &'a [Option<Revealed>],
) -> Vec<&'a str> {
    messages
        .iter()
        .zip(revealed)
        .map(|(m, r)| r.as_ref().map_or(m.text.as_str(), |r| r.text.as_str()))
        .collect()
}

/// The messages as the split-message join reads them: their (revealed) readings.
pub(super) fn split_lines<'a>(messages: &'a [ParsedMessage], texts: &[&'a str]) -> Vec<Line<'a>> {
    messages
        .iter()
        .zip(texts)
        .map(|(m, text)| Line {
            id: &m.id,
            text,
            user: m.user.as_deref(),
            conversation: m.conversation.as_deref(),
        })
        .collect()
}

/// A message's revealed reading, replaced by the joined reading of the split message it ends
/// (which holds its own reading), keeping the evasions found in it.
pub(super) fn with_joined(revealed: Option<Revealed>, joined: Option<Joined>) -> Option<Revealed> {
    let Some(j) = joined else {
        return revealed;
    };
    let mut evasions = revealed.map(|r| r.evasions).unwrap_or_default();
    evasions.push(split_runs::SPLIT.to_string());
    Some(Revealed {
        text: j.text,
        evasions,
        lines: j.lines,
    })
}

/// The readings of a message, each with whether the detector scores it. The revealed reading
/// and the English translation are scored beside the original; the most toxic chunk wins.
/// With a translation the original is rule-scanned only: the detector reads English, and
/// would only be billed for noise.
fn readings<'a>(
    text: &'a str,
    revealed: Option<&'a Revealed>,
    translation: Option<&'a str>,
) -> Vec<(&'a str, bool)> {
    let translated = translation.is_some();
    std::iter::once((text, !translated))
        .chain(revealed.map(|r| (r.text.as_str(), !translated)))
        .chain(translation.map(|t| (t, true)))
        .collect()
}

/// The segments of a reading the detector is sent, tagged with the item they score. Empty
/// text (a short CSV row) has nothing to score and would fail a whole batch.
fn segments_of(item: usize, reading: &str, max_segment_bytes: usize) -> Vec<Segment> {
    chunk_text(reading, max_segment_bytes)
        .into_iter()
        .filter(|c| !c.trim().is_empty())
        .map(|text| Segment { item, text })
        .collect()
}

/// Why a person must look at a message: its language's problem and the parser's issues that
/// may hide content. Every parser issue is also recorded among the errors.
fn review_reason(
    m: &ParsedMessage,
    problem: Option<String>,
    errors: &mut Vec<ErrorEntry>,
) -> Option<String> {
    let mut review: Vec<String> = problem.into_iter().collect();
    for issue in &m.issues {
        errors.push(ErrorEntry::new("parse", Some(&m.id), issue.message.clone()));
        if issue.needs_review {
            review.push(issue.message.clone());
        }
    }
    (!review.is_empty()).then(|| review.join("; "))
}

/// What the chunk's items need from the chunk: the rules and the detector's segment size.
pub(super) struct ItemRules<'a> {
    pub rules: &'a RuleFilter,
    pub max_segment_bytes: usize,
}

/// One message as an unscored item, its segments added to `segments`.
pub(super) fn message_item(
    idx: usize,
    m: ParsedMessage,
    lang: LanguageOf,
    revealed: Option<Revealed>,
    with: &ItemRules<'_>,
    segments: &mut Vec<Segment>,
    errors: &mut Vec<ErrorEntry>,
) -> Item {
    let mut rule_hits = Vec::new();
    let mut signals = Vec::new();
    for (reading, score) in readings(&m.text, revealed.as_ref(), lang.translation.as_deref()) {
        for kind in SignalPatterns::embedded().find(reading) {
            if !signals.contains(&kind) {
                signals.push(kind);
            }
        }
        if score {
            segments.extend(segments_of(idx, reading, with.max_segment_bytes));
        }
        for hit in with.rules.scan(reading) {
            add_rule_hit(&mut rule_hits, hit);
        }
    }
    let review_reason = review_reason(&m, lang.problem, errors);
    Item {
        rule_hits,
        revealed,
        language: lang.language.map(|l| l.code),
        translation: lang.translation,
        id: m.id,
        text: m.text,
        user: m.user,
        timestamp: m.timestamp,
        conversation: m.conversation,
        age_band: m.age_band,
        signals,
        start_time: None,
        end_time: None,
        toxicity: 0.0,
        categories: Default::default(),
        verdict: None,
        evaluation: None,
        review_reason,
        bounding_box: None,
        decision: None,
        appeal: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse::ItemIssue;

    fn revealed(text: &str) -> Revealed {
        Revealed {
            text: text.into(),
            evasions: vec!["homoglyph".into()],
            lines: Vec::new(),
        }
    }

    #[test]
    fn a_translated_message_sends_only_its_translation() {
        let r = revealed("idiot");
        assert_eq!(
            readings("idiоt", Some(&r), None),
            vec![("idiоt", true), ("idiot", true)]
        );
        assert_eq!(
            readings("eres idiota", None, Some("you are an idiot")),
            vec![("eres idiota", false), ("you are an idiot", true)]
        );
    }

    #[test]
    fn blank_pieces_are_not_sent() {
        assert!(segments_of(3, "   ", 100).is_empty());
        let segs = segments_of(3, "hello", 100);
        assert_eq!(segs.len(), 1);
        assert_eq!((segs[0].item, segs[0].text.as_str()), (3, "hello"));
    }

    #[test]
    fn a_split_message_keeps_the_evasions_of_its_own_reading() {
        let joined = Joined {
            text: "you are an idiot".into(),
            lines: vec!["you are".into(), "an idiot".into()],
        };
        let r = with_joined(Some(revealed("an idiot")), Some(joined)).expect("joined");
        assert_eq!(r.text, "you are an idiot");
        assert_eq!(
            r.evasions,
            vec!["homoglyph".to_string(), split_runs::SPLIT.into()]
        );
        assert_eq!(r.lines.len(), 2);
        assert_eq!(with_joined(None, None), None);
    }

    #[test]
    fn every_parser_issue_is_an_error_and_only_some_need_review() {
        let m = ParsedMessage {
            id: "m1".into(),
            text: "hi".into(),
            issues: vec![
                ItemIssue {
                    message: "timestamp unreadable".into(),
                    needs_review: false,
                },
                ItemIssue {
                    message: "text cut at 64 KiB".into(),
                    needs_review: true,
                },
            ],
            ..ParsedMessage::default()
        };
        let mut errors = Vec::new();
        let why = review_reason(&m, Some("language xx: no model".into()), &mut errors);
        assert_eq!(
            why.as_deref(),
            Some("language xx: no model; text cut at 64 KiB")
        );
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| e.stage == "parse"));
        assert_eq!(
            review_reason(&ParsedMessage::default(), None, &mut errors),
            None
        );
    }
}
