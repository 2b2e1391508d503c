//! The guard in front of the check routes: the bearer token when one is set, a fixed number of
//! requests in flight (429 past it), and a deadline (503 past it).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::{ApiError, Code};
use crate::Settings;

/// Shared by every request the router serves.
#[derive(Debug, Clone)]
pub struct Limits {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    timeout: Duration,
}

impl Limits {
    pub fn new(settings: Settings) -> Self {
        Limits {
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            max_in_flight: settings.max_in_flight,
            timeout: settings.timeout,
        }
    }
}

pub(crate) async fn guard(
    State((limits, token)): State<(Limits, Option<Arc<str>>)>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let response = guarded(&limits, token.as_deref(), request, next).await;
    let status = response.status();
    // One line per answer that is not a decision: the template's 5xx metric counts these.
    if status.is_server_error() {
        tracing::warn!(
            status = status.as_u16(),
            path,
            "check answered without a decision"
        );
    } else if status.is_client_error() {
        tracing::info!(status = status.as_u16(), path, "check refused the request");
    }
    response
}

async fn guarded(limits: &Limits, token: Option<&str>, request: Request, next: Next) -> Response {
    if let Some(token) = token {
        if !bearer_matches(&request, token) {
            return ApiError::new(
                Code::Unauthorized,
                "send Authorization: Bearer <the token modctl serve was given>",
            )
            .into_response();
        }
    }
    let Ok(_permit) = limits.in_flight.clone().try_acquire_owned() else {
        return ApiError::new(
            Code::RateLimited,
            format!(
                "{} requests are already being checked; try again shortly",
                limits.max_in_flight
            ),
        )
        .retry_after(1)
        .into_response();
    };
    // A review change runs to the end on its own: past the deadline it may still land.
    let review = request.uri().path().contains("/review");
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            Code::Unavailable,
            if review {
                format!(
                    "no answer within {} ms (CHECK_TIMEOUT_MS); a decision, undo or appeal sent \
                     may still be recorded: read the item's audit before sending it again",
                    limits.timeout.as_millis()
                )
            } else {
                format!(
                    "the check took longer than {} ms (CHECK_TIMEOUT_MS); nothing was decided",
                    limits.timeout.as_millis()
                )
            },
        )
        .retry_after(1)
        .into_response(),
    }
}

/// The request's bearer token equals `token`, compared in time independent of where they differ.
fn bearer_matches(request: &Request, token: &str) -> bool {
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
