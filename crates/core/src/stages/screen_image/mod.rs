//! screen-image: an image upload (`incoming/image/<conversation>/<file>`) → `screened/<id>.json`.
//!
//! The image is checked and prepared ([`crate::media::picture`]), then labelled (Rekognition
//! `DetectModerationLabels`, or the offline detectors) while its text is read (Rekognition
//! `DetectText`, or offline OCR). The picture becomes item `image`, gated per top category; each
//! line of text becomes an item `text-<n>` with its box, screened exactly like a chat line; a
//! caption split over lines is also screened as one text (`caption`). Anything that could not be
//! checked is said, never passed.

use futures::future::join;
use tracing::warn;

use crate::chain::delivery::{dead_letter, now_rfc3339, Outcome};
use crate::chain::keys::{self, Stage};
use crate::error::Result;
use crate::media::picture::{prepare, IMAGE_EXTENSIONS};
use crate::model::ObjectRef;
use crate::model::{
    CategoryScores, ErrorEntry, ImageFindings, ImageLabel, Item, Source, SourceKind, StageDocument,
    Status, Trigger, Usage, Verdict, SCREENED_SCHEMA,
};
use crate::ports::{ImageInput, ImageModerator, ImageTextReader, LabelsFound};
use crate::stages::screen_text::{screen_messages_within, superseded, write_screened, ScreenDeps};
use crate::text::parse::ParsedMessage;

const STAGE: &str = "screen-image";

/// Rekognition's top categories (moderation model 7), in its order.
pub const TOP_CATEGORIES: &[&str] = &[
    "Explicit",
    "Non-Explicit Nudity of Intimate parts and Kissing",
    "Swimwear or Underwear",
    "Violence",
    "Visually Disturbing",
    "Rude Gestures",
    "Drugs & Tobacco",
    "Alcohol",
    "Gambling",
    "Hate Symbols",
];

/// Per-category gates on label confidence, as fractions (0.6 = 60 %).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelThresholds {
    pub default: f64,
    /// `(top category, threshold)` overrides.
    pub per_category: Vec<(String, f64)>,
}

impl LabelThresholds {
    pub fn for_category(&self, category: &str) -> f64 {
        self.per_category
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(category))
            .map_or(self.default, |(_, t)| *t)
    }

    /// `IMAGE_LABEL_THRESHOLDS`: `Category=0.9,Other category=0.8`, top categories only.
    pub fn parse_overrides(default: f64, list: &str) -> std::result::Result<Self, String> {
        let mut per_category = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .rsplit_once('=')
                .ok_or_else(|| format!("{part:?} is not `Category=threshold`"))?;
            let name = name.trim();
            let Some(category) = TOP_CATEGORIES.iter().find(|c| c.eq_ignore_ascii_case(name))
            else {
                return Err(format!(
                    "{name:?} is not a top category ({})",
                    TOP_CATEGORIES.join(", ")
                ));
            };
            let t: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|t: &f64| (0.0..=1.0).contains(t))
                .ok_or_else(|| format!("{name}: {value:?} is not a threshold in [0, 1]"))?;
            per_category.push((category.to_string(), t));
        }
        Ok(LabelThresholds {
            default,
            per_category,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub labels: LabelThresholds,
    /// `IMAGE_MIN_CONFIDENCE`: labels under this (0–100) are not returned.
    pub min_confidence: f64,
    /// The gate for the text read from the image (the text path's threshold).
    pub text_threshold: f64,
    /// Larger uploads get a failed report instead of being read.
    pub max_image_bytes: u64,
    pub max_concurrency: usize,
    pub max_translated_chars: u64,
}

/// The image settings every runner reads the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSettings {
    /// `IMAGE_LABEL_THRESHOLD` (default 0.6) with `IMAGE_LABEL_THRESHOLDS` overrides per top
    /// category (`Swimwear or Underwear=0.9,Alcohol=0.8`).
    pub labels: LabelThresholds,
    /// `IMAGE_MIN_CONFIDENCE` (0–100, default 50): Rekognition's `MinConfidence`.
    pub min_confidence: f64,
    /// `MAX_IMAGE_BYTES` (default 50 MiB): larger uploads get a failed report.
    pub max_image_bytes: u64,
    /// Offline only, `NSFW_MODEL`: the open_nsfw ONNX file (unset: [`DEFAULT_NSFW_MODEL`],
    /// relative to the working directory).
    pub offline_model: Option<std::path::PathBuf>,
}

