//! The review loop (`docs/review.md`): the queue of items that need a person, decisions,
//! undos and appeals recorded as append-only audit records under `decisions/<report_id>/`,
//! and each report's review document that the queue and the report show.
//!
//! A change is: the record written once (never over another), then the review document
//! updated by compare-and-swap (so concurrent decisions on one report all survive), then the
//! queue's counts, then the decision published. The report's JSON and page are redrawn by
//! write-report from the review document (`write_report::redraw`).

mod appeal;
pub mod audit;
pub mod doc;
mod listing;
pub mod queue;
mod version;
mod view;

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

pub use appeal::{appeal, AppealJudge, AppealRequest};
pub use audit::{audit, export_csv};
pub use doc::{needs_person, QueueState, ReviewDoc, ReviewEntry, StateCounts};
pub use listing::{queue, QueueItem, QueueOut};
pub use queue::{Cursor, QueueFilter};
pub use version::{version_of, BucketPolicyVersion};
pub use view::{item_view, statement, ItemView, Statement};

use crate::chain::delivery::{get_json, now_rfc3339, read_document};
use crate::chain::keys;
use crate::chain::spool::SpooledItems;
use crate::chain::swap::{swap_json, Change};
use crate::error::{Error, Result};
use crate::model::{Decision, HumanVerdict, Item, ReviewRecord, StageDocument, Undo};
use crate::ports::{DecisionEvents, ObjectStore, PolicyVersion};

/// What the review loop works with.
pub struct ReviewDeps<'a> {
    pub store: &'a dyn ObjectStore,
    pub bucket: &'a str,
    pub policy: &'a dyn PolicyVersion,
    pub events: &'a dyn DecisionEvents,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRequest {
    pub report_id: String,
    pub item_id: String,
    pub verdict: HumanVerdict,
    pub reason: String,
    /// From the authenticated principal on AWS; the request body's only offline.
    pub moderator: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoRequest {
    pub report_id: String,
    pub item_id: String,
    pub decision_id: String,
    pub moderator: String,
}

/// A change recorded: the record, the review document as left, and what did not follow
/// (the queue's counts or the published event), which the answer names.
#[derive(Debug, Clone)]
pub struct Recorded<T> {
    pub record: T,
    pub doc: ReviewDoc,
    pub warnings: Vec<String>,
}

/// Record a moderator's decision on one item of a report.
pub async fn decide(req: &DecisionRequest, deps: &ReviewDeps<'_>) -> Result<Recorded<Decision>> {
    check_id("report_id", &req.report_id)?;
    let entry = entry_for(deps, &req.report_id, &req.item_id).await?;
    let at = now_rfc3339();
    let decision = Decision {
        id: new_id(&[&req.report_id, &req.item_id, &req.moderator, &at]),
        report_id: req.report_id.clone(),
        item_id: req.item_id.clone(),
        verdict: req.verdict,
        reason: req.reason.clone(),
        moderator: req.moderator.clone(),
        at,
        policy_version: deps.policy.policy_version().await?,
        automatic_verdict: entry.verdict,
        models: entry.models.clone(),
    };
    let record = ReviewRecord::Decision(decision.clone());
    let doc = record_and_apply(deps, &record, |doc| doc.apply_decision(&decision)).await?;
    let mut warnings = sync_queue(deps, &doc).await;
    warnings.extend(publish(deps, &record).await);
    Ok(Recorded {
        record: decision,
        doc,
        warnings,
    })
}

/// Take a decision back: recorded as an undo, never by deleting the decision.
pub async fn undo(req: &UndoRequest, deps: &ReviewDeps<'_>) -> Result<Recorded<Undo>> {
    check_id("report_id", &req.report_id)?;
    let entry = entry_for(deps, &req.report_id, &req.item_id).await?;
    // Checked before anything is written: the record is never written for a refused undo.
    let mut probe = ReviewDoc::empty(&req.report_id);
    probe.entries.push(entry);
    let at = now_rfc3339();
    let undo = Undo {
        id: new_id(&[&req.report_id, &req.decision_id, &at]),
        report_id: req.report_id.clone(),
        item_id: req.item_id.clone(),
        decision_id: req.decision_id.clone(),
        moderator: req.moderator.clone(),
        at,
    };
    probe.apply_undo(&undo)?;
    let record = ReviewRecord::Undo(undo.clone());
    let doc = record_and_apply(deps, &record, |doc| doc.apply_undo(&undo)).await?;
    let mut warnings = sync_queue(deps, &doc).await;
    warnings.extend(publish(deps, &record).await);
    Ok(Recorded {
        record: undo,
        doc,
        warnings,
    })
}

