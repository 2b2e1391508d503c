//! The real-time check API's HTTP surface, shared by `modctl serve` and (next) the check-api
//! Lambda: the routes of `docs/api.md`, JSON errors, and the limits every route runs under.
//! It knows nothing of backends: whoever serves it supplies a [`Checker`].

mod body;
mod error;
mod limits;
mod media;
pub mod review;
mod routes;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use axum::Router;
use moderation_core::chain::config::Vars;
use moderation_core::stages::check::generate::{Generation, ModelFailed};
use moderation_core::stages::check::image::{ImageCheck, ImageRefusal};
use moderation_core::stages::check::text::{TextCheck, TextRequest};
use moderation_core::stages::check::PromptCheck;

pub use error::{ApiError, Code, Error};
pub use limits::Limits;
pub use media::{generation_answer, image_answer};

/// The checks behind the routes: the chain's stages, built by the caller for its backend.
#[async_trait]
pub trait Checker: Send + Sync + 'static {
    /// One answer per request, in order (see `moderation_core::stages::check::text`).
    async fn check_texts(&self, requests: &[TextRequest]) -> Vec<TextCheck>;
    /// An image-generation prompt.
    async fn check_prompt(&self, prompt: &str) -> PromptCheck;
    /// The negative-prompt list sent with every allowed prompt.
    fn negative_prompts(&self) -> &[String];
    /// A picture's bytes (already known to be PNG, JPEG, GIF or WebP by their signature).
    async fn check_image(&self, bytes: Vec<u8>) -> Result<ImageCheck, ImageRefusal>;
    /// The prompt checked, the picture made with `negative_prompt` and checked. No image model
    /// configured, or one that failed, is [`ModelFailed`] naming what to set or what happened.
    async fn generate(
        &self,
        prompt: &str,
        negative_prompt: &str,
    ) -> Result<Generation, ModelFailed>;
}

/// How big, how many at once and how long: the limits every route runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `CHECK_MAX_BODY_BYTES`: a larger body is 413.
    pub max_body_bytes: usize,
    /// `CHECK_MAX_IN_FLIGHT`: requests handled at once; one more is 429 with `Retry-After`,
    /// never a queue that grows without bound.
    pub max_in_flight: usize,
    /// `CHECK_TIMEOUT_MS`: a request still running after this is 503.
    pub timeout: Duration,
    /// `MAX_IMAGE_BYTES` (the chain's): a larger `/v1/check/image` body is 413.
    pub max_image_bytes: usize,
}

impl Settings {
    pub fn from_vars(v: &Vars) -> moderation_core::Result<Self> {
        Ok(Settings {
            max_body_bytes: v.count("CHECK_MAX_BODY_BYTES", 1 << 20)?,
            max_in_flight: v.count("CHECK_MAX_IN_FLIGHT", 64)?.max(1),
            timeout: Duration::from_millis(v.count("CHECK_TIMEOUT_MS", 10_000)? as u64),
            max_image_bytes: v.count(
                "MAX_IMAGE_BYTES",
                moderation_core::stages::screen_image::DEFAULT_MAX_IMAGE_BYTES as usize,
            )?,
        })
    }
}

/// The check API's router over `checker`. `token`, when given, is required as
/// `Authorization: Bearer <token>` on every route but `/healthz`.
pub fn router(checker: Arc<dyn Checker>, settings: Settings, token: Option<String>) -> Router {
    app(Some(checker), None, settings, token)
}

/// The review loop's side of an app: the reviewer and where the moderator comes from.
pub type ReviewSide = (Arc<dyn review::Reviewer>, review::ReviewSettings);

/// The check API, the review API and console, or both, on one router under one guard (token,
/// requests in flight, deadline). `/healthz` and the console page need no token: neither
/// holds data.
pub fn app(
    checker: Option<Arc<dyn Checker>>,
    reviewer: Option<ReviewSide>,
    settings: Settings,
    token: Option<String>,
) -> Router {
    let limits = Limits::new(settings);
    let mut guarded = Router::new();
    if let Some(checker) = checker {
        guarded = guarded.merge(routes::routes(checker, &settings));
    }
    let mut open = routes::health();
    if let Some((reviewer, review_settings)) = reviewer {
        guarded = guarded.merge(review::routes(reviewer, review_settings).layer(
            axum::extract::DefaultBodyLimit::max(settings.max_body_bytes),
        ));
        open = open.merge(review::console_routes());
    }
    guarded
        .layer(axum::middleware::from_fn_with_state(
            (limits, token.map(Arc::<str>::from)),
            limits::guard,
        ))
        .merge(open)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
}

/// Serve `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    use axum::serve::ListenerExt;
    // Answers are small: without TCP_NODELAY a response written in two segments waits for
    // the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
}
