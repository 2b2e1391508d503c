//! The review API's routes: each reads and checks its request, asks the [`Reviewer`], and
//! answers JSON (201 for a recorded change) or a JSON error naming the problem.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use moderation_core::model::{HumanVerdict, SourceKind};
use moderation_core::stages::review::{
    AppealRequest, Cursor, DecisionRequest, QueueFilter, QueueState, Recorded, UndoRequest,
};
use moderation_core::stages::write_report::url_path;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::body::{bad, object, optional, required};
use super::{statement, Media, Moderator, ReviewSettings, Reviewer};
use crate::body::json_body;
use crate::error::{ApiError, Code};

type Shared = (Arc<dyn Reviewer>, ReviewSettings);
/// Items a queue request returns by default, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Longest reason or statement kept (characters).
const MAX_TEXT: usize = 4_000;

pub(crate) fn routes(reviewer: Arc<dyn Reviewer>, settings: ReviewSettings) -> Router {
    Router::new()
        .route("/v1/review/queue", get(queue))
        .route("/v1/review/decisions", post(decide))
        .route("/v1/review/decisions.csv", get(export_csv))
        .route("/v1/review/undo", post(undo))
        .route("/v1/review/appeals", post(appeal))
        .route("/v1/review/items/{report_id}/{item_id}", get(item))
        .route("/v1/review/reports/{report_id}/audit", get(audit))
        .route(
            "/v1/review/statements/{report_id}/{item_id}",
            get(statement_json),
        )
        .route(
            "/review/statements/{report_id}/{item_id}",
            get(statement_page),
        )
        .route("/review/media/{*key}", get(media))
        .with_state((reviewer, settings))
}

/// A core error as an answer: an unknown report or item is 404, a request that cannot be
/// carried out 400, anything else (the store, a service) 503.
pub(crate) fn answer_error(e: moderation_core::Error) -> ApiError {
    use moderation_core::Error as E;
    match e {
        E::Unknown { .. } => ApiError::new(Code::NotFound, e.to_string()),
        E::Invalid(_) => ApiError::new(Code::BadRequest, e.to_string()),
        other => {
            tracing::warn!(error = %other, "review request failed");
            ApiError::new(Code::Unavailable, other.to_string()).retry_after(1)
        }
    }
}

fn created<T: Serialize>(name: &str, r: Recorded<T>) -> Result<Response, ApiError> {
    let mut body = json!({ name: r.record });
    if !r.warnings.is_empty() {
        body["warnings"] = json!(r.warnings);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn one_of<T: Copy>(value: &str, field: &str, all: &[(T, &'static str)]) -> Result<T, ApiError> {
    all.iter()
        .find(|(_, s)| *s == value)
        .map(|(t, _)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(_, s)| *s).collect();
            bad(format!(
                "{field} {value:?} is not one of {}",
                names.join(", ")
            ))
        })
}

async fn queue(
    State((reviewer, _)): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let states: Vec<_> = QueueState::ALL.iter().map(|s| (*s, s.as_str())).collect();
    let kinds = [
        (SourceKind::Text, "text"),
        (SourceKind::Audio, "audio"),
        (SourceKind::Image, "image"),
    ];
    let filter = QueueFilter {
        state: match q.get("state") {
            Some(s) => one_of(s, "state", &states)?,
            None => QueueState::Open,
        },
        category: q.get("category").filter(|c| !c.is_empty()).cloned(),
        kind: match q.get("kind").or(q.get("source")) {
            Some(k) => Some(one_of(k, "kind", &kinds)?),
            None => None,
        },
        conversation: q.get("conversation").filter(|c| !c.is_empty()).cloned(),
    };
    let after = match q.get("after") {
        Some(a) => {
            Some(Cursor::parse(a).ok_or_else(|| bad(format!("after {a:?} is not a cursor")))?)
        }
        None => None,
    };
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad(format!("limit must be 1 to {MAX_LIMIT}")))?,
        None => DEFAULT_LIMIT,
    };
    let out = reviewer
        .queue(&filter, after, limit)
        .await
        .map_err(answer_error)?;
    Ok(Json(json!(out)))
}

