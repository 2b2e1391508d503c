//! write-report: the moderator report per source — `reports/<id>.json` (the
//! `moderation.report/v1` contract), a self-contained `reports/<id>.html`, and a row in the
//! report index (`crate::stages::write_report::index`).

mod html;
pub mod index;
mod media;
pub mod review;

use tracing::info;

use crate::chain::delivery::{now_rfc3339, put_spooled, read_stage_document, write_temp, Outcome};
use crate::chain::keys::{self, Stage};
use crate::chain::spool::{ErrorLog, ItemSpool, ItemsSlot, SpooledItems};
use crate::error::{Error, Result};
use crate::model::ObjectRef;
use crate::model::{
    Conversation, ConversationCount, ErrorEntry, Item, Report, StageDocument, Status, Summary,
    Verdict, REPORT_SCHEMA,
};
use crate::ports::{MediaLinks, ObjectStore};
use crate::stages::review::doc::{needs_person, ReviewEntry};
use review::{queue_report, read_review, still_current, Overlay};

pub use media::{expiry_note, relative_media_link, url_path, MediaLink};

pub use html::{
    esc, render_html, render_html_to, MAX_BELOW_IN_FULL, MAX_BELOW_LISTED, MAX_FLAGGED_IN_FULL,
    MAX_FLAGGED_LISTED,
};

const STAGE: &str = "write-report";

/// Counts and fixes items on their way into a report: every item leaves with a verdict, and
/// one that somehow has none is `needs_review` with an error, never dropped and never clean.
struct ReportBuilder {
    summary: Summary,
    errors: ErrorLog,
    status: Status,
    threshold: f64,
    overlay: Overlay,
    /// The items that enter the review queue.
    queued: Vec<ReviewEntry>,
}

impl ReportBuilder {
    fn new<I>(doc: &StageDocument<I>, overlay: Overlay) -> Self {
        let mut summary = Summary::default();
        if let Some(u) = &doc.unlisted {
            // Counted at screening: below the threshold, never checked against the policy.
            summary.items += u.below_threshold;
            summary.max_toxicity = summary.max_toxicity.max(u.max_toxicity);
        }
        ReportBuilder {
            summary,
            errors: ErrorLog::new(STAGE),
            status: doc.status,
            threshold: doc.threshold,
            overlay,
            queued: Vec::new(),
        }
    }

    fn add(&mut self, mut item: Item) -> Item {
        if item.verdict.is_none() {
            self.errors.push(ErrorEntry::new(
                STAGE,
                Some(&item.id),
                "no verdict was recorded for this item",
            ));
            item.verdict = Some(Verdict::NeedsReview);
            if self.status == Status::Complete {
                self.status = Status::Partial;
            }
        }
        let s = &mut self.summary;
        s.items += 1;
        if crate::stages::screen_text::over_threshold(&item, self.threshold) {
            s.over_threshold += 1;
        }
        if item.evaluation.is_some() {
            s.evaluated += 1;
        }
        match item.verdict {
            Some(Verdict::Violation) => s.violations += 1,
            Some(Verdict::NeedsReview) => s.needs_review += 1,
            _ => {}
        }
        s.max_toxicity = s.max_toxicity.max(item.toxicity);
        if item.verdict.is_some_and(needs_person) {
            self.queued.push(ReviewEntry::of(&item, self.threshold));
        }
        self.overlay.apply(&mut item);
        item
    }

    fn finish<I, J>(self, doc: StageDocument<I>, items: J) -> (Report<J>, Vec<ReviewEntry>) {
        let mut errors = doc.errors;
        errors.extend(self.errors.into_entries());
        let (conversations, count) =
            settle_conversations(doc.conversations, doc.conversation_count);
        let mut summary = self.summary;
        summary.conversations = count;
        let report = Report {
            schema: REPORT_SCHEMA.into(),
            report_id: doc.id,
            created_at: self.overlay.created_at.unwrap_or_else(now_rfc3339),
            source: doc.source,
            trigger: doc.trigger,
            status: self.status,
            summary,
            items,
            unlisted: doc.unlisted,
            errors,
            usage: doc.usage,
            image: doc.image,
            conversations,
        };
        (report, self.queued)
    }
}

/// Build the report from an evaluated document held in memory.
pub fn build_report(doc: StageDocument) -> Report {
    let mut b = ReportBuilder::new(&doc, Overlay::default());
    let items: Vec<Item> = doc.items.iter().cloned().map(|i| b.add(i)).collect();
    b.finish(doc, items).0
}

/// Build the report from an evaluated document whose items are on disk, item by item, with
/// what people decided (`overlay`); also the items that enter the review queue.
pub fn build_report_spooled(
    doc: StageDocument<SpooledItems>,
    overlay: Overlay,
) -> Result<(Report<SpooledItems>, Vec<ReviewEntry>)> {
    let mut b = ReportBuilder::new(&doc, overlay);
    let mut out = ItemSpool::new()?;
    for item in doc.items.iter()? {
        out.push(&b.add(item?))?;
    }
    let items = out.finish()?;
    Ok(b.finish(doc, items))
}

