//! The routes: each reads its body (size and type checked), asks the [`Checker`], and writes the
//! answer or a JSON error.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::body::json_body;
use crate::error::{ApiError, Code};
use crate::types::{negative_prompt, parse_prompt_body, parse_text_body, text_answer};
use crate::{media, Checker, Settings};

type Answer = Result<Json<Value>, ApiError>;

pub(crate) fn routes(checker: Arc<dyn Checker>, settings: &Settings) -> Router {
    // The picture route's limit is the image size, not the JSON one.
    let pictures = Router::new()
        .route("/v1/check/image", post(media::check_image))
        .layer(DefaultBodyLimit::max(settings.max_image_bytes));
    Router::new()
        .route("/v1/check/text", post(check_text))
        .route("/v1/check/prompt", post(check_prompt))
        .route("/v1/generate", post(media::generate))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .merge(pictures)
        .with_state(checker)
}

pub(crate) fn health() -> Router {
    Router::new().route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        Code::NotFound,
        "no such route: POST /v1/check/text, /v1/check/prompt, /v1/check/image, /v1/generate; \
         GET /v1/review/queue, POST /v1/review/decisions, /v1/review/appeals, GET /review, \
         GET /healthz (docs/api.md, docs/review.md)",
    )
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        "this route takes another method (POST for checks, decisions and appeals; GET for the queue, the console and /healthz)",
    )
}

async fn check_text(
    State(checker): State<Arc<dyn Checker>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let started = Instant::now();
    let parsed = parse_text_body(&json_body(&headers, body)?)?;
    let checks = checker.check_texts(&parsed.requests).await;
    if checks.len() != parsed.requests.len() {
        // Never answer for fewer messages than were sent: the missing ones were not checked.
        return Err(ApiError::new(
            Code::Unavailable,
            format!(
                "{} answers for {} messages; nothing was decided",
                checks.len(),
                parsed.requests.len()
            ),
        ));
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let mut answers: Vec<Value> = checks.iter().map(text_answer).collect();
    Ok(Json(match (parsed.batch, answers.pop()) {
        (false, Some(mut one)) => {
            one["elapsed_ms"] = json!(elapsed_ms);
            one
        }
        (_, last) => {
            answers.extend(last);
            json!({ "results": answers, "elapsed_ms": elapsed_ms })
        }
    }))
}

async fn check_prompt(
    State(checker): State<Arc<dyn Checker>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let started = Instant::now();
    let body = parse_prompt_body(&json_body(&headers, body)?)?;
    let found = checker.check_prompt(&body.prompt).await;
    Ok(Json(json!({
        "decision": found.decision.as_str(),
        "reasons": found.reasons,
        "negative_prompt": negative_prompt(checker.negative_prompts(), body.negative_prompt.as_deref()),
        "toxicity": found.item.toxicity,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    })))
}