/// The moderator: the authenticated one, else the body's where that is allowed.
fn moderator(
    who: Option<Extension<Moderator>>,
    m: &Map<String, Value>,
    settings: ReviewSettings,
) -> Result<String, ApiError> {
    if let Some(Extension(Moderator(id))) = who {
        return Ok(id);
    }
    if settings.moderator_from_body {
        return required(m, "moderator", 200);
    }
    Err(ApiError::new(
        Code::Unauthorized,
        "no authenticated moderator: sign in (the moderators group of the user pool)",
    ))
}

async fn decide(
    State((reviewer, settings)): State<Shared>,
    who: Option<Extension<Moderator>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let m = object(&json_body(&headers, body)?)?;
    let verdicts: Vec<_> = HumanVerdict::ALL.iter().map(|v| (*v, v.as_str())).collect();
    let req = DecisionRequest {
        report_id: required(&m, "report_id", 200)?,
        item_id: required(&m, "item_id", 200)?,
        verdict: one_of(&required(&m, "verdict", 40)?, "verdict", &verdicts)?,
        reason: optional(&m, "reason", MAX_TEXT)?,
        moderator: moderator(who, &m, settings)?,
    };
    created(
        "decision",
        reviewer.decide(&req).await.map_err(answer_error)?,
    )
}

async fn undo(
    State((reviewer, settings)): State<Shared>,
    who: Option<Extension<Moderator>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let m = object(&json_body(&headers, body)?)?;
    let req = UndoRequest {
        report_id: required(&m, "report_id", 200)?,
        item_id: required(&m, "item_id", 200)?,
        decision_id: required(&m, "decision_id", 200)?,
        moderator: moderator(who, &m, settings)?,
    };
    created("undo", reviewer.undo(&req).await.map_err(answer_error)?)
}

async fn appeal(
    State((reviewer, _)): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let m = object(&json_body(&headers, body)?)?;
    let req = AppealRequest {
        report_id: required(&m, "report_id", 200)?,
        item_id: required(&m, "item_id", 200)?,
        statement: required(&m, "statement", MAX_TEXT)?,
    };
    created("appeal", reviewer.appeal(&req).await.map_err(answer_error)?)
}

async fn item(
    State((reviewer, _)): State<Shared>,
    Path((report_id, item_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let view = reviewer
        .item(&report_id, &item_id)
        .await
        .map_err(answer_error)?;
    let mut body = json!(view);
    if let Some(key) = &view.media_key {
        // A link that cannot be signed leaves the item without media, not without an answer.
        let link = match reviewer.media_link(key).await {
            Ok(link) => link,
            Err(e) => {
                tracing::warn!(error = %e, "media link not made");
                None
            }
        };
        body["media_url"] =
            json!(link.unwrap_or_else(|| format!("/review/media/{}", url_path(key))));
    }
    Ok(Json(body))
}

async fn audit(
    State((reviewer, _)): State<Shared>,
    Path(report_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let records = reviewer.audit(&report_id).await.map_err(answer_error)?;
    Ok(Json(json!({ "report_id": report_id, "records": records })))
}

async fn export_csv(
    State((reviewer, _)): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let csv = reviewer
        .export_csv(q.get("report_id").map(String::as_str))
        .await
        .map_err(answer_error)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"decisions.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

async fn statement_json(
    State((reviewer, _)): State<Shared>,
    Path((report_id, item_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let s = reviewer
        .statement(&report_id, &item_id)
        .await
        .map_err(answer_error)?;
    Ok(Json(json!(s)))
}

async fn statement_page(
    State((reviewer, _)): State<Shared>,
    Path((report_id, item_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let s = reviewer
        .statement(&report_id, &item_id)
        .await
        .map_err(answer_error)?;
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        statement::render(&s),
    )
        .into_response())
}

async fn media(
    State((reviewer, _)): State<Shared>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    match reviewer.media(&key).await.map_err(answer_error)? {
        Some(Media::Bytes { body, content_type }) => {
            Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
        }
        Some(Media::Link(url)) => {
            Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
        }
        None => Err(ApiError::new(Code::NotFound, format!("no media {key:?}"))),
    }
}
