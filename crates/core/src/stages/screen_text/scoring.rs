//! A chunk's segments through the detector: which are sent (each text once), the calls, each
//! item's score (the most toxic segment wins), and the gate.

use std::collections::HashMap;

use futures::stream::{self, StreamExt};
use tracing::warn;

use crate::error::Result;
use crate::model::{ErrorEntry, Item, Verdict};
use crate::ports::{Segment, SegmentLimits, ToxicityDetector, ToxicityScore};
use crate::text::segment::batch_segments;

use super::items::add_rule_hit;
use super::state::UploadState;
use super::{over_threshold, STAGE};

/// What became of one segment sent to the detector.
#[derive(Debug, Clone)]
pub(super) enum Scored {
    Ok(ToxicityScore),
    /// With the error to record against the item (none when it was recorded for the batch).
    Failed(Option<String>),
}

/// What is sent for a chunk's segments. A text scored earlier in the upload, or twice in this
/// chunk, is sent once; sent segments are tagged with their position in the chunk's segments
/// so every copy finds its score.
pub(super) struct SendPlan {
    /// Per segment: its score once known (cached ones from the start).
    pub outcome: Vec<Option<Scored>>,
    /// `(segment, the earlier segment with the same text)`.
    pub copies: Vec<(usize, usize)>,
    pub to_send: Vec<Segment>,
}

/// Plan the sends: `cached` answers for texts already scored in the upload.
pub(super) fn plan_sends(
    segments: &[Segment],
    cached: impl Fn(&str) -> Option<ToxicityScore>,
) -> SendPlan {
    let mut plan = SendPlan {
        outcome: vec![None; segments.len()],
        copies: Vec::new(),
        to_send: Vec::with_capacity(segments.len()),
    };
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (n, seg) in segments.iter().enumerate() {
        if let Some(score) = cached(&seg.text) {
            plan.outcome[n] = Some(Scored::Ok(score));
        } else if let Some(&first) = first_of.get(seg.text.as_str()) {
            plan.copies.push((n, first));
        } else {
            first_of.insert(&seg.text, n);
            plan.to_send.push(Segment {
                item: n,
                text: seg.text.clone(),
            });
        }
    }
    plan
}

/// One detector call's segments and its answer.
type BatchResult = (Vec<Segment>, Result<Vec<ToxicityScore>>);

/// Send the segments in the detector's batches, `max_concurrency` calls at once. With the
/// units the calls are billed.
pub(super) async fn detect_batches(
    to_send: Vec<Segment>,
    detector: &dyn ToxicityDetector,
    limits: SegmentLimits,
    max_concurrency: usize,
) -> (u64, Vec<BatchResult>) {
    let batches = batch_segments(to_send, limits);
    let units: u64 = batches.iter().map(|b| detector.billing_units(b)).sum();
    let results = stream::iter(batches)
        .map(|batch| async move {
            let texts: Vec<String> = batch.iter().map(|s| s.text.clone()).collect();
            let r = detector.detect(&texts).await;
            (batch, r)
        })
        .buffer_unordered(max_concurrency.max(1))
        .collect()
        .await;
    (units, results)
}

/// The calls' answers into the plan (remembered for the rest of the upload), then each
/// repeated text's copy of its first segment's answer.
pub(super) fn record_results(
    plan: &mut SendPlan,
    results: Vec<BatchResult>,
    detector: &str,
    state: &UploadState,
    errors: &mut Vec<ErrorEntry>,
) {
    let outcome = &mut plan.outcome;
    for (batch, result) in results {
        match result {
            Ok(scores) if scores.len() == batch.len() => {
                for (seg, score) in batch.iter().zip(scores) {
                    state.remember(&seg.text, &score);
                    outcome[seg.item] = Some(Scored::Ok(score));
                }
            }
            Ok(scores) => {
                let msg = format!(
                    "{detector} returned {} results for {} segments",
                    scores.len(),
                    batch.len()
                );
                warn!(error = %msg, "detector result count mismatch");
                errors.push(ErrorEntry::new(STAGE, None, msg));
                for seg in &batch {
                    outcome[seg.item] = Some(Scored::Failed(None));
                }
            }
            Err(e) => {
                warn!(error = %e, segments = batch.len(), "toxicity detection failed");
                let msg = format!("toxicity detection failed: {e}");
                for seg in &batch {
                    outcome[seg.item] = Some(Scored::Failed(Some(msg.clone())));
                }
            }
        }
    }
    for &(n, first) in &plan.copies {
        outcome[n] = outcome[first].clone();
    }
}

