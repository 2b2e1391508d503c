//! The picture item: the labeller's findings as scores, gated per top category, and held for a
//! person when no classifier looked or only the first frame was seen.

use crate::error::Error;
use crate::model::{CategoryScores, ErrorEntry, ImageLabel, Item, Verdict};
use crate::ports::LabelsFound;

use super::{LabelThresholds, NO_CLASSIFIER, PICTURE_ITEM, STAGE, TOP_CATEGORIES};

/// A category's share of the seven text categories, so the policy check can weigh an image
/// like a message. Categories with no text counterpart still gate by their confidence.
fn text_category(top: &str) -> Option<crate::model::Category> {
    use crate::model::Category;
    Some(match top {
        "Explicit"
        | "Non-Explicit Nudity of Intimate parts and Kissing"
        | "Swimwear or Underwear" => Category::Sexual,
        "Violence" => Category::ViolenceOrThreat,
        "Visually Disturbing" => Category::Graphic,
        "Hate Symbols" => Category::HateSpeech,
        "Rude Gestures" => Category::Insult,
        _ => return None,
    })
}

/// The highest confidence (0–1) per top category.
fn category_maxima(labels: &[ImageLabel]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for l in labels {
        let c = l.confidence / 100.0;
        match out.iter_mut().find(|(name, _)| *name == l.category) {
            Some((_, best)) => *best = best.max(c),
            None => out.push((l.category.clone(), c)),
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// What the picture item says: the labels by category, strongest first.
fn describe(found: &LabelsFound) -> String {
    if found.labels.is_empty() {
        return format!("[image] {}: no moderation labels", found.model);
    }
    let mut parts = Vec::new();
    for (category, best) in category_maxima(&found.labels) {
        let mut names: Vec<String> = found
            .labels
            .iter()
            .filter(|l| l.category == category && l.name != category)
            .map(|l| format!("{} {:.0}%", l.name, l.confidence))
            .collect();
        names.dedup();
        let detail = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        parts.push(format!("{category} {:.0}%{detail}", best * 100.0));
    }
    format!("[image] {}: {}", found.model, parts.join("; "))
}

/// Item `image`: the labels as scores, gated per category.
pub(super) fn image_item(found: &LabelsFound, thresholds: &LabelThresholds) -> Item {
    let mut categories = CategoryScores::default();
    let maxima = category_maxima(&found.labels);
    for (top, c) in &maxima {
        if let Some(cat) = text_category(top) {
            categories.set(cat, categories.get(cat).max(*c));
        }
    }
    let over: Vec<&(String, f64)> = maxima
        .iter()
        .filter(|(top, c)| *c >= thresholds.for_category(top))
        .collect();
    Item {
        toxicity: maxima.first().map_or(0.0, |m| m.1),
        categories,
        verdict: over.is_empty().then_some(Verdict::BelowThreshold),
        ..Item::new(PICTURE_ITEM, describe(found))
    }
}

/// Item `image` for what the labeller found. No classifier looking at the picture at all, or
/// later frames of a GIF, APNG or WebP never looked at: a person must.
pub(super) fn labelled_item(
    found: &LabelsFound,
    animated: bool,
    moderator: &str,
    thresholds: &LabelThresholds,
) -> Item {
    let mut item = image_item(found, thresholds);
    if found.model.is_empty() || found.not_checked.len() >= TOP_CATEGORIES.len() {
        let why = format!("{NO_CLASSIFIER} ({moderator}): a person should look at the picture");
        item.review_reason = Some(why);
        item.verdict = Some(Verdict::NeedsReview);
    } else if animated {
        item.review_reason = Some(
            "animated image: only the first frame was checked; a person should look at \
             the rest"
                .into(),
        );
        if item.verdict == Some(Verdict::BelowThreshold) {
            item.verdict = Some(Verdict::NeedsReview);
        }
    }
    item
}

/// What stands for the picture when labelling failed: item `image` held for a person, the
/// error saying why, and empty findings under the moderator's name.
pub(super) fn unlabelled(
    e: &Error,
    moderator: &str,
    thresholds: &LabelThresholds,
) -> (Item, ErrorEntry, LabelsFound) {
    let why = format!("image labels unavailable from {moderator}: {e}");
    let error = ErrorEntry::new(STAGE, Some("image"), why.clone());
    let mut item = image_item(&LabelsFound::default(), thresholds);
    item.text = format!("[image] not labelled: {e}");
    item.review_reason = Some(why);
    item.verdict = Some(Verdict::NeedsReview);
    let found = LabelsFound {
        model: moderator.to_string(),
        ..LabelsFound::default()
    };
    (item, error, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, parent: &str, level: u8, confidence: f64, category: &str) -> ImageLabel {
        ImageLabel {
            name: name.into(),
            parent: parent.into(),
            level,
            confidence,
            category: category.into(),
        }
    }

    #[test]
    fn the_picture_is_gated_per_category_and_described() {
        let found = LabelsFound {
            labels: vec![
                label(
                    "Swimwear or Underwear",
                    "",
                    1,
                    91.0,
                    "Swimwear or Underwear",
                ),
                label("Alcohol", "", 1, 55.0, "Alcohol"),
                label("Drinking", "Alcohol", 2, 55.0, "Alcohol"),
            ],
            model: "Amazon Rekognition moderation model 7.0".into(),
            ..LabelsFound::default()
        };
        let strict = LabelThresholds::parse_overrides(0.5, "").expect("valid");
        let item = image_item(&found, &strict);
        assert_eq!(
            item.verdict, None,
            "over the 0.5 gate: sent to the policy check"
        );
        assert!((item.categories.sexual - 0.91).abs() < 1e-9);
        assert!((item.toxicity - 0.91).abs() < 1e-9);
        assert_eq!(
            item.text,
            "[image] Amazon Rekognition moderation model 7.0: Swimwear or Underwear 91%; \
             Alcohol 55% (Drinking 55%)"
        );
        let lenient =
            LabelThresholds::parse_overrides(0.6, "swimwear or underwear=0.95, Alcohol = 0.9")
                .expect("valid");
        assert_eq!(lenient.for_category("Swimwear or Underwear"), 0.95);
        let item = image_item(&found, &lenient);
        assert_eq!(item.verdict, Some(Verdict::BelowThreshold));
        for bad in ["Nudity=0.5", "Alcohol", "Alcohol=2", "Alcohol=high"] {
            assert!(LabelThresholds::parse_overrides(0.5, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_picture_no_classifier_saw_or_only_partly_saw_is_held_for_a_person() {
        let thresholds = LabelThresholds::parse_overrides(0.6, "").expect("valid");
        let nobody = labelled_item(&LabelsFound::default(), false, "none", &thresholds);
        assert_eq!(nobody.verdict, Some(Verdict::NeedsReview));
        assert!(nobody
            .review_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(NO_CLASSIFIER) && r.contains("(none)")));

        let clean = LabelsFound {
            model: "open_nsfw".into(),
            ..LabelsFound::default()
        };
        let still = labelled_item(&clean, false, "offline", &thresholds);
        assert_eq!(still.verdict, Some(Verdict::BelowThreshold));
        assert_eq!(still.review_reason, None);
        let animated = labelled_item(&clean, true, "offline", &thresholds);
        assert_eq!(animated.verdict, Some(Verdict::NeedsReview));
        assert!(animated
            .review_reason
            .as_deref()
            .is_some_and(|r| r.contains("only the first frame")));
    }

    #[test]
    fn a_labelling_failure_is_said_on_the_item_and_among_the_errors() {
        let thresholds = LabelThresholds::parse_overrides(0.6, "").expect("valid");
        let e = Error::Input("throttled".into());
        let (item, error, found) = unlabelled(&e, "Rekognition", &thresholds);
        assert_eq!(item.id, PICTURE_ITEM);
        assert_eq!(item.verdict, Some(Verdict::NeedsReview));
        assert!(item.text.starts_with("[image] not labelled: "));
        assert_eq!(error.item.as_deref(), Some("image"));
        assert_eq!(item.review_reason.as_deref(), Some(error.message.as_str()));
        assert_eq!(found.model, "Rekognition");
        assert!(found.labels.is_empty());
    }
}
