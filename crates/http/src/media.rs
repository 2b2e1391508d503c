//! The picture routes: `/v1/check/image` (the body is the image) and `/v1/generate` (a prompt
//! in, a checked picture out).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use base64::Engine;
use moderation_core::media::picture::sniff;
use moderation_core::stages::check::generate::Generation;
use moderation_core::stages::check::image::{ImageCheck, ImageRefusal};
use serde_json::{json, Value};

use crate::body::{image_body, json_body};
use crate::error::{ApiError, Code};
use crate::types::{negative_prompt, parse_prompt_body, text_answer};
use crate::Checker;

type Answer = Result<Json<Value>, ApiError>;

fn refused(r: ImageRefusal) -> ApiError {
    match r {
        ImageRefusal::TooLarge { .. } => ApiError::new(Code::TooLarge, r.to_string()),
        ImageRefusal::NotAnImage(why) => ApiError::new(Code::BadRequest, why),
    }
}

/// The picture's answer: the decision, what the labeller found, each item's answer.
pub fn image_answer(check: &ImageCheck) -> Value {
    let items: Vec<Value> = check
        .items
        .iter()
        .map(|c| {
            let mut v = text_answer(c);
            v["id"] = json!(c.item.id);
            v["text"] = json!(c.item.text);
            v
        })
        .collect();
    let mut out = json!({
        "decision": check.decision.as_str(),
        "reasons": check.reasons,
        "items": items,
        "labels": [],
        "not_checked": [],
    });
    if let Some(f) = &check.findings {
        out["labels"] = json!(f.labels);
        out["not_checked"] = json!(f.not_checked);
        out["label_model"] = json!(f.label_model);
        out["text_model"] = json!(f.text_model);
        out["prepared"] = json!(f.prepared);
    }
    out
}

pub(crate) async fn check_image(
    State(checker): State<Arc<dyn Checker>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let started = Instant::now();
    let body = image_body(&headers, body)?;
    let check = checker.check_image(body.to_vec()).await.map_err(refused)?;
    let mut out = image_answer(&check);
    out["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
    Ok(Json(out))
}

/// The generation's answer: the picture as base64 unless withheld, and every warning.
pub fn generation_answer(g: &Generation, negative: &str) -> Value {
    let mut out = json!({
        "decision": g.decision.as_str(),
        "warnings": g.warnings,
        "prompt": {"decision": g.prompt.decision.as_str(), "reasons": g.prompt.reasons},
        "negative_prompt": negative,
    });
    if let Some(bytes) = &g.image {
        out["image"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        out["format"] = json!(sniff(bytes).map(|f| f.as_str()).unwrap_or("unknown"));
    }
    if let Some(check) = &g.check {
        out["check"] = image_answer(check);
    }
    out
}

pub(crate) async fn generate(
    State(checker): State<Arc<dyn Checker>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let started = Instant::now();
    let body = parse_prompt_body(&json_body(&headers, body)?)?;
    let negative = negative_prompt(checker.negative_prompts(), body.negative_prompt.as_deref());
    let generated = checker
        .generate(&body.prompt, &negative)
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, e.0))?;
    let mut out = generation_answer(&generated, &negative);
    out["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
    Ok(Json(out))
}