/// Each item's score from its segments: the most toxic wins, rule hits the detector found are
/// added. The items with a segment that could not be scored are marked `true`.
pub(super) fn merge_scores(
    items: &mut [Item],
    segments: &[Segment],
    outcome: Vec<Option<Scored>>,
    errors: &mut Vec<ErrorEntry>,
) -> Vec<bool> {
    let mut scored = vec![false; items.len()];
    let mut failed = vec![false; items.len()];
    for (seg, result) in segments.iter().zip(outcome) {
        let i = seg.item;
        match result {
            Some(Scored::Ok(score)) => {
                let item = &mut items[i];
                if !scored[i] || score.toxicity > item.toxicity {
                    item.toxicity = score.toxicity;
                    item.categories = score.categories;
                }
                for hit in score.rule_hits {
                    add_rule_hit(&mut item.rule_hits, hit);
                }
                for kind in score.signals {
                    if !item.signals.contains(&kind) {
                        item.signals.push(kind);
                    }
                }
                scored[i] = true;
            }
            Some(Scored::Failed(msg)) => {
                if let Some(msg) = msg.filter(|_| !failed[i]) {
                    errors.push(ErrorEntry::new(STAGE, Some(&items[i].id), msg));
                }
                failed[i] = true;
            }
            // Every segment was cached, sent or copied; an unscored one is still a failure.
            None => failed[i] = true,
        }
    }
    failed
}

/// The gate: items over the threshold (or with a rule hit) get no verdict and go on to the
/// policy check; the rest are below the threshold, or need review when something is missing.
/// Partial scores would understate an item whose segments failed: a human must look.
pub(super) fn apply_gate(items: &mut [Item], failed: &[bool], detector: &str, threshold: f64) {
    for (item, failed) in items.iter_mut().zip(failed) {
        if *failed {
            let why = format!("toxicity scores unavailable from {detector}");
            item.review_reason = Some(match item.review_reason.take() {
                Some(r) => format!("{r}; {why}"),
                None => why,
            });
        }
        crate::stages::conversation::add_detected_signals(item, threshold);
        if !over_threshold(item, threshold) {
            item.verdict = Some(if item.review_reason.is_some() {
                Verdict::NeedsReview
            } else {
                Verdict::BelowThreshold
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(item: usize, text: &str) -> Segment {
        Segment {
            item,
            text: text.into(),
        }
    }

    fn score(toxicity: f64) -> ToxicityScore {
        ToxicityScore {
            toxicity,
            ..ToxicityScore::default()
        }
    }

    #[test]
    fn each_text_is_sent_once_and_cached_ones_not_at_all() {
        let segments = [seg(0, "gg"), seg(1, "lol"), seg(2, "gg"), seg(3, "ok")];
        let plan = plan_sends(&segments, |t| (t == "ok").then(|| score(0.01)));
        let sent: Vec<(usize, &str)> = plan
            .to_send
            .iter()
            .map(|s| (s.item, s.text.as_str()))
            .collect();
        assert_eq!(
            sent,
            vec![(0, "gg"), (1, "lol")],
            "tagged by segment position"
        );
        assert_eq!(plan.copies, vec![(2, 0)]);
        assert!(matches!(plan.outcome[3], Some(Scored::Ok(_))));
        assert!(plan.outcome[..3].iter().all(Option::is_none));
    }

    #[test]
    fn a_failed_batch_fails_its_copies_and_a_short_answer_is_recorded_once() {
        let segments = [seg(0, "a"), seg(1, "b"), seg(2, "a")];
        let mut plan = plan_sends(&segments, |_| None);
        let state = UploadState::new(0);
        let mut errors = Vec::new();
        let results: Vec<BatchResult> = vec![
            (
                vec![seg(0, "a")],
                Err(crate::Error::Input("throttled".into())),
            ),
            (vec![seg(1, "b")], Ok(Vec::new())),
        ];
        record_results(&mut plan, results, "det", &state, &mut errors);
        assert!(
            matches!(&plan.outcome[0], Some(Scored::Failed(Some(m))) if m.contains("throttled"))
        );
        assert!(
            matches!(&plan.outcome[2], Some(Scored::Failed(Some(_)))),
            "the copy too"
        );
        assert!(matches!(plan.outcome[1], Some(Scored::Failed(None))));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "det returned 0 results for 1 segments");
    }

    #[test]
    fn the_most_toxic_segment_wins_and_a_failure_holds_the_item() {
        let mut items = vec![
            Item::new("m0", "x"),
            Item::new("m1", "y"),
            Item::new("m2", "z"),
        ];
        let segments = [seg(0, "x1"), seg(0, "x2"), seg(1, "y"), seg(2, "z")];
        let outcome = vec![
            Some(Scored::Ok(score(0.2))),
            Some(Scored::Ok(score(0.9))),
            Some(Scored::Failed(Some("down".into()))),
            None,
        ];
        let mut errors = Vec::new();
        let failed = merge_scores(&mut items, &segments, outcome, &mut errors);
        assert_eq!(failed, vec![false, true, true]);
        assert!((items[0].toxicity - 0.9).abs() < 1e-9);
        assert_eq!(errors.len(), 1, "an unscored segment is held, not logged");
        assert_eq!(errors[0].item.as_deref(), Some("m1"));

        apply_gate(&mut items, &failed, "det", 0.5);
        assert_eq!(
            items[0].verdict, None,
            "over the threshold: on to the policy check"
        );
        assert_eq!(items[1].verdict, Some(Verdict::NeedsReview));
        assert_eq!(
            items[1].review_reason.as_deref(),
            Some("toxicity scores unavailable from det")
        );
        let mut clean = vec![Item::new("c", "hello")];
        apply_gate(&mut clean, &[false], "det", 0.5);
        assert_eq!(clean[0].verdict, Some(Verdict::BelowThreshold));
    }
}
