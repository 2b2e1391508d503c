//! `GET /review`: the moderator console, one self-contained page (no build step, no
//! framework) that works the queue through the review API with the keyboard.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("console.html");

/// The console itself holds no data: it is served without the token, and asks for one when
/// the API answers 401.
pub(crate) fn console_routes() -> Router {
    Router::new().route("/review", get(page))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
}
