//! The report index: `reports/index.html` and its older pages, kept in O(1) requests a report.
//!
//! A report adds one row to a small head document (`reports/index/head.json`) by
//! compare-and-swap (S3 `If-Match` on the ETag, retried on 412), never reading other reports.
//! When the head's page holds [`PAGE_ROWS`] rows, the next writer seals it as
//! `reports/pages/NNNNNN.html` (written once, never again) and starts a new page. The head
//! is what `index.html` shows, newest first; `index.html` itself is replaced by
//! compare-and-swap too, and only by a newer head. So 50 concurrent reports lose no row, and
//! the millionth report costs what the first did.

use std::fmt::Write as _;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use super::html::{esc, page, status_str};
use crate::chain::delivery::read_document;
use crate::chain::keys;
use crate::chain::spool::SkippedItems;
use crate::chain::swap::{backoff, MAX_SWAPS};
use crate::error::{Error, Result, ServiceErrorKind};
use crate::model::{Report, Status};
use crate::ports::ObjectStore;

pub const INDEX_SCHEMA: &str = "moderation.report-index/v1";
/// Rows a page holds before it is sealed. It bounds the head (about 300 bytes a row) and so
/// every request a report makes.
pub const PAGE_ROWS: usize = 200;

/// One report in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexRow {
    pub report_id: String,
    pub source_uri: String,
    pub status: Status,
    pub items: u64,
    pub over_threshold: u64,
    pub violations: u64,
    pub needs_review: u64,
    pub created_at: String,
}

impl IndexRow {
    pub fn of<I>(report: &Report<I>) -> Self {
        let s = &report.summary;
        IndexRow {
            report_id: report.report_id.clone(),
            source_uri: report.source.uri.clone(),
            status: report.status,
            items: s.items,
            over_threshold: s.over_threshold,
            violations: s.violations,
            needs_review: s.needs_review,
            created_at: report.created_at.clone(),
        }
    }
}

/// `reports/index/head.json`: the page being filled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexHead {
    pub schema: String,
    /// This page's number; pages `1..page` are sealed.
    pub page: u64,
    /// Oldest first.
    pub rows: Vec<IndexRow>,
    /// The ids on the last sealed page, so a report delivered twice across a seal is not
    /// listed twice.
    #[serde(default)]
    pub sealed_ids: Vec<String>,
    /// The page before this one when it is not `page - 1` (a damaged head restarted the
    /// numbering after the page `index.html` showed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older: Option<u64>,
}

/// A full page moved out of the head: written once as `reports/pages/NNNNNN.html`.
pub struct SealedPage {
    pub number: u64,
    pub older: Option<u64>,
    pub rows: Vec<IndexRow>,
}

impl SealedPage {
    pub fn render(&self) -> String {
        render_sealed_page(&self.rows, self.number, self.older)
    }
}

impl IndexHead {
    fn new(page: u64) -> Self {
        IndexHead {
            schema: INDEX_SCHEMA.into(),
            page,
            rows: Vec::new(),
            sealed_ids: Vec::new(),
            older: None,
        }
    }

    /// The sealed page before this one, if any.
    fn older_page(&self) -> Option<u64> {
        self.older
            .or_else(|| (self.page > 1).then(|| self.page - 1))
            .filter(|&p| p > 0)
    }

    fn lists(&self, id: &str) -> bool {
        self.rows.iter().any(|r| r.report_id == id) || self.sealed_ids.iter().any(|s| s == id)
    }

    /// Grows with every row added and every seal: what `index.html` records it shows.
    fn version(&self) -> (u64, usize) {
        (self.page, self.rows.len())
    }

    /// Reports listed in all pages.
    pub fn total(&self) -> u64 {
        (self.page - 1) * PAGE_ROWS as u64 + self.rows.len() as u64
    }

    /// Move a full page out (rows oldest first) and start the next.
    fn seal(&mut self) -> SealedPage {
        let rows = std::mem::take(&mut self.rows);
        self.sealed_ids = rows.iter().map(|r| r.report_id.clone()).collect();
        let sealed = SealedPage {
            number: self.page,
            older: self.older_page(),
            rows,
        };
        self.page += 1;
        self.older = None;
        sealed
    }
}

