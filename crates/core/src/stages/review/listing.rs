//! Reading the queue: the items in a state (and category, kind, conversation), oldest first,
//! reading only the reports whose queue rows say they may hold some.

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use super::doc::{QueueState, ReviewDoc, ReviewEntry};
use super::queue::{candidate_reports, Cursor, QueueFilter};
use super::ReviewDeps;
use crate::chain::delivery::get_json;
use crate::chain::keys;
use crate::error::Result;
use crate::model::{AppealView, DecisionView, Source, Verdict};

/// Review documents read at once.
const READS: usize = 8;
/// Items one batch of reports is chosen for.
const MAX_LIMIT_PER_BATCH: usize = 500;

/// One item of the queue (`docs/review.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueItem {
    pub report_id: String,
    pub item_id: String,
    pub source: Source,
    pub verdict: Verdict,
    pub categories: Vec<String>,
    pub text: String,
    pub created_at: String,
    pub state: QueueState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    pub toxicity: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appeal: Option<AppealView>,
}

impl QueueItem {
    fn of(doc: &ReviewDoc, e: &ReviewEntry, state: QueueState) -> Self {
        QueueItem {
            report_id: doc.report_id.clone(),
            item_id: e.item_id.clone(),
            source: doc.source.clone(),
            verdict: e.verdict,
            categories: e.categories.clone(),
            text: e.text.clone(),
            created_at: doc.created_at.clone(),
            state,
            user: e.user.clone(),
            conversation: e.conversation.clone(),
            toxicity: e.toxicity,
            start_time: e.start_time,
            end_time: e.end_time,
            decision: e.decision_view(),
            appeal: e.appeal_view(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueOut {
    pub items: Vec<QueueItem>,
    /// Pass as `after` for the rest, when there may be more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

fn matches(e: &ReviewEntry, f: &QueueFilter) -> Option<QueueState> {
    let state = e.state.filter(|s| *s == f.state)?;
    let category = f.category.as_ref().is_none_or(|c| e.categories.contains(c));
    let conversation = f
        .conversation
        .as_ref()
        .is_none_or(|c| e.conversation.as_ref() == Some(c));
    (category && conversation).then_some(state)
}

/// Up to `limit` items matching `filter`, oldest report first, from `after`.
pub async fn queue(
    deps: &ReviewDeps<'_>,
    filter: &QueueFilter,
    after: Option<Cursor>,
    limit: usize,
) -> Result<QueueOut> {
    let mut items = Vec::new();
    let mut cursor = after;
    // A report listed twice (a redelivery racing its first listing) is shown once.
    let mut seen = std::collections::HashSet::new();
    // Reports are read in batches: a batch may hold none of the items asked for.
    loop {
        // Reports enough for the items missing, by their rows' counts (the category and
        // conversation filters may leave fewer: then another batch).
        let wanted = limit
            .saturating_sub(items.len())
            .clamp(1, MAX_LIMIT_PER_BATCH);
        let (reports, next) =
            candidate_reports(deps.store, deps.bucket, filter, cursor, wanted).await?;
        let docs: Vec<Option<ReviewDoc>> = stream::iter(reports)
            .map(|id| async move {
                get_json::<ReviewDoc>(deps.store, deps.bucket, &keys::review_doc_key(&id)).await
            })
            .buffered(READS)
            .try_collect()
            .await?;
        for doc in docs
            .iter()
            .flatten()
            .filter(|d| seen.insert(d.report_id.clone()))
        {
            for e in &doc.entries {
                if let Some(state) = matches(e, filter) {
                    items.push(QueueItem::of(doc, e, state));
                }
            }
        }
        cursor = next;
        if items.len() >= limit || cursor.is_none() {
            break;
        }
    }
    // A report's items are listed whole: the cursor is at report granularity.
    Ok(QueueOut {
        items,
        next: cursor.map(|c| c.render()),
    })
}