/// Write `record` once under `decisions/<report_id>/`, then apply it to the review document.
async fn record_and_apply(
    deps: &ReviewDeps<'_>,
    record: &ReviewRecord,
    mut apply: impl FnMut(&mut ReviewDoc) -> Result<()>,
) -> Result<ReviewDoc> {
    let key = keys::decision_record_key(record.report_id(), record.at(), record.id());
    let body = serde_json::to_vec_pretty(record).map_err(|source| Error::Document {
        key: key.clone(),
        source,
    })?;
    if deps
        .store
        .put_if(deps.bucket, &key, body, "application/json", None)
        .await?
        .is_none()
    {
        return Err(Error::Invalid(format!("record {key} already exists")));
    }
    let doc_key = keys::review_doc_key(record.report_id());
    swap_json(
        deps.store,
        deps.bucket,
        &doc_key,
        |found: Option<ReviewDoc>| {
            let mut doc = found.ok_or_else(|| Error::Unknown {
                what: "review document",
                id: doc_key.clone(),
            })?;
            apply(&mut doc)?;
            Ok(Change::Write(doc))
        },
    )
    .await
}

/// Publish a decision or an undo for the game; a failure is named in the answer (the record
/// stands, and the audit's CSV has it).
async fn publish(deps: &ReviewDeps<'_>, record: &ReviewRecord) -> Vec<String> {
    match deps.events.publish(record).await {
        Ok(()) => Vec::new(),
        Err(e) => {
            warn!(error = %e, record = %record.id(), "not published");
            vec![format!("recorded, but not published for the game: {e}")]
        }
    }
}

/// Carry the document's counts to the queue (listing the report first if a person's decision
/// is its first item to need the queue); a failure is named, not fatal (the record and the
/// document are the truth, and the next change of the report carries them).
async fn sync_queue(deps: &ReviewDeps<'_>, doc: &ReviewDoc) -> Vec<String> {
    match queue::ensure_listed(deps.store, deps.bucket, doc).await {
        Ok(_) => Vec::new(),
        Err(e) => {
            warn!(error = %e, report = %doc.report_id, "queue counts not updated");
            vec![format!("the queue's counts were not updated: {e}")]
        }
    }
}

/// The review entry of an item, adding one to the report's review document (creating the
/// document) when the item was not flagged: a person may decide on any item of a report.
async fn entry_for(deps: &ReviewDeps<'_>, report_id: &str, item_id: &str) -> Result<ReviewEntry> {
    let key = keys::review_doc_key(report_id);
    if let Some(doc) = get_json::<ReviewDoc>(deps.store, deps.bucket, &key).await? {
        if let Some(e) = doc.entry(item_id) {
            return Ok(e.clone());
        }
    }
    let Located {
        doc: evaluated,
        item,
        ..
    } = locate(deps, report_id, item_id, 0).await?;
    let doc = swap_json(deps.store, deps.bucket, &key, |found: Option<ReviewDoc>| {
        let mut doc = found.unwrap_or_else(|| ReviewDoc::of_document(&evaluated));
        if doc.entry(item_id).is_some() {
            return Ok(Change::Keep(doc));
        }
        doc.ensure_entry(&item, evaluated.threshold);
        Ok(Change::Write(doc))
    })
    .await?;
    doc.entry(item_id)
        .cloned()
        .ok_or_else(|| unknown_item(item_id))
}

/// A report's evaluated document, its items spooled (not held); an unknown report is 404.
async fn evaluated(deps: &ReviewDeps<'_>, report_id: &str) -> Result<StageDocument<SpooledItems>> {
    read_document(deps.store, deps.bucket, &keys::evaluated_key(report_id))
        .await?
        .ok_or_else(|| Error::Unknown {
            what: "report",
            id: report_id.to_string(),
        })
}

fn unknown_item(item_id: &str) -> Error {
    Error::Unknown {
        what: "item",
        id: item_id.to_string(),
    }
}

/// An item of a report as evaluated, found in one pass over its document (items spooled, not
/// held).
pub(crate) struct Located {
    pub doc: StageDocument<()>,
    pub item: Item,
    /// The `look_back` items just before it, any conversation, oldest first.
    pub before: Vec<Item>,
}

pub(crate) async fn locate(
    deps: &ReviewDeps<'_>,
    report_id: &str,
    item_id: &str,
    look_back: usize,
) -> Result<Located> {
    let doc = evaluated(deps, report_id).await?;
    let mut before = std::collections::VecDeque::new();
    for item in doc.items.iter()? {
        let item = item?;
        if item.id == item_id {
            return Ok(Located {
                doc: doc.with_items(()),
                item,
                before: before.into(),
            });
        }
        before.push_back(item);
        if before.len() > look_back {
            before.pop_front();
        }
    }
    Err(unknown_item(item_id))
}

/// Ids become object keys: letters, digits, `.`, `_` and `-` only.
pub fn check_id(field: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{field} {id:?} is not an id (letters, digits, '.', '_', '-')"
        )))
    }
}

/// A new record id: unique across processes (time, process, a counter, a random draw).
fn new_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    use std::hash::BuildHasher;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let draw = std::collections::hash_map::RandomState::new().hash_one(n);
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.update(std::process::id().to_le_bytes());
    h.update(n.to_le_bytes());
    h.update(draw.to_le_bytes());
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
