//! The review queue across reports, oldest first, without reading every report per request.
//!
//! Reports are listed in pages of [`PAGE_ROWS`] (`review/queue/pages/NNNNNN.json`), each row
//! holding its report's counts per state; the head (`review/queue/head.json`) holds, per
//! page, which states it has items in. A request reads the head, then only pages with items in
//! the state asked for, then only those reports' review documents. Every write is a
//! compare-and-swap, and a copy is only replaced by a newer one (`seq`, `version`), so writers
//! in any order leave the last change. A decision rewrites a row or the head only when what a
//! reader filters on changes (a state appearing or emptying, a category), so the head is not a
//! point every decision contends for.

use serde::{Deserialize, Serialize};

use super::doc::{QueueState, ReviewDoc, StateCounts};
use crate::chain::delivery::get_json;
use crate::chain::keys;
use crate::chain::swap::{swap_json, Change};
use crate::error::{Error, Result};
use crate::model::SourceKind;
use crate::ports::ObjectStore;

pub const QUEUE_SCHEMA: &str = "moderation.review-queue/v1";
/// Reports a page lists: it bounds each page (about 250 bytes a row).
pub const PAGE_ROWS: usize = 200;
/// Conversation ids a row keeps for the filter; a report with more is read to filter.
const ROW_CONVERSATIONS: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageSummary {
    pub number: u64,
    pub version: u64,
    /// The states the page's reports have items in.
    pub states: Vec<QueueState>,
}

