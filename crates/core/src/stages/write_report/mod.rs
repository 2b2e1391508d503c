//! write-report: the moderator report per source — `reports/<id>.json` (the
//! `moderation.report/v1` contract), a self-contained `reports/<id>.html`, and a row in the
//! report index (`crate::stages::write_report::index`).

mod html;
pub mod index;
mod media;

use tracing::info;

use crate::chain::delivery::{now_rfc3339, put_spooled, read_stage_document, write_temp, Outcome};
use crate::chain::keys::{self, Stage};
use crate::chain::spool::{ErrorLog, ItemSpool, ItemsSlot, SpooledItems};
use crate::error::{Error, Result};
use crate::model::ObjectRef;
use crate::model::{
    ErrorEntry, Item, Report, StageDocument, Status, Summary, Verdict, REPORT_SCHEMA,
};
use crate::ports::{MediaLinks, ObjectStore};

pub use media::{expiry_note, relative_media_link, MediaLink};

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
}

impl ReportBuilder {
    fn new<I>(doc: &StageDocument<I>) -> Self {
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
        item
    }

    fn finish<I, J>(self, doc: StageDocument<I>, items: J) -> Report<J> {
        let mut errors = doc.errors;
        errors.extend(self.errors.into_entries());
        Report {
            schema: REPORT_SCHEMA.into(),
            report_id: doc.id,
            created_at: now_rfc3339(),
            source: doc.source,
            trigger: doc.trigger,
            status: self.status,
            summary: self.summary,
            items,
            unlisted: doc.unlisted,
            errors,
            usage: doc.usage,
            image: doc.image,
        }
    }
}

/// Build the report from an evaluated document held in memory.
pub fn build_report(doc: StageDocument) -> Report {
    let mut b = ReportBuilder::new(&doc);
    let items: Vec<Item> = doc.items.iter().cloned().map(|i| b.add(i)).collect();
    b.finish(doc, items)
}

/// Build the report from an evaluated document whose items are on disk, item by item.
pub fn build_report_spooled(doc: StageDocument<SpooledItems>) -> Result<Report<SpooledItems>> {
    let mut b = ReportBuilder::new(&doc);
    let mut out = ItemSpool::new()?;
    for item in doc.items.iter()? {
        out.push(&b.add(item?))?;
    }
    let items = out.finish()?;
    Ok(b.finish(doc, items))
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
/// report JSON and the page, never all in memory.
pub async fn write_report_object(obj: &ObjectRef, deps: &ReportDeps<'_>) -> Result<Outcome> {
    let (_, doc) = match read_stage_document::<SpooledItems>(
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
    let threshold = doc.threshold;
    let report = tokio::task::spawn_blocking(move || build_report_spooled(doc))
        .await
        .map_err(|e| Error::Input(format!("report builder failed: {e}")))??;
    let json_key = keys::report_json_key(&report.report_id);
    let html_key = keys::report_html_key(&report.report_id);
    put_spooled(
        deps.store,
        &obj.bucket,
        &json_key,
        report.clone().with_items(ItemsSlot),
        &report.items,
        "application/json",
    )
    .await?;
    let media = media::media_link(&report, &obj.bucket, deps.media).await;
    let (report, page) = tokio::task::spawn_blocking(move || {
        let page = write_temp(|w| render_html_to(&report, threshold, media.as_ref(), w));
        (report, page)
    })
    .await
    .map_err(|e| Error::Input(format!("report page writer failed: {e}")))?;
    deps.store
        .put_file(
            &obj.bucket,
            &html_key,
            page?.as_ref(),
            "text/html; charset=utf-8",
        )
        .await?;
    // A report not in the index is lost to moderators: a failure here fails the delivery, and
    // the retry rewrites the same report and adds the row once.
    let mut written = vec![json_key, html_key];
    let added = index::add_to_index(deps.store, &obj.bucket, &report, deps.max_concurrency).await?;
    written.extend(added.written);
    info!(
        items = report.summary.items,
        violations = report.summary.violations,
        needs_review = report.summary.needs_review,
        "report written"
    );
    Ok(Outcome::Wrote(written))
}

#[cfg(test)]
mod tests;
