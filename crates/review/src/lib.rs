//! The review loop (`docs/review.md`) over a bucket, as the shared router's
//! [`Reviewer`]. Thin glue: the core's review steps, then the report redrawn by write-report's
//! own step, so the report shows each change.

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

/// `REVIEW_APPEAL_BUDGET_MS` (default 60,000): how long an appeal's policy check may take;
/// past it the re-check is `needs_review`.
pub fn appeal_budget(v: &moderation_core::chain::config::Vars) -> Result<Duration> {
    Ok(Duration::from_millis(
        v.count("REVIEW_APPEAL_BUDGET_MS", 60_000)? as u64,
    ))
}

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
        let r = review::decide(req, &self.deps()).await?;
        Ok(self.redrawn(r).await)
    }

    async fn undo(&self, req: &UndoRequest) -> Result<Recorded<Undo>> {
        let r = review::undo(req, &self.deps()).await?;
        Ok(self.redrawn(r).await)
    }

    async fn appeal(&self, req: &AppealRequest) -> Result<Recorded<Appeal>> {
        let judge = self.evaluate.as_ref().map(|app| AppealJudge {
            evaluate: app.deps(),
            config: app.config(),
            budget: self.appeal_budget,
        });
        let r = review::appeal(req, &self.deps(), judge.as_ref()).await?;
        Ok(self.redrawn(r).await)
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

    async fn media(&self, key: &str) -> Result<Option<Media>> {
        if key.contains("..") || !MEDIA_PREFIXES.iter().any(|p| key.starts_with(p)) {
            return Ok(None);
        }
        if let Some(links) = &self.links {
            // Signed at view time: a link in a page lives only as long as the page is open.
            return Ok(links.media_url(&self.bucket, key).await?.map(Media::Link));
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