/// What adding a report to the index took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// False when the report was listed already (a redelivery).
    pub new_row: bool,
    /// Compare-and-swap attempts, 1 without contention.
    pub swaps: u32,
    /// Keys written.
    pub written: Vec<String>,
}

/// Add `report` to the index, then refresh `index.html`. Reads no other report, except once
/// per bucket: the first report after an upgrade seeds the index from the reports already
/// there (`seed_concurrency` at a time).
pub async fn add_to_index<I: Sync>(
    store: &dyn ObjectStore,
    bucket: &str,
    report: &Report<I>,
    seed_concurrency: usize,
) -> Result<Added> {
    let marker = keys::index_marker_key(&report.report_id);
    if store.get_bytes(bucket, &marker).await?.is_some() {
        return refresh_after_redelivery(store, bucket).await;
    }
    let row = IndexRow::of(report);
    let swapped = swap_in_row(store, bucket, &row, seed_concurrency).await?;
    let mut written = swapped.written;
    // Right after the row, so a redelivery however late finds it listed.
    store.put(bucket, &marker, Vec::new(), "text/plain").await?;
    written.push(marker);
    if let Some(k) = refresh_index_html(store, bucket, &swapped.head).await? {
        written.push(k);
    }
    Ok(Added {
        new_row: swapped.new_row,
        swaps: swapped.swaps,
        written,
    })
}

/// A report listed already (a redelivery). The delivery that listed it may have died before
/// `index.html` was refreshed: refreshing is idempotent and never goes backwards.
async fn refresh_after_redelivery(store: &dyn ObjectStore, bucket: &str) -> Result<Added> {
    let mut written = Vec::new();
    if let Some((head, _)) = read_head(store, bucket).await? {
        if let Some(k) = refresh_index_html(store, bucket, &head).await? {
            written.push(k);
        }
    }
    Ok(Added {
        new_row: false,
        swaps: 0,
        written,
    })
}

/// The head once `row` is in it, by compare-and-swap.
struct Swapped {
    head: IndexHead,
    /// False when the head listed the report already.
    new_row: bool,
    swaps: u32,
    /// Pages and head written.
    written: Vec<String>,
}

/// Put `row` in the head by compare-and-swap, retried with backoff while other writers win,
/// at most [`MAX_SWAPS`] times; a bucket with no head yet is seeded first.
async fn swap_in_row(
    store: &dyn ObjectStore,
    bucket: &str,
    row: &IndexRow,
    seed_concurrency: usize,
) -> Result<Swapped> {
    let head_key = keys::index_head_key();
    let mut swaps = 0;
    loop {
        swaps += 1;
        let (mut head, tag, seeded_pages) =
            read_or_seed_head(store, bucket, seed_concurrency).await?;
        let listed = head.lists(&row.report_id);
        // A seeded head may list this report already, but it is not written yet.
        if listed && tag.is_some() {
            return Ok(Swapped {
                head,
                new_row: false,
                swaps,
                written: Vec::new(),
            });
        }
        let sealed = if listed {
            None
        } else {
            add_row(store, bucket, &mut head, row).await?
        };
        match store
            .put_if(bucket, &head_key, to_json(&head)?, JSON, tag.as_deref())
            .await?
        {
            Some(_) => {
                // Seeders that lost may have listed the bucket differently: only the winner
                // writes the seeded pages.
                let mut written = Vec::new();
                for page in &seeded_pages {
                    written.push(write_page(store, bucket, page).await?);
                }
                written.extend(sealed);
                written.push(head_key.clone());
                return Ok(Swapped {
                    head,
                    new_row: true,
                    swaps,
                    written,
                });
            }
            None if swaps >= MAX_SWAPS => {
                return Err(Error::service(
                    "report-index",
                    ServiceErrorKind::Throttled,
                    format!("{head_key} changed under {swaps} attempts to add a row; will retry"),
                ))
            }
            None => backoff(swaps).await,
        }
    }
}

