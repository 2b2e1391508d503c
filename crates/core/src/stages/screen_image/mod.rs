//! screen-image: an image upload (`incoming/image/<conversation>/<file>`) → `screened/<id>.json`.
//!
//! The image is checked and prepared ([`crate::media::picture`]), then labelled (Rekognition
//! `DetectModerationLabels`, or the offline detectors) while its text is read (Rekognition
//! `DetectText`, or offline OCR). The picture becomes item `image`, gated per top category; each
//! line of text becomes an item `text-<n>` with its box, screened exactly like a chat line; a
//! caption split over lines is also screened as one text (`caption`). Anything that could not be
//! checked is said, never passed.

use std::ops::ControlFlow;

use futures::future::join;
use tracing::warn;

use crate::chain::delivery::Outcome;
use crate::chain::keys::{self, Stage};
use crate::error::Result;
use crate::media::picture::{prepare, IMAGE_EXTENSIONS};
use crate::model::ObjectRef;
use crate::model::{ImageFindings, Prepared, SourceKind, StageDocument, Status, Trigger};
use crate::ports::{ImageInput, ImageModerator, ImageTextReader, LabelsFound, TextRead};
use crate::stages::screen_text::preflight::{
    failed, folder_marker, read_or_dead_letter, screened_header, SizeLimit,
};
use crate::stages::screen_text::{superseded, write_screened, ScreenDeps};

mod labels;
mod lines;

use labels::{labelled_item, unlabelled};
use lines::{screen_text_read, TextFound};

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

fn image_doc(obj: &ObjectRef, id: &str, trigger: Trigger, cfg: &ImageConfig) -> StageDocument {
    let threshold = cfg.labels.default;
    screened_header(
        obj,
        id,
        trigger,
        SourceKind::Image,
        threshold,
        obj.version(),
    )
}

async fn write_failed(
    deps: &ImageDeps<'_>,
    doc: StageDocument,
    bucket: &str,
    reason: String,
) -> Result<Outcome> {
    write_screened(deps.screen.store, bucket, &failed(doc, STAGE, reason)).await
}

/// The stage's limit (`MAX_IMAGE_BYTES`).
fn image_limit(cfg: &ImageConfig) -> SizeLimit<'static> {
    SizeLimit {
        what: "image",
        max_bytes: cfg.max_image_bytes,
        setting: "MAX_IMAGE_BYTES",
    }
}

/// The key's extension when it names an image type we accept; the refusal otherwise.
fn image_extension(key: &str) -> std::result::Result<String, String> {
    let ext = keys::extension(key).unwrap_or_default();
    if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        return Ok(ext);
    }
    Err(format!(
        "{key}: unsupported image file type {ext:?}; accepted: {}",
        IMAGE_EXTENSIONS.join(", ")
    ))
}

/// The upload's bytes and extension, once the checks pass; otherwise what the stage does
/// instead: a failed document (type or size), nothing (a late event), a dead letter (deleted).
async fn read_image(
    obj: &ObjectRef,
    id: &str,
    doc: &StageDocument,
    deps: &ImageDeps<'_>,
    cfg: &ImageConfig,
) -> Result<ControlFlow<Outcome, (Vec<u8>, String)>> {
    let refuse = |reason: String| async move {
        let outcome = write_failed(deps, doc.clone(), &obj.bucket, reason).await?;
        Ok::<_, crate::Error>(ControlFlow::Break(outcome))
    };
    let ext = match image_extension(&obj.key) {
        Ok(ext) => ext,
        Err(reason) => return refuse(reason).await,
    };
    let limit = image_limit(cfg);
    if let Some(reason) = limit.refusal(&obj.key, obj.size) {
        return refuse(reason).await;
    }
    let store = deps.screen.store;
    if let Some(why) = superseded(store, &obj.bucket, id, obj.sequencer.as_deref()).await {
        return Ok(ControlFlow::Break(Outcome::Ignored(why)));
    }
    let bytes = match read_or_dead_letter(store, Stage::ScreenImage, obj, id).await? {
        ControlFlow::Continue(bytes) => bytes,
        ControlFlow::Break(outcome) => return Ok(ControlFlow::Break(outcome)),
    };
    if let Some(reason) = limit.refusal(&obj.key, Some(bytes.len() as u64)) {
        return refuse(reason).await;
    }
    Ok(ControlFlow::Continue((bytes, ext)))
}

/// The picture checked and prepared on a blocking thread: decoding is CPU-bound (a large photo
/// takes a moment). Where panics unwind (tests, modctl) a decoder panic on hostile bytes ends
/// as a failed report; the Lambda profile aborts, so there the delivery fails and the message
/// goes to the dead-letter queue after its retries.
pub async fn prepare_off_thread(
    bytes: Vec<u8>,
    ext: String,
) -> std::result::Result<Prepared, String> {
    match tokio::task::spawn_blocking(move || prepare(&bytes, &ext)).await {
        Ok(prepared) => prepared,
        Err(e) => Err(format!("the image decoder failed on it ({e})")),
    }
}

