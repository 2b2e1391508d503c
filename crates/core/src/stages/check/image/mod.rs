//! A picture checked before it goes out (the real-time API, and every generated image): the
//! chain's own screen-image steps — prepared, labelled, its text read and screened — then
//! evaluate-policy's judging of what is over a gate, within the time budget. Nothing is
//! written: the prepared copy the multimodal check reads is held in memory.

use std::time::Duration;

use super::scratch::PictureOnly;
use super::text::{answer, judge_within, TextCheck, TextDecision};
use crate::chain::keys;
use crate::media::picture::sniff;
use crate::model::{ImageFindings, ObjectRef, SourceKind, StageDocument, Trigger};
use crate::ports::ImageInput;
use crate::stages::evaluate_policy::{EvaluateConfig, EvaluateDeps};
use crate::stages::screen_image::{
    prepare_off_thread, screen_picture, ImageConfig, ImageDeps, PICTURE_ITEM,
};
use crate::stages::screen_text::preflight::screened_header;

/// Names no bucket: where the check's in-memory picture "is", should a log show it.
const CHECK_BUCKET: &str = "check-api";
const CHECK_KEY: &str = "check/image";

/// What checking a picture needs: screen-image's ports and settings, evaluate-policy's, and the
/// policy check's budget.
pub struct ImageCheckDeps<'a> {
    pub image: ImageDeps<'a>,
    pub image_config: &'a ImageConfig,
    /// Its `store` is not used: the check reads only its own picture.
    pub evaluate: EvaluateDeps<'a>,
    pub evaluate_config: &'a EvaluateConfig,
    pub policy_budget: Duration,
}

/// Why a body was not checked at all (the caller answers 413 or 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRefusal {
    TooLarge {
        bytes: usize,
        limit: u64,
    },
    /// Not an image we accept, or one that does not decode: the reason names what it is.
    NotAnImage(String),
}

impl std::fmt::Display for ImageRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageRefusal::TooLarge { bytes, limit } => write!(
                f,
                "the image is {bytes} bytes, over MAX_IMAGE_BYTES ({limit})"
            ),
            ImageRefusal::NotAnImage(why) => f.write_str(why),
        }
    }
}

/// The answer for one picture: the decision over all its items (the picture and each line of
/// its text), each item's own answer, and what the labeller found.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageCheck {
    pub decision: TextDecision,
    pub items: Vec<TextCheck>,
    pub findings: Option<ImageFindings>,
    pub reasons: Vec<String>,
}

/// Check one picture.
pub async fn check_image(
    bytes: Vec<u8>,
    deps: &ImageCheckDeps<'_>,
) -> Result<ImageCheck, ImageRefusal> {
    let cfg = deps.image_config;
    if bytes.len() as u64 > cfg.max_image_bytes {
        return Err(ImageRefusal::TooLarge {
            bytes: bytes.len(),
            limit: cfg.max_image_bytes,
        });
    }
    let format = sniff(&bytes).map_err(ImageRefusal::NotAnImage)?;
    let prepared = prepare_off_thread(bytes, format.as_str().to_string())
        .await
        .map_err(ImageRefusal::NotAnImage)?;
    let source = ObjectRef::new(CHECK_BUCKET, CHECK_KEY);
    let threshold = cfg.labels.default;
    let mut doc = screened_header(
        &source,
        "check",
        Trigger::upload(),
        SourceKind::Image,
        threshold,
        None,
    );
    let picture = keys::picture_key("check", prepared.format.as_str());
    let input = ImageInput {
        prepared: &prepared,
        bucket: CHECK_BUCKET,
        key: CHECK_KEY,
        version: None,
    };
    screen_picture(&mut doc, &input, picture.clone(), &deps.image, cfg).await;
    // The prepared copy is not needed past labelling: the store takes it, not a second copy.
    let store = PictureOnly {
        bucket: CHECK_BUCKET.into(),
        key: picture,
        bytes: prepared.bytes,
    };
    let evaluate = EvaluateDeps {
        store: &store,
        ..deps.evaluate
    };
    let (judged, problem) =
        judge_within(doc, &evaluate, deps.evaluate_config, deps.policy_budget).await;
    Ok(image_answer(judged, cfg, problem.as_deref()))
}

/// Each item answered as a message is; the picture's decision is the strictest of them.
pub fn image_answer(doc: StageDocument, cfg: &ImageConfig, problem: Option<&str>) -> ImageCheck {
    let items: Vec<TextCheck> = doc
        .items
        .into_iter()
        .map(|item| {
            let picture = item.id == PICTURE_ITEM;
            let gate = if picture {
                cfg.labels.default
            } else {
                cfg.text_threshold
            };
            let described = item.text.clone();
            let mut check = answer(item, gate, problem);
            if picture && check.decision != TextDecision::Allow {
                check.reasons.insert(0, described);
            }
            check
        })
        .collect();
    let decision = strictest(items.iter().map(|c| c.decision));
    let mut reasons: Vec<String> = items
        .iter()
        .filter(|c| c.decision != TextDecision::Allow)
        .flat_map(|c| c.reasons.iter().map(move |r| format!("{}: {r}", c.item.id)))
        .collect();
    reasons.dedup();
    ImageCheck {
        decision,
        items,
        findings: doc.image,
        reasons,
    }
}

/// Block over review over allow; nothing to answer for is `review` (nothing was checked).
pub fn strictest(decisions: impl Iterator<Item = TextDecision>) -> TextDecision {
    let mut out = None;
    for d in decisions {
        out = Some(match (out, d) {
            (_, TextDecision::Block) | (Some(TextDecision::Block), _) => TextDecision::Block,
            (_, TextDecision::Review) | (Some(TextDecision::Review), _) => TextDecision::Review,
            _ => TextDecision::Allow,
        });
    }
    out.unwrap_or(TextDecision::Review)
}

#[cfg(test)]
mod tests;
