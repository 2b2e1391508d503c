//! review-api: the review loop (`docs/review.md`) over a bucket, as the shared router's
//! [`Reviewer`]. The Lambda function serves it behind an HTTP API with a JWT authorizer
//! (Cognito); `modctl serve` serves the same [`Service`] offline. Thin glue: the core's review
//! steps, then the report redrawn by write-report's own step, so the report shows each change.

#[cfg(feature = "lambda")]
pub mod auth;
mod config;

#[cfg(feature = "lambda")]
pub use config::lambda_router;
pub use config::{appeal_budget, Config};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moderation_core::model::{Appeal, Decision, ReviewRecord, Undo};
use moderation_core::ports::{DecisionEvents, MediaLinks, ObjectStore, PolicyVersion};
use moderation_core::stages::review::{
    self, AppealJudge, AppealRequest, Cursor, DecisionRequest, ItemView, QueueFilter, QueueOut,
    Recorded, ReviewDeps, Statement, UndoRequest,
};
use moderation_core::stages::write_report::{redraw, ReportDeps};
use moderation_core::Result;
use moderation_http::review::{Media, Reviewer};
use tracing::warn;

/// Prefixes the console may load media from: recordings and pictures, nothing else.
const MEDIA_PREFIXES: [&str; 4] = [
    "incoming/audio/",
    "incoming/image/",
    "recordings/",
    "pictures/",
];

/// Cheap to clone (shared parts): a change runs in a task of its own, so a request that is
/// cancelled (its deadline, a closed connection) never leaves a change half made.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    policy: Arc<dyn PolicyVersion>,
    events: Arc<dyn DecisionEvents>,
    /// The policy check appeals re-run; without it an appeal's re-check is `needs_review`.
    evaluate: Option<Arc<evaluate_policy::App>>,
    appeal_budget: Duration,
    links: Option<Arc<dyn MediaLinks>>,
}

impl Service {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        bucket: impl Into<String>,
        policy: Arc<dyn PolicyVersion>,
        events: Arc<dyn DecisionEvents>,
    ) -> Self {
        Service {
            store,
            bucket: bucket.into(),
            policy,
            events,
            evaluate: None,
            appeal_budget: Duration::from_secs(60),
            links: None,
        }
    }

    pub fn with_appeals(mut self, evaluate: Arc<evaluate_policy::App>, budget: Duration) -> Self {
        self.evaluate = Some(evaluate);
        self.appeal_budget = budget;
        self
    }

    pub fn with_media_links(mut self, links: Arc<dyn MediaLinks>) -> Self {
        self.links = Some(links);
        self
    }

    fn deps(&self) -> ReviewDeps<'_> {
        ReviewDeps {
            store: self.store.as_ref(),
            bucket: &self.bucket,
            policy: self.policy.as_ref(),
            events: self.events.as_ref(),
        }
    }

    /// Redraw the report after a change; a failure is named in the answer, not fatal (the
    /// record and the review document hold the change, and the next redraw shows it).
    async fn redrawn<T>(&self, mut r: Recorded<T>) -> Recorded<T> {
        let deps = ReportDeps {
            store: self.store.as_ref(),
            media: self.links.as_deref(),
            max_concurrency: 4,
        };
        if let Err(e) = redraw(&r.doc.report_id, &self.bucket, &deps).await {
            warn!(error = %e, report = %r.doc.report_id, "report not redrawn");
            r.warnings
                .push(format!("the report page does not show it yet: {e}"));
        }
        r
    }
}

/// Whether the console may load `key`: recordings and pictures, nothing else.
fn media_key(key: &str) -> bool {
    !key.contains("..") && MEDIA_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Run a change to the end in a task of its own, whatever becomes of the request.
async fn detached<T: Send + 'static>(
    change: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(change).await.map_err(|e| {
        moderation_core::Error::Input(format!("the change stopped before it finished: {e}"))
    })?
}

fn content_type(key: &str) -> &'static str {
    match key
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        Some("ogg" | "opus") => "audio/ogg",
        Some("flac") => "audio/flac",
        Some("m4a" | "mp4") => "audio/mp4",
        _ => "application/octet-stream",
    }
}

#[async_trait]
impl Reviewer for Service {
    async fn queue(
        &self,
        filter: &QueueFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<QueueOut> {
        review::queue(&self.deps(), filter, after, limit).await
    }

    async fn decide(&self, req: &DecisionRequest) -> Result<Recorded<Decision>> {
        let (this, req) = (self.clone(), req.clone());
        detached(async move {
            let r = review::decide(&req, &this.deps()).await?;
            Ok(this.redrawn(r).await)
        })
        .await
    }

    async fn undo(&self, req: &UndoRequest) -> Result<Recorded<Undo>> {
        let (this, req) = (self.clone(), req.clone());
        detached(async move {
            let r = review::undo(&req, &this.deps()).await?;
            Ok(this.redrawn(r).await)
        })
        .await
    }

    async fn appeal(&self, req: &AppealRequest) -> Result<Recorded<Appeal>> {
        let (this, req) = (self.clone(), req.clone());
        detached(async move {
            let judge = this.evaluate.as_ref().map(|app| AppealJudge {
                evaluate: app.deps(),
                config: app.config(),
                budget: this.appeal_budget,
            });
            let r = review::appeal(&req, &this.deps(), judge.as_ref()).await?;
            Ok(this.redrawn(r).await)
        })
        .await
    }

    async fn audit(&self, report_id: &str) -> Result<Vec<ReviewRecord>> {
        review::audit(&self.deps(), report_id).await
    }

    async fn export_csv(&self, report_id: Option<&str>) -> Result<String> {
        review::export_csv(&self.deps(), report_id).await
    }

    async fn item(&self, report_id: &str, item_id: &str) -> Result<ItemView> {
        review::item_view(&self.deps(), report_id, item_id).await
    }

    async fn statement(&self, report_id: &str, item_id: &str) -> Result<Statement> {
        review::statement(&self.deps(), report_id, item_id).await
    }

    async fn media_link(&self, key: &str) -> Result<Option<String>> {
        match &self.links {
            // Signed at view time: a link in a page lives only as long as the page is open.
            Some(links) if media_key(key) => links.media_url(&self.bucket, key).await,
            _ => Ok(None),
        }
    }

    async fn media(&self, key: &str) -> Result<Option<Media>> {
        if !media_key(key) {
            return Ok(None);
        }
        if let Some(url) = self.media_link(key).await? {
            return Ok(Some(Media::Link(url)));
        }
        Ok(self
            .store
            .get_bytes(&self.bucket, key)
            .await?
            .map(|body| Media::Bytes {
                body,
                content_type: content_type(key).to_string(),
            }))
    }
}