/// Where `make models` puts open_nsfw, relative to the workspace.
pub const DEFAULT_NSFW_MODEL: &str = ".cache/models/open-nsfw/open-nsfw.onnx";

impl ImageSettings {
    pub fn from_vars(v: &crate::chain::config::Vars) -> Result<Self> {
        let default = v.score("IMAGE_LABEL_THRESHOLD")?.unwrap_or(0.6);
        let overrides = v.or("IMAGE_LABEL_THRESHOLDS", "");
        let labels = LabelThresholds::parse_overrides(default, &overrides).map_err(|reason| {
            crate::Error::InvalidVar {
                var: "IMAGE_LABEL_THRESHOLDS".into(),
                value: overrides.clone(),
                reason,
            }
        })?;
        let min_confidence: f64 = v.parsed("IMAGE_MIN_CONFIDENCE", 50.0)?;
        if !(0.0..=100.0).contains(&min_confidence) {
            return Err(crate::Error::InvalidVar {
                var: "IMAGE_MIN_CONFIDENCE".into(),
                value: min_confidence.to_string(),
                reason: "must be between 0 and 100".into(),
            });
        }
        Ok(ImageSettings {
            offline_model: v.get("NSFW_MODEL").map(std::path::PathBuf::from),
            labels,
            min_confidence,
            max_image_bytes: v.count("MAX_IMAGE_BYTES", DEFAULT_MAX_IMAGE_BYTES as usize)? as u64,
        })
    }
}

/// Uploads past this are refused (a 50 MB photo is already far past what a chat image is).
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 50 * 1024 * 1024;

/// The id of the item that stands for the picture itself.
pub const PICTURE_ITEM: &str = "image";
/// How the picture item's `review_reason` starts when no classifier looked at it.
pub const NO_CLASSIFIER: &str = "no image classifier ran";