/// The states with items in `c`.
pub fn present(c: &StateCounts) -> Vec<QueueState> {
    QueueState::ALL
        .into_iter()
        .filter(|s| c.get(*s) > 0)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueHead {
    pub schema: String,
    /// The page being filled.
    pub page: u64,
    /// Every page's totals, oldest first.
    pub pages: Vec<PageSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRow {
    pub report_id: String,
    pub created_at: String,
    pub kind: SourceKind,
    pub seq: u64,
    pub counts: StateCounts,
    pub categories: Vec<String>,
    pub conversations: Vec<String>,
    /// More conversations than listed: the filter reads the report.
    #[serde(default)]
    pub more_conversations: bool,
}

impl QueueRow {
    pub fn of(doc: &ReviewDoc) -> Self {
        let mut conversations = doc.conversations();
        let more_conversations = conversations.len() > ROW_CONVERSATIONS;
        conversations.truncate(ROW_CONVERSATIONS);
        QueueRow {
            report_id: doc.report_id.clone(),
            created_at: doc.created_at.clone(),
            kind: doc.source.kind,
            seq: doc.seq,
            counts: doc.counts(),
            categories: doc.categories(),
            conversations,
            more_conversations,
        }
    }

    /// Whether a reader would filter this row differently from `other`.
    fn filters_differ(&self, other: &QueueRow) -> bool {
        present(&self.counts) != present(&other.counts)
            || self.categories != other.categories
            || self.conversations != other.conversations
            || self.more_conversations != other.more_conversations
    }

    /// Whether the report may hold an item `filter` asks for (decided exactly on its items).
    pub fn may_match(&self, f: &QueueFilter) -> bool {
        self.counts.get(f.state) > 0
            && f.kind.is_none_or(|k| k == self.kind)
            && f.category
                .as_ref()
                .is_none_or(|c| self.categories.contains(c))
            && f.conversation
                .as_ref()
                .is_none_or(|c| self.more_conversations || self.conversations.contains(c))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuePage {
    pub schema: String,
    pub number: u64,
    /// Grows with every write of the page.
    pub version: u64,
    pub rows: Vec<QueueRow>,
}

impl QueuePage {
    fn new(number: u64) -> Self {
        QueuePage {
            schema: QUEUE_SCHEMA.into(),
            number,
            version: 0,
            rows: Vec::new(),
        }
    }

    fn totals(&self) -> StateCounts {
        let mut c = StateCounts::default();
        for r in &self.rows {
            c.add(&r.counts);
        }
        c
    }
}

/// What a queue request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFilter {
    pub state: QueueState,
    pub category: Option<String>,
    pub kind: Option<SourceKind>,
    pub conversation: Option<String>,
}

impl Default for QueueFilter {
    fn default() -> Self {
        QueueFilter {
            state: QueueState::Open,
            category: None,
            kind: None,
            conversation: None,
        }
    }
}

fn head_of(found: Option<QueueHead>) -> QueueHead {
    found.unwrap_or(QueueHead {
        schema: QUEUE_SCHEMA.into(),
        page: 1,
        pages: Vec::new(),
    })
}

/// List the report of `doc` (idempotent: a report already on the page being filled, or the
/// one before it, is not listed twice). Returns the page it is on.
pub async fn list_report(store: &dyn ObjectStore, bucket: &str, doc: &ReviewDoc) -> Result<u64> {
    let row = QueueRow::of(doc);
    loop {
        let head = head_of(get_json(store, bucket, &keys::queue_head_key()).await?);
        if head.page > 1 {
            let before: Option<QueuePage> =
                get_json(store, bucket, &keys::queue_page_key(head.page - 1)).await?;
            if before.is_some_and(|p| p.rows.iter().any(|r| r.report_id == row.report_id)) {
                return Ok(head.page - 1);
            }
        }
        let number = head.page;
        let mut full = false;
        let page = swap_json(
            store,
            bucket,
            &keys::queue_page_key(number),
            |found: Option<QueuePage>| {
                let mut page = found.unwrap_or_else(|| QueuePage::new(number));
                full = false;
                if page.rows.iter().any(|r| r.report_id == row.report_id) {
                    return Ok(Change::Keep(page));
                }
                if page.rows.len() >= PAGE_ROWS {
                    full = true;
                    return Ok(Change::Keep(page));
                }
                page.rows.push(row.clone());
                page.version += 1;
                Ok(Change::Write(page))
            },
        )
        .await?;
        if full {
            next_page(store, bucket, number).await?;
            continue;
        }
        sync_summary(store, bucket, &page).await?;
        return Ok(number);
    }
}

/// List the report of `doc` if one of its items needs a person and it is not listed yet
/// (recording the page in the document, unless another writer already did), then carry its
/// counts to the queue. Returns the page when this call listed it.
pub async fn ensure_listed(
    store: &dyn ObjectStore,
    bucket: &str,
    doc: &ReviewDoc,
) -> Result<Option<u64>> {
    if doc.queue_page.is_some() {
        sync_row(store, bucket, doc).await?;
        return Ok(None);
    }
    if doc.counts() == StateCounts::default() {
        return Ok(None);
    }
    let page = list_report(store, bucket, doc).await?;
    let key = keys::review_doc_key(&doc.report_id);
    let doc = swap_json(store, bucket, &key, |found: Option<ReviewDoc>| {
        let mut d = found.ok_or_else(|| Error::Input(format!("{key} vanished")))?;
        if d.queue_page.is_some() {
            return Ok(Change::Keep(d));
        }
        d.queue_page = Some(page);
        d.seq += 1;
        Ok(Change::Write(d))
    })
    .await?;
    // Changes made before the page was known reach the row now.
    sync_row(store, bucket, &doc).await?;
    Ok(Some(page))
}

/// Move the head on from full page `number` (unless someone already did).
async fn next_page(store: &dyn ObjectStore, bucket: &str, number: u64) -> Result<()> {
    swap_json(store, bucket, &keys::queue_head_key(), |found| {
        let mut head = head_of(found);
        if head.page > number {
            return Ok(Change::Keep(head));
        }
        head.page = number + 1;
        Ok(Change::Write(head))
    })
    .await?;
    Ok(())
}

/// Times a copy is carried again because its source changed meanwhile.
const MAX_CARRIES: u32 = 16;

/// Put which states `page` has items in into the head. Writers skip a head that already says
/// the same, so a writer that carried an older page must look again: it carries the page
/// again until the page it read is still the newest.
async fn sync_summary(store: &dyn ObjectStore, bucket: &str, page: &QueuePage) -> Result<()> {
    let mut page = page.clone();
    for _ in 0..MAX_CARRIES {
        let summary = PageSummary {
            number: page.number,
            version: page.version,
            states: present(&page.totals()),
        };
        swap_json(store, bucket, &keys::queue_head_key(), |found| {
            let mut head = head_of(found);
            match head.pages.iter_mut().find(|p| p.number == summary.number) {
                Some(p) if p.version >= summary.version || p.states == summary.states => {
                    return Ok(Change::Keep(head))
                }
                Some(p) => *p = summary.clone(),
                None => {
                    head.pages.push(summary.clone());
                    head.pages.sort_by_key(|p| p.number);
                }
            }
            Ok(Change::Write(head))
        })
        .await?;
        match get_json::<QueuePage>(store, bucket, &keys::queue_page_key(page.number)).await? {
            Some(now) if now.version != page.version => page = now,
            _ => return Ok(()),
        }
    }
    Err(busy(&keys::queue_head_key()))
}

fn busy(key: &str) -> Error {
    Error::service(
        "review-queue",
        crate::error::ServiceErrorKind::Throttled,
        format!("{key} kept changing while it was updated; try again"),
    )
}

/// Carry what `doc` (after a decision or an appeal) means for the queue to its row and the
/// head, again while the document changes under it (see [`sync_summary`]).
pub async fn sync_row(store: &dyn ObjectStore, bucket: &str, doc: &ReviewDoc) -> Result<()> {
    let Some(number) = doc.queue_page else {
        return Ok(());
    };
    let key = keys::review_doc_key(&doc.report_id);
    let mut doc = doc.clone();
    for _ in 0..MAX_CARRIES {
        let page = carry_row(store, bucket, number, QueueRow::of(&doc)).await?;
        sync_summary(store, bucket, &page).await?;
        match get_json::<ReviewDoc>(store, bucket, &key).await? {
            Some(now) if now.seq != doc.seq => doc = now,
            _ => return Ok(()),
        }
    }
    Err(busy(&key))
}

async fn carry_row(
    store: &dyn ObjectStore,
    bucket: &str,
    number: u64,
    row: QueueRow,
) -> Result<QueuePage> {
    swap_json(
        store,
        bucket,
        &keys::queue_page_key(number),
        |found: Option<QueuePage>| {
            let Some(mut page) = found else {
                return Err(Error::Input(format!(
                    "queue page {number} of report {} is missing",
                    row.report_id
                )));
            };
            match page.rows.iter_mut().find(|r| r.report_id == row.report_id) {
                Some(r) if r.seq < row.seq && r.filters_differ(&row) => *r = row.clone(),
                _ => return Ok(Change::Keep(page)),
            }
            page.version += 1;
            Ok(Change::Write(page))
        },
    )
    .await
}

/// A point in the queue to go on from: the page, and the rows of it already read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub page: u64,
    pub row: usize,
}

impl Cursor {
    pub fn parse(s: &str) -> Option<Cursor> {
        let (p, r) = s.split_once(':')?;
        Some(Cursor {
            page: p.parse().ok()?,
            row: r.parse().ok()?,
        })
    }

    pub fn render(&self) -> String {
        format!("{}:{}", self.page, self.row)
    }
}

/// The reports that may hold what `filter` asks for, oldest first, from `after`: enough of
/// them for `max_items` items by their rows' counts, and where to go on from if there may be
/// more.
pub async fn candidate_reports(
    store: &dyn ObjectStore,
    bucket: &str,
    filter: &QueueFilter,
    after: Option<Cursor>,
    max_items: usize,
) -> Result<(Vec<String>, Option<Cursor>)> {
    let Some(head) = get_json::<QueueHead>(store, bucket, &keys::queue_head_key()).await? else {
        return Ok((Vec::new(), None));
    };
    let start = after.unwrap_or(Cursor { page: 0, row: 0 });
    let mut out = Vec::new();
    let mut items = 0;
    for summary in head.pages.iter().filter(|p| p.number >= start.page) {
        if !summary.states.contains(&filter.state) {
            continue;
        }
        let Some(page) =
            get_json::<QueuePage>(store, bucket, &keys::queue_page_key(summary.number)).await?
        else {
            continue;
        };
        let skip = if page.number == start.page {
            start.row
        } else {
            0
        };
        for (i, row) in page.rows.iter().enumerate().skip(skip) {
            if items >= max_items {
                return Ok((
                    out,
                    Some(Cursor {
                        page: page.number,
                        row: i,
                    }),
                ));
            }
            if row.may_match(filter) {
                out.push(row.report_id.clone());
                items += row.counts.get(filter.state).max(1) as usize;
            }
        }
    }
    Ok((out, None))
}