/// The head and its tag, or a seeded head (no tag) with the pages it sealed.
async fn read_or_seed_head(
    store: &dyn ObjectStore,
    bucket: &str,
    seed_concurrency: usize,
) -> Result<(IndexHead, Option<String>, Vec<SealedPage>)> {
    Ok(match read_head(store, bucket).await? {
        Some((head, tag)) => (head, tag, Vec::new()),
        None => {
            let (head, pages) = seed(store, bucket, seed_concurrency).await?;
            (head, None, pages)
        }
    })
}

/// Add `row` to `head`, sealing a full page first; the key of the page sealed, if any.
async fn add_row(
    store: &dyn ObjectStore,
    bucket: &str,
    head: &mut IndexHead,
    row: &IndexRow,
) -> Result<Option<String>> {
    let mut sealed = None;
    if head.rows.len() >= PAGE_ROWS {
        // Every writer that read this head seals the same rows under the same name, so the
        // page may be written before the swap is won.
        sealed = Some(write_page(store, bucket, &head.seal()).await?);
    }
    head.rows.push(row.clone());
    Ok(sealed)
}

/// Write a sealed page; its key.
async fn write_page(store: &dyn ObjectStore, bucket: &str, page: &SealedPage) -> Result<String> {
    let key = keys::index_page_key(page.number);
    store
        .put(bucket, &key, page.render().into_bytes(), HTML)
        .await?;
    Ok(key)
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

fn to_json(head: &IndexHead) -> Result<Vec<u8>> {
    serde_json::to_vec(head).map_err(|source| Error::Document {
        key: keys::index_head_key(),
        source,
    })
}

/// The head and its tag, `None` when there is none yet. A head that does not parse is replaced
/// by an empty one on a new page: the sealed pages stay, the rows it held are no longer listed
/// (an error in the log says so).
async fn read_head(
    store: &dyn ObjectStore,
    bucket: &str,
) -> Result<Option<(IndexHead, Option<String>)>> {
    let key = keys::index_head_key();
    let Some(found) = store.get_tagged(bucket, &key).await? else {
        return Ok(None);
    };
    match serde_json::from_slice::<IndexHead>(&found.body) {
        Ok(head) if head.page >= 1 => Ok(Some((head, Some(found.tag)))),
        bad => {
            let why = match bad {
                Err(e) => e.to_string(),
                Ok(_) => "page 0".into(),
            };
            // After the page index.html shows too, so the refresh does not look backwards.
            let shown = store
                .get_bytes(bucket, &keys::report_index_key())
                .await?
                .and_then(|b| shown_version(&b))
                .map_or(0, |(page, _)| page);
            let last_sealed = last_sealed_page(store, bucket).await?;
            let page = (last_sealed + 1).max(shown + 1);
            error!(key, error = %why, page, "the report index head is unreadable; starting a new page (its rows are no longer listed; the reports remain)");
            let mut head = IndexHead::new(page);
            head.older = Some(last_sealed);
            Ok(Some((head, Some(found.tag))))
        }
    }
}

async fn last_sealed_page(store: &dyn ObjectStore, bucket: &str) -> Result<u64> {
    Ok(store
        .list(bucket, keys::INDEX_PAGES)
        .await?
        .iter()
        .filter_map(|k| keys::index_page_number(k))
        .max()
        .unwrap_or(0))
}

/// The first head of a bucket: the reports already in it (written before the index kept a
/// head), oldest first, the full pages sealed. Reports without a row are caught here once.
async fn seed(
    store: &dyn ObjectStore,
    bucket: &str,
    concurrency: usize,
) -> Result<(IndexHead, Vec<SealedPage>)> {
    let report_keys: Vec<String> = store
        .list(bucket, keys::REPORTS)
        .await?
        .into_iter()
        .filter(|k| keys::id_from_document_key(k, keys::REPORTS).is_some())
        .collect();
    let mut head = IndexHead::new(last_sealed_page(store, bucket).await? + 1);
    let mut pages = Vec::new();
    if report_keys.is_empty() {
        return Ok((head, pages));
    }
    // A row needs a report's header only: its items are counted as they stream past.
    let fetched: Vec<(String, Result<Option<Report<SkippedItems>>>)> = stream::iter(report_keys)
        .map(|k| async move {
            let r = read_document::<Report<SkippedItems>>(store, bucket, &k).await;
            (k, r)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut rows = Vec::new();
    for (key, r) in fetched {
        match r {
            Ok(Some(rep)) => rows.push(IndexRow::of(&rep)),
            Ok(None) => {}
            // One unreadable report must not keep all the others out.
            Err(e) => warn!(key, error = %e, "report left out of the index: unreadable"),
        }
    }
    rows.sort_by(|a, b| {
        (a.created_at.as_str(), a.report_id.as_str())
            .cmp(&(b.created_at.as_str(), b.report_id.as_str()))
    });
    info!(
        reports = rows.len(),
        "seeding the report index from the reports in the bucket"
    );
    for chunk in rows.chunks(PAGE_ROWS) {
        head.rows = chunk.to_vec();
        if chunk.len() == PAGE_ROWS {
            pages.push(head.seal());
        }
    }
    Ok((head, pages))
}

/// Write `index.html` from `head` unless it already shows this head or a newer one, by
/// compare-and-swap on the page itself: the version it shows (page, rows) only goes forward,
/// so a slow writer can never put an older page over a newer one. `None` when the page was
/// current already.
pub async fn refresh_index_html(
    store: &dyn ObjectStore,
    bucket: &str,
    head: &IndexHead,
) -> Result<Option<String>> {
    let key = keys::report_index_key();
    let ours = head.version();
    let body = render_index_page(head).into_bytes();
    for attempt in 1..=MAX_SWAPS {
        let current = store.get_tagged(bucket, &key).await?;
        if current
            .as_ref()
            .and_then(|c| shown_version(&c.body))
            .is_some_and(|shown| shown >= ours)
        {
            return Ok(None);
        }
        let tag = current.map(|c| c.tag);
        if store
            .put_if(bucket, &key, body.clone(), HTML, tag.as_deref())
            .await?
            .is_some()
        {
            return Ok(Some(key));
        }
        backoff(attempt).await;
    }
    Err(Error::service(
        "report-index",
        ServiceErrorKind::Throttled,
        format!("{key} changed under {MAX_SWAPS} attempts to refresh it; will retry"),
    ))
}

const VERSION_MARK: &str = "<!-- index-version ";

/// The (page, rows) an `index.html` shows, from the comment it carries; `None` for a page
/// written before the index kept versions.
fn shown_version(html: &[u8]) -> Option<(u64, usize)> {
    let text = std::str::from_utf8(html).ok()?;
    let rest = &text[text.find(VERSION_MARK)? + VERSION_MARK.len()..];
    let mut parts = rest.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

const TABLE_HEAD: &str = "<table id=\"reports\"><thead><tr><th>Report</th><th>Source</th>\
    <th>Status</th><th>Items</th><th>Over threshold</th><th>Violations</th><th>Needs review</th>\
    <th>Created</th></tr></thead><tbody>";

/// Rows newest first; `prefix` leads from the page to the reports (`""` or `"../"`).
fn write_rows<'r>(b: &mut String, rows: impl Iterator<Item = &'r IndexRow>, prefix: &str) {
    b.push_str(TABLE_HEAD);
    for r in rows {
        let _ = write!(
            b,
            "<tr data-report=\"{id}\"><td><a href=\"{prefix}{id}.html\">{id}</a></td>\
             <td><code>{}</code></td><td class=\"status-{st}\">{st}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td></tr>",
            esc(&r.source_uri),
            r.items,
            r.over_threshold,
            r.violations,
            r.needs_review,
            esc(&r.created_at),
            // Ids are [a-z0-9-] by construction (keys::source_id); escaping is belt and braces.
            id = esc(&r.report_id),
            st = status_str(r.status),
        );
    }
    b.push_str("</tbody></table>");
}

/// `reports/index.html`: the newest page, and a way to the older ones.
pub fn render_index_page(head: &IndexHead) -> String {
    let mut b = String::new();
    let (page_no, rows) = head.version();
    let _ = write!(b, "{VERSION_MARK}{page_no} {rows} -->");
    let _ = write!(
        b,
        "<header><h1>Moderation reports</h1><p class=\"meta\">Newest first. Each source upload \
         has one report. <span id=\"total\">{}</span> reports",
        head.total()
    );
    if let Some(older) = head.older_page() {
        let _ = write!(
            b,
            " on {} pages. <a rel=\"next\" href=\"{}\">Older reports →</a>",
            head.page,
            page_href(older, "pages/")
        );
    }
    b.push_str("</p></header><main>");
    write_rows(&mut b, head.rows.iter().rev(), "");
    b.push_str("</main>");
    page("Moderation reports", &b, false, false)
}

/// `reports/pages/NNNNNN.html`: a sealed page, written once.
pub fn render_sealed_page(rows: &[IndexRow], number: u64, older: Option<u64>) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<header><h1>Moderation reports, page {number}</h1><p class=\"meta\">\
         <a href=\"../index.html\">← newest reports</a>"
    );
    if let Some(older) = older {
        let _ = write!(
            b,
            " · <a rel=\"next\" href=\"{}\">older reports →</a>",
            page_href(older, "")
        );
    }
    b.push_str("</p></header><main>");
    write_rows(&mut b, rows.iter().rev(), "../");
    b.push_str("</main>");
    page(
        &format!("Moderation reports, page {number}"),
        &b,
        false,
        false,
    )
}

fn page_href(number: u64, folder: &str) -> String {
    let key = keys::index_page_key(number);
    let name = key.rsplit('/').next().unwrap_or(&key);
    format!("{folder}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> IndexRow {
        IndexRow {
            report_id: id.into(),
            source_uri: format!("s3://b/incoming/text/{id}.txt"),
            status: Status::Complete,
            items: 3,
            over_threshold: 1,
            violations: 1,
            needs_review: 0,
            created_at: "2026-11-25T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn sealing_moves_the_page_and_remembers_its_ids() {
        let mut head = IndexHead::new(1);
        head.rows = (0..PAGE_ROWS).map(|i| row(&format!("r{i}"))).collect();
        assert_eq!(head.total(), PAGE_ROWS as u64);
        let sealed = head.seal();
        assert_eq!(sealed.rows.len(), PAGE_ROWS);
        assert_eq!((sealed.number, sealed.older), (1, None));
        assert_eq!(head.page, 2);
        assert!(head.rows.is_empty());
        assert!(head.lists("r0"));
        assert_eq!(head.total(), PAGE_ROWS as u64);
    }

    #[test]
    fn pages_link_to_each_other_and_list_newest_first() {
        let mut head = IndexHead::new(3);
        head.rows = vec![row("old-1"), row("new-2")];
        let html = render_index_page(&head);
        assert!(html.contains("href=\"pages/000002.html\""), "{html}");
        assert!(html.find("new-2").expect("new") < html.find("old-1").expect("old"));
        assert!(html.contains(&format!("{}", 2 * PAGE_ROWS + 2)));
        let sealed = render_sealed_page(&[row("a"), row("b")], 2, Some(1));
        assert!(sealed.contains("href=\"../index.html\""), "{sealed}");
        assert!(sealed.contains("href=\"000001.html\""), "{sealed}");
        assert!(sealed.contains("href=\"../b.html\""), "{sealed}");
        let first = render_sealed_page(&[row("a")], 1, None);
        assert!(!first.contains("older reports"), "{first}");
    }

    #[test]
    fn the_page_records_the_head_it_shows() {
        let mut head = IndexHead::new(4);
        head.rows = vec![row("a"), row("b")];
        let html = render_index_page(&head);
        assert_eq!(shown_version(html.as_bytes()), Some((4, 2)));
        assert_eq!(
            shown_version(b"<html>an index from before versions</html>"),
            None
        );
        // A seal moves the version forward, past every row count of the page before.
        assert!((5, 1) > (4, PAGE_ROWS));
    }

    #[test]
    fn untrusted_fields_are_escaped() {
        let mut r = row("x");
        r.source_uri = "s3://b/incoming/text/<script>alert(1)</script>.txt".into();
        let mut head = IndexHead::new(1);
        head.rows = vec![r];
        let html = render_index_page(&head);
        assert!(!html.contains("<script>alert"), "{html}");
    }
}