pub struct ImageDeps<'a> {
    pub moderator: &'a dyn ImageModerator,
    pub text: &'a dyn ImageTextReader,
    /// The text path: store, detector, rules, languages.
    pub screen: ScreenDeps<'a>,
}

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
fn image_item(found: &LabelsFound, thresholds: &LabelThresholds) -> Item {
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

fn image_doc(obj: &ObjectRef, id: &str, trigger: Trigger, cfg: &ImageConfig) -> StageDocument {
    StageDocument {
        schema: SCREENED_SCHEMA.into(),
        id: id.to_string(),
        created_at: now_rfc3339(),
        source: Source::new(obj.uri(), SourceKind::Image),
        source_version: obj.version(),
        source_sequencer: obj.sequencer.clone(),
        trigger,
        status: Status::Complete,
        threshold: cfg.labels.default,
        items: Vec::new(),
        unlisted: None,
        errors: Vec::new(),
        usage: Usage::default(),
        image: None,
    }
}

async fn write_failed(
    deps: &ImageDeps<'_>,
    mut doc: StageDocument,
    bucket: &str,
    reason: String,
) -> Result<Outcome> {
    doc.status = Status::Failed;
    doc.errors.push(ErrorEntry::new(STAGE, None, reason));
    write_screened(deps.screen.store, bucket, &doc).await
}

/// The whole stage for one uploaded image.
pub async fn screen_image_object(
    obj: &ObjectRef,
    id: &str,
    trigger: Trigger,
    deps: &ImageDeps<'_>,
    cfg: &ImageConfig,
) -> Result<Outcome> {
    if obj.key.ends_with('/') {
        return Ok(Outcome::Ignored(format!("{} is a folder marker", obj.key)));
    }
    let doc = image_doc(obj, id, trigger, cfg);
    let ext = keys::extension(&obj.key).unwrap_or_default();
    if !IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        let reason = format!(
            "{}: unsupported image file type {ext:?}; accepted: {}",
            obj.key,
            IMAGE_EXTENSIONS.join(", ")
        );
        return write_failed(deps, doc, &obj.bucket, reason).await;
    }
    if let Some(size) = obj.size.filter(|s| *s > cfg.max_image_bytes) {
        let reason = format!(
            "{}: the image is {size} bytes, over the {} byte limit (MAX_IMAGE_BYTES)",
            obj.key, cfg.max_image_bytes
        );
        return write_failed(deps, doc, &obj.bucket, reason).await;
    }
    if let Some(why) =
        superseded(deps.screen.store, &obj.bucket, id, obj.sequencer.as_deref()).await
    {
        return Ok(Outcome::Ignored(why));
    }
    let Some(bytes) = deps.screen.store.get_bytes(&obj.bucket, &obj.key).await? else {
        let reason = format!("{} no longer exists", obj.uri());
        return dead_letter(deps.screen.store, Stage::ScreenImage, obj, id, &reason).await;
    };
    if bytes.len() as u64 > cfg.max_image_bytes {
        let reason = format!(
            "{}: the image is {} bytes, over the {} byte limit (MAX_IMAGE_BYTES)",
            obj.key,
            bytes.len(),
            cfg.max_image_bytes
        );
        return write_failed(deps, doc, &obj.bucket, reason).await;
    }
    // Decoding is CPU-bound (a large photo takes a moment). Where panics unwind (tests, modctl)
    // a decoder panic on hostile bytes ends as a failed report; the Lambda profile aborts, so
    // there the delivery fails and the message goes to the dead-letter queue after its retries.
    let named = ext.clone();
    let prepared = match tokio::task::spawn_blocking(move || prepare(&bytes, &named)).await {
        Ok(Ok(p)) => p,
        Ok(Err(reason)) => {
            return write_failed(deps, doc, &obj.bucket, format!("{}: {reason}", obj.key)).await
        }
        Err(e) => {
            let reason = format!("{}: the image decoder failed on it ({e})", obj.key);
            return write_failed(deps, doc, &obj.bucket, reason).await;
        }
    };
    // The policy check sends this copy to a multimodal model: what the labeller saw, already
    // within the model's limits, so evaluate-policy never decodes an upload.
    let picture = keys::picture_key(id, prepared.format.as_str());
    deps.screen
        .store
        .put(
            &obj.bucket,
            &picture,
            prepared.bytes.clone(),
            &format!("image/{}", prepared.format.as_str()),
        )
        .await?;
    let version = obj.version();
    let input = ImageInput {
        prepared: &prepared,
        bucket: &obj.bucket,
        key: &obj.key,
        version: version.as_deref(),
    };
    let (labels, lines) = join(
        deps.moderator.labels(&input, cfg.min_confidence),
        deps.text.lines(&input),
    )
    .await;
    let mut doc = doc;
    doc.usage.images = 1;
    let mut errors = Vec::new();
    let found = match labels {
        Ok(found) => {
            let mut item = image_item(&found, &cfg.labels);
            if found.model.is_empty() || found.not_checked.len() >= TOP_CATEGORIES.len() {
                // No classifier looked at the picture at all: a person must.
                let why = format!(
                    "{NO_CLASSIFIER} ({}): a person should look at the picture",
                    deps.moderator.name()
                );
                item.review_reason = Some(why);
                item.verdict = Some(Verdict::NeedsReview);
            } else if prepared.animated {
                // Later frames of a GIF, APNG or WebP were never looked at.
                item.review_reason = Some(
                    "animated image: only the first frame was checked; a person should look at \
                     the rest"
                        .into(),
                );
                if item.verdict == Some(Verdict::BelowThreshold) {
                    item.verdict = Some(Verdict::NeedsReview);
                }
            }
            doc.items.push(item);
            found
        }
        Err(e) => {
            warn!(error = %e, "image labelling failed");
            let why = format!(
                "image labels unavailable from {}: {e}",
                deps.moderator.name()
            );
            errors.push(ErrorEntry::new(STAGE, Some("image"), why.clone()));
            let mut item = image_item(&LabelsFound::default(), &cfg.labels);
            item.text = format!("[image] not labelled: {e}");
            item.review_reason = Some(why);
            item.verdict = Some(Verdict::NeedsReview);
            doc.items.push(item);
            LabelsFound {
                model: deps.moderator.name().to_string(),
                ..LabelsFound::default()
            }
        }
    };
    let text_model = match lines {
        Ok(read) => {
            let (items, text_errors, usage) = screen_lines(read.lines, deps, cfg).await;
            doc.items.extend(items);
            errors.extend(text_errors);
            doc.usage.add(&usage);
            if let Some(why) = read.incomplete {
                doc.items.push(unread_text_item(why.clone()));
                errors.push(ErrorEntry::new(STAGE, Some("text"), why));
            }
            Some(deps.text.name().to_string())
        }
        Err(e) => {
            warn!(error = %e, "reading text in the image failed");
            let why = format!(
                "text in the image was not read ({}: {e}); a caption or chat in it is unchecked",
                deps.text.name()
            );
            doc.items.push(unread_text_item(why.clone()));
            errors.push(ErrorEntry::new(STAGE, Some("text"), why));
            None
        }
    };
    doc.image = Some(ImageFindings {
        format: prepared.original_format.as_str().into(),
        width: prepared.original_width,
        height: prepared.original_height,
        prepared: prepared.changes.clone(),
        labels: found.labels,
        content_types: found.content_types,
        label_model: found.model,
        text_model,
        not_checked: found.not_checked,
        picture: Some(picture),
    });
    if !errors.is_empty() || doc.items.iter().any(|i| i.review_reason.is_some()) {
        doc.status = Status::Partial;
    }
    doc.errors.extend(errors);
    write_screened(deps.screen.store, &obj.bucket, &doc).await
}

