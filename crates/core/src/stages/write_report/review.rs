//! The report and the review loop: a report's flagged items enter the review queue, and what
//! people decided is shown beside the automatic verdicts (`redraw` after each change).

use std::collections::HashMap;

use crate::chain::delivery::get_json;
use crate::chain::keys;
use crate::chain::swap::{swap_json, Change};
use crate::error::Result;
use crate::model::{AppealView, DecisionView, Item, Report};
use crate::ports::ObjectStore;
use crate::stages::review::doc::{ReviewDoc, ReviewEntry};
use crate::stages::review::queue::ensure_listed;

/// Times a redraw starts again because a decision landed while it wrote.
pub const MAX_REDRAWS: u32 = 8;

/// The decisions and appeals to show, by item id.
#[derive(Debug, Default)]
pub struct Overlay {
    by_item: HashMap<String, (Option<DecisionView>, Option<AppealView>)>,
    /// The review document's change count when read.
    pub seq: Option<u64>,
    /// The report's first time, kept when it is written again.
    pub created_at: Option<String>,
}

impl Overlay {
    pub fn of(doc: Option<&ReviewDoc>) -> Self {
        let Some(doc) = doc else {
            return Overlay::default();
        };
        let by_item = doc
            .entries
            .iter()
            .map(|e| (e.item_id.clone(), (e.decision_view(), e.appeal_view())))
            .filter(|(_, (d, a))| d.is_some() || a.is_some())
            .collect();
        Overlay {
            by_item,
            seq: Some(doc.seq),
            created_at: Some(doc.created_at.clone()),
        }
    }

    pub fn apply(&self, item: &mut Item) {
        let (d, a) = self.by_item.get(&item.id).cloned().unwrap_or_default();
        item.decision = d;
        item.appeal = a;
    }
}

pub async fn read_review(
    store: &dyn ObjectStore,
    bucket: &str,
    report_id: &str,
) -> Result<Option<ReviewDoc>> {
    get_json(store, bucket, &keys::review_doc_key(report_id)).await
}

/// Put the report's flagged items in the review queue: its review document (created, or
/// given the entries it lacks) and its row in the queue. Idempotent for a redelivered report.
pub async fn queue_report<I>(
    store: &dyn ObjectStore,
    bucket: &str,
    report: &Report<I>,
    entries: Vec<ReviewEntry>,
) -> Result<Vec<String>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let key = keys::review_doc_key(&report.report_id);
    let doc = swap_json(store, bucket, &key, |found: Option<ReviewDoc>| {
        let mut doc = found.unwrap_or_else(|| ReviewDoc::new(report));
        let before = doc.entries.len();
        for e in &entries {
            if doc.entry(&e.item_id).is_none() {
                doc.entries.push(e.clone());
            }
        }
        if doc.entries.len() == before && doc.seq > 0 {
            return Ok(Change::Keep(doc));
        }
        doc.seq += 1;
        Ok(Change::Write(doc))
    })
    .await?;
    let mut written = vec![key];
    if let Some(page) = ensure_listed(store, bucket, &doc).await? {
        written.push(keys::queue_page_key(page));
    }
    Ok(written)
}

/// Whether a redraw that read the review document at `seq` is still current.
pub async fn still_current(
    store: &dyn ObjectStore,
    bucket: &str,
    report_id: &str,
    seq: Option<u64>,
) -> Result<bool> {
    Ok(read_review(store, bucket, report_id).await?.map(|d| d.seq) == seq)
}