/// Store the prepared copy for the policy check, which sends it to a multimodal model: what
/// the labeller saw, already within the model's limits, so evaluate-policy never decodes an
/// upload. Its key.
async fn store_picture(
    deps: &ImageDeps<'_>,
    bucket: &str,
    id: &str,
    prepared: &Prepared,
) -> Result<String> {
    let picture = keys::picture_key(id, prepared.format.as_str());
    let content_type = format!("image/{}", prepared.format.as_str());
    deps.screen
        .store
        .put(bucket, &picture, prepared.bytes.clone(), &content_type)
        .await?;
    Ok(picture)
}

/// Label the picture while its text is read.
async fn label_and_read(
    input: &ImageInput<'_>,
    deps: &ImageDeps<'_>,
    cfg: &ImageConfig,
) -> (Result<LabelsFound>, Result<TextRead>) {
    join(
        deps.moderator.labels(input, cfg.min_confidence),
        deps.text.lines(input),
    )
    .await
}

/// The picture item onto `doc`, any labelling error onto `errors`; what the labeller found.
fn add_picture(
    doc: &mut StageDocument,
    errors: &mut Vec<crate::model::ErrorEntry>,
    labels: Result<LabelsFound>,
    animated: bool,
    moderator: &str,
    cfg: &ImageConfig,
) -> LabelsFound {
    match labels {
        Ok(found) => {
            doc.items
                .push(labelled_item(&found, animated, moderator, &cfg.labels));
            found
        }
        Err(e) => {
            warn!(error = %e, "image labelling failed");
            let (item, error, found) = unlabelled(&e, moderator, &cfg.labels);
            errors.push(error);
            doc.items.push(item);
            found
        }
    }
}

/// What the document says about the picture: its upload, how it was prepared, the findings.
fn image_findings(
    prepared: &Prepared,
    found: LabelsFound,
    text_model: Option<String>,
    picture: String,
) -> ImageFindings {
    ImageFindings {
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
    }
}

/// The errors onto `doc`; partial when anything failed or waits for a person.
fn settle_status(doc: &mut StageDocument, errors: Vec<crate::model::ErrorEntry>) {
    if !errors.is_empty() || doc.items.iter().any(|i| i.review_reason.is_some()) {
        doc.status = Status::Partial;
    }
    doc.errors.extend(errors);
}

/// Label a prepared picture and screen its text onto `doc`: the picture item, the text items,
/// the findings (`picture` is where its prepared copy is kept), errors and status. The stage
/// and the real-time check share it.
pub async fn screen_picture(
    doc: &mut StageDocument,
    input: &ImageInput<'_>,
    picture: String,
    deps: &ImageDeps<'_>,
    cfg: &ImageConfig,
) {
    let (labels, lines) = label_and_read(input, deps, cfg).await;
    doc.usage.images = 1;
    let mut errors = Vec::new();
    let found = add_picture(
        doc,
        &mut errors,
        labels,
        input.prepared.animated,
        deps.moderator.name(),
        cfg,
    );
    let text: TextFound = screen_text_read(lines, deps, cfg).await;
    doc.items.extend(text.items);
    errors.extend(text.errors);
    doc.usage.add(&text.usage);
    doc.image = Some(image_findings(input.prepared, found, text.model, picture));
    settle_status(doc, errors);
}

/// The whole stage for one uploaded image.
pub async fn screen_image_object(
    obj: &ObjectRef,
    id: &str,
    trigger: Trigger,
    deps: &ImageDeps<'_>,
    cfg: &ImageConfig,
) -> Result<Outcome> {
    if let Some(ignored) = folder_marker(obj) {
        return Ok(ignored);
    }
    let mut doc = image_doc(obj, id, trigger, cfg);
    let (bytes, ext) = match read_image(obj, id, &doc, deps, cfg).await? {
        ControlFlow::Continue(read) => read,
        ControlFlow::Break(outcome) => return Ok(outcome),
    };
    let prepared = match prepare_off_thread(bytes, ext).await {
        Ok(prepared) => prepared,
        Err(reason) => {
            return write_failed(deps, doc, &obj.bucket, format!("{}: {reason}", obj.key)).await
        }
    };
    let picture = store_picture(deps, &obj.bucket, id, &prepared).await?;
    let version = obj.version();
    let input = ImageInput {
        prepared: &prepared,
        bucket: &obj.bucket,
        key: &obj.key,
        version: version.as_deref(),
    };
    screen_picture(&mut doc, &input, picture, deps, cfg).await;
    write_screened(deps.screen.store, &obj.bucket, &doc).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepted_image_types_are_read() {
        assert_eq!(
            image_extension("incoming/image/c/a.JPG").ok(),
            Some("jpg".into())
        );
        let why = image_extension("incoming/image/c/a.svg").expect_err("refused");
        assert_eq!(
            why,
            "incoming/image/c/a.svg: unsupported image file type \"svg\"; accepted: png, jpg, \
             jpeg, gif, webp"
        );
    }

    #[test]
    fn a_document_with_an_error_or_an_item_held_is_partial() {
        let obj = ObjectRef::new("b", "incoming/image/c/a.png");
        let mut doc = screened_header(&obj, "a", Trigger::upload(), SourceKind::Image, 0.6, None);
        settle_status(&mut doc, Vec::new());
        assert_eq!(doc.status, Status::Complete);
        doc.items.push(crate::model::Item {
            review_reason: Some("animated".into()),
            ..crate::model::Item::new(PICTURE_ITEM, "[image]")
        });
        settle_status(&mut doc, Vec::new());
        assert_eq!(doc.status, Status::Partial);
    }
}