/// Item `text`: text in the image that no reader could check, held for a person.
fn unread_text_item(why: String) -> Item {
    Item {
        verdict: Some(Verdict::NeedsReview),
        review_reason: Some(why),
        ..Item::new("text", "[text in the image] not checked")
    }
}

/// Whether the lines read as one text split over lines (a meme's top and bottom caption)
/// rather than separate messages (a chat screenshot: `name: message` lines, or many of them).
fn is_caption(lines: &[crate::ports::TextLine]) -> bool {
    let chat_like = lines
        .iter()
        .filter(|l| {
            l.text.split_once(':').is_some_and(|(name, _)| {
                !name.is_empty() && name.len() <= 24 && !name.contains(' ')
            })
        })
        .count();
    (2..=6).contains(&lines.len()) && chat_like * 2 < lines.len()
}

/// The lines as messages `text-<n>` (kept with their boxes), plus `caption`, all of them
/// joined, when they read as one text: a meme's top and bottom text is one sentence.
async fn screen_lines(
    lines: Vec<crate::ports::TextLine>,
    deps: &ImageDeps<'_>,
    cfg: &ImageConfig,
) -> (Vec<Item>, Vec<ErrorEntry>, Usage) {
    let lines: Vec<_> = lines
        .into_iter()
        .filter(|l| !l.text.trim().is_empty())
        .collect();
    let message = |id: String, text: String| ParsedMessage {
        id,
        text,
        ..Default::default()
    };
    let mut messages: Vec<ParsedMessage> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| message(format!("text-{}", n + 1), l.text.trim().to_string()))
        .collect();
    if is_caption(&lines) {
        let all: Vec<&str> = lines.iter().map(|l| l.text.trim()).collect();
        messages.push(message("caption".into(), all.join(" ")));
    }
    if messages.is_empty() {
        return (Vec::new(), Vec::new(), Usage::default());
    }
    let (mut items, errors, usage) = screen_messages_within(
        messages,
        &deps.screen,
        cfg.text_threshold,
        cfg.max_concurrency,
        cfg.max_translated_chars,
    )
    .await;
    for (item, line) in items.iter_mut().zip(&lines) {
        item.bounding_box = Some(line.bounding_box);
    }
    (items, errors, usage)
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
}