/// A conversation over the gate that no judge answered is held for a person, never passed;
/// the counts follow the verdicts.
fn settle_conversations(
    mut conversations: Vec<Conversation>,
    count: Option<ConversationCount>,
) -> (Vec<Conversation>, Option<ConversationCount>) {
    for c in &mut conversations {
        c.verdict.get_or_insert(Verdict::NeedsReview);
    }
    let count = count.map(|mut n| {
        let with = |v: Verdict| {
            conversations
                .iter()
                .filter(|c| c.verdict == Some(v))
                .count() as u64
        };
        n.violations = with(Verdict::Violation);
        n.needs_review = with(Verdict::NeedsReview);
        n
    });
    (conversations, count)
}

pub struct ReportDeps<'a> {
    pub store: &'a dyn ObjectStore,
    /// Presigned links for the audio player; without them the report links the recording by
    /// its path relative to `reports/` (the offline folder bucket).
    pub media: Option<&'a dyn MediaLinks>,
    /// Reports fetched at once when seeding the index of a bucket that has none yet.
    pub max_concurrency: usize,
}

/// The whole stage for one `evaluated/<id>.json`: items stream from the document through the
/// report JSON and the page, never all in memory; then the report's row in the index and its
/// flagged items in the review queue.
pub async fn write_report_object(obj: &ObjectRef, deps: &ReportDeps<'_>) -> Result<Outcome> {
    let (id, doc) = match read_stage_document::<SpooledItems>(
        deps.store,
        Stage::WriteReport,
        obj,
        keys::EVALUATED,
    )
    .await?
    {
        Ok(found) => found,
        Err(outcome) => return Ok(outcome),
    };
    let overlay = Overlay::of(read_review(deps.store, &obj.bucket, &id).await?.as_ref());
    let (report, queued, mut written) = write_files(doc, overlay, &obj.bucket, deps).await?;
    // A report not in the index is lost to moderators: a failure here fails the delivery, and
    // the retry rewrites the same report and adds the row once. The same for the queue.
    let added = index::add_to_index(deps.store, &obj.bucket, &report, deps.max_concurrency).await?;
    written.extend(added.written);
    written.extend(queue_report(deps.store, &obj.bucket, &report, queued).await?);
    info!(
        items = report.summary.items,
        violations = report.summary.violations,
        needs_review = report.summary.needs_review,
        "report written"
    );
    Ok(Outcome::Wrote(written))
}

/// Write a report's JSON and page again with the review document as it is now, from its
/// evaluated document (after a decision, an undo or an appeal). A change that lands while
/// it writes makes it start again, so the last writer always shows the last change.
pub async fn redraw(report_id: &str, bucket: &str, deps: &ReportDeps<'_>) -> Result<()> {
    let key = keys::evaluated_key(report_id);
    for _ in 0..review::MAX_REDRAWS {
        let overlay = Overlay::of(read_review(deps.store, bucket, report_id).await?.as_ref());
        let seq = overlay.seq;
        let doc = crate::chain::delivery::read_document::<StageDocument<SpooledItems>>(
            deps.store, bucket, &key,
        )
        .await?
        .ok_or_else(|| Error::Unknown {
            what: "report",
            id: report_id.to_string(),
        })?;
        write_files(doc, overlay, bucket, deps).await?;
        if still_current(deps.store, bucket, report_id, seq).await? {
            return Ok(());
        }
    }
    Err(Error::service(
        "write-report",
        crate::error::ServiceErrorKind::Throttled,
        format!("report {report_id} kept changing while it was redrawn; try again"),
    ))
}

type Written = (Report<SpooledItems>, Vec<ReviewEntry>, Vec<String>);

/// The report JSON and its page.
async fn write_files(
    doc: StageDocument<SpooledItems>,
    overlay: Overlay,
    bucket: &str,
    deps: &ReportDeps<'_>,
) -> Result<Written> {
    let threshold = doc.threshold;
    let (report, queued) = tokio::task::spawn_blocking(move || build_report_spooled(doc, overlay))
        .await
        .map_err(|e| Error::Input(format!("report builder failed: {e}")))??;
    let json_key = keys::report_json_key(&report.report_id);
    let html_key = keys::report_html_key(&report.report_id);
    put_spooled(
        deps.store,
        bucket,
        &json_key,
        report.clone().with_items(ItemsSlot),
        &report.items,
        "application/json",
    )
    .await?;
    let media = media::media_link(&report, bucket, deps.media).await;
    let (report, page) = tokio::task::spawn_blocking(move || {
        let page = write_temp(|w| render_html_to(&report, threshold, media.as_ref(), w));
        (report, page)
    })
    .await
    .map_err(|e| Error::Input(format!("report page writer failed: {e}")))?;
    deps.store
        .put_file(
            bucket,
            &html_key,
            page?.as_ref(),
            "text/html; charset=utf-8",
        )
        .await?;
    Ok((report, queued, vec![json_key, html_key]))
}

#[cfg(test)]
mod tests;
