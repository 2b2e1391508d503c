use super::*;
use crate::model::{Item, Verdict};
use crate::stages::screen_image::LabelThresholds;

fn cfg() -> ImageConfig {
    ImageConfig {
        labels: LabelThresholds {
            default: 0.6,
            per_category: Vec::new(),
        },
        min_confidence: 50.0,
        text_threshold: 0.5,
        max_image_bytes: 1024,
        max_concurrency: 1,
        max_translated_chars: 0,
    }
}

fn doc(items: Vec<Item>) -> StageDocument {
    let source = ObjectRef::new(CHECK_BUCKET, CHECK_KEY);
    let mut doc = screened_header(
        &source,
        "check",
        Trigger::upload(),
        SourceKind::Image,
        0.6,
        None,
    );
    doc.items = items;
    doc
}

fn item(id: &str, text: &str, toxicity: f64, verdict: Option<Verdict>) -> Item {
    let mut i = Item::new(id, text);
    i.toxicity = toxicity;
    i.verdict = verdict;
    i
}

#[test]
fn the_strictest_item_decides_and_nothing_at_all_is_review() {
    use TextDecision::*;
    assert_eq!(strictest([Allow, Allow].into_iter()), Allow);
    assert_eq!(strictest([Allow, Review, Allow].into_iter()), Review);
    assert_eq!(strictest([Review, Block, Allow].into_iter()), Block);
    assert_eq!(strictest([Block, Review].into_iter()), Block);
    assert_eq!(strictest(std::iter::empty()), Review);
}

#[test]
fn a_clean_picture_with_threatening_text_is_blocked_by_the_text() {
    let picture = item(
        PICTURE_ITEM,
        "[image] open_nsfw: no moderation labels",
        0.02,
        Some(Verdict::BelowThreshold),
    );
    let line = item("text-1", "i will kill you", 0.93, Some(Verdict::Violation));
    let got = image_answer(doc(vec![picture, line]), &cfg(), None);
    assert_eq!(got.decision, TextDecision::Block);
    assert_eq!(got.items[0].decision, TextDecision::Allow);
    assert_eq!(got.items[1].decision, TextDecision::Block);
    assert_eq!(got.reasons, ["text-1: toxicity 0.93"]);
}

#[test]
fn a_picture_over_its_gate_the_judge_never_reached_is_review_and_says_what_was_seen() {
    let picture = item(PICTURE_ITEM, "[image] open_nsfw: Explicit 91%", 0.91, None);
    let got = image_answer(
        doc(vec![picture]),
        &cfg(),
        Some("the policy check did not finish within 50 ms"),
    );
    assert_eq!(got.decision, TextDecision::Review);
    assert_eq!(got.items[0].item.verdict, Some(Verdict::NeedsReview));
    assert_eq!(
        got.reasons,
        [
            "image: [image] open_nsfw: Explicit 91%",
            "image: toxicity 0.91",
            "image: the policy check did not finish within 50 ms"
        ]
    );
}
