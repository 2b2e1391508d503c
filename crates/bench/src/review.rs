//! The review queue: how long a queue request takes with 1,000 and 100,000 reports queued
//! (and S3 requests it makes), with every item open and with all but the newest 1% decided
//! (the oldest open items are then at the end); and decisions per second, spread over
//! reports and all on one report, through the SDK against the fake S3.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use moderation_aws::S3Store;
use moderation_core::chain::keys;
use moderation_core::model::{HumanVerdict, Item, ReviewRecord, Source, SourceKind, Verdict};
use moderation_core::ports::{DecisionEvents, PolicyVersion, WriteObjects};
use moderation_core::stages::review::doc::{ReviewDoc, ReviewEntry};
use moderation_core::stages::review::queue::{
    present, PageSummary, QueueHead, QueuePage, QueueRow, PAGE_ROWS, QUEUE_SCHEMA,
};
use moderation_core::stages::review::{decide, queue, DecisionRequest, QueueFilter, ReviewDeps};
use moderation_offline::FolderStore;

use crate::stats::quantile;
use crate::Ctx;

/// Flagged items per synthetic report.
const ITEMS: usize = 2;
/// Queue requests timed per size and shape.
const REQUESTS: usize = 30;

#[derive(Debug)]
pub struct QueueTiming {
    pub reports: usize,
    /// `open` (every item open) or `tail` (only the newest 1% open).
    pub shape: &'static str,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests_per_call: f64,
    pub items: usize,
}

#[derive(Debug)]
pub struct DecisionRate {
    pub reports: usize,
    pub concurrent: usize,
    pub decisions: usize,
    pub per_s: f64,
    pub recorded: usize,
}

#[derive(Debug)]
pub struct ReviewBench {
    pub queue: Vec<QueueTiming>,
    pub decisions: Vec<DecisionRate>,
}

struct Quiet;

#[async_trait]
impl DecisionEvents for Quiet {
    async fn publish(&self, _: &ReviewRecord) -> moderation_core::Result<()> {
        Ok(())
    }
}

#[async_trait]
impl PolicyVersion for Quiet {
    async fn policy_version(&self) -> moderation_core::Result<String> {
        Ok("sha256:bench".into())
    }
}

fn doc(n: usize, open: bool) -> ReviewDoc {
    let mut d = ReviewDoc::empty(&format!("report-{n:07}"));
    d.created_at = format!("2026-12-07T00:00:00.{n:07}Z");
    d.source = Source::new(format!("s3://b/incoming/text/{n}.txt"), SourceKind::Text);
    d.queue_page = Some((n / PAGE_ROWS) as u64 + 1);
    for i in 0..ITEMS {
        let mut item = Item::new(
            format!("line-{i}"),
            format!("synthetic flagged line {i} of {n}"),
        );
        item.verdict = Some(Verdict::Violation);
        item.categories.insult = 0.9;
        let mut e = ReviewEntry::of(&item, 0.5);
        if !open {
            e.state = Some(moderation_core::stages::review::QueueState::Decided);
        }
        d.entries.push(e);
    }
    d
}

/// Write `reports` review documents and the queue over them straight to the folder (the state
/// write-report leaves), the newest `open_share` of them open.
async fn fill(
    folder: &FolderStore,
    bucket: &str,
    reports: usize,
    open_from: usize,
) -> Result<(), String> {
    let put = |key: String, body: Vec<u8>| async move {
        folder
            .put(bucket, &key, body, "application/json")
            .await
            .map_err(|e| e.to_string())
    };
    let mut head = QueueHead {
        schema: QUEUE_SCHEMA.into(),
        page: 1,
        pages: Vec::new(),
    };
    for start in (0..reports).step_by(PAGE_ROWS) {
        let docs: Vec<ReviewDoc> = (start..(start + PAGE_ROWS).min(reports))
            .map(|n| doc(n, n >= open_from))
            .collect();
        let number = (start / PAGE_ROWS) as u64 + 1;
        let rows: Vec<QueueRow> = docs.iter().map(QueueRow::of).collect();
        let mut counts = moderation_core::stages::review::StateCounts::default();
        rows.iter().for_each(|r| counts.add(&r.counts));
        let states = present(&counts);
        let page = QueuePage {
            schema: QUEUE_SCHEMA.into(),
            number,
            version: 1,
            rows,
        };
        stream::iter(docs)
            .map(|d| {
                put(
                    keys::review_doc_key(&d.report_id),
                    serde_json::to_vec(&d).unwrap_or_default(),
                )
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        put(
            keys::queue_page_key(number),
            serde_json::to_vec(&page).map_err(|e| e.to_string())?,
        )
        .await?;
        head.pages.push(PageSummary {
            number,
            version: 1,
            states,
        });
        head.page = number;
    }
    put(
        keys::queue_head_key(),
        serde_json::to_vec(&head).map_err(|e| e.to_string())?,
    )
    .await
}

async fn time_queue(
    ctx: &Ctx,
    s3: &S3Store,
    bucket: &str,
    reports: usize,
    shape: &'static str,
) -> Result<QueueTiming, String> {
    let deps = ReviewDeps {
        store: s3,
        bucket,
        policy: &Quiet,
        events: &Quiet,
    };
    let mut ms = Vec::new();
    let before = ctx.s3.requests();
    let mut items = 0;
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let out = queue(&deps, &QueueFilter::default(), None, 50)
            .await
            .map_err(|e| format!("queue {bucket}: {e}"))?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        items = out.items.len();
    }
    let requests_per_call = (ctx.s3.requests() - before) as f64 / REQUESTS as f64;
    ms.sort_by(f64::total_cmp);
    eprintln!(
        "bench: review queue {reports} reports ({shape}): p50 {:.1} ms",
        quantile(&ms, 0.5)
    );
    Ok(QueueTiming {
        reports,
        shape,
        p50_ms: quantile(&ms, 0.5),
        p99_ms: quantile(&ms, 0.99),
        requests_per_call,
        items,
    })
}

async fn rate(
    s3: &S3Store,
    bucket: &str,
    reports: usize,
    concurrent: usize,
    decisions: usize,
) -> Result<DecisionRate, String> {
    let deps = ReviewDeps {
        store: s3,
        bucket,
        policy: &Quiet,
        events: &Quiet,
    };
    let t = Instant::now();
    let results: Vec<_> = stream::iter(0..decisions)
        .map(|n| {
            let req = DecisionRequest {
                report_id: format!("report-{:07}", n % reports),
                item_id: format!("line-{}", n % ITEMS),
                verdict: HumanVerdict::NoViolation,
                reason: "bench".into(),
                moderator: format!("m-{}", n % concurrent),
            };
            let deps = &deps;
            async move { decide(&req, deps).await }
        })
        .buffer_unordered(concurrent)
        .collect()
        .await;
    let seconds = t.elapsed().as_secs_f64();
    let recorded = results.iter().filter(|r| r.is_ok()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("bench: a decision failed: {e}");
    }
    Ok(DecisionRate {
        reports,
        concurrent,
        decisions,
        per_s: recorded as f64 / seconds,
        recorded,
    })
}

pub async fn run(ctx: &Ctx, sizes: &[usize]) -> Result<ReviewBench, String> {
    let sdk = moderation_tests::fake_aws::sdk_config(&ctx.s3.url(), Duration::from_secs(10)).await;
    let s3 = S3Store::from_sdk_config(&sdk);
    let folder = FolderStore::new(&ctx.work);
    let mut timings = Vec::new();
    for &reports in sizes {
        let bucket = format!("review-{reports}");
        fill(&folder, &bucket, reports, 0).await?;
        timings.push(time_queue(ctx, &s3, &bucket, reports, "open").await?);
        let bucket = format!("review-tail-{reports}");
        fill(&folder, &bucket, reports, reports - reports / 100).await?;
        timings.push(time_queue(ctx, &s3, &bucket, reports, "tail").await?);
    }
    let bucket = "review-decide";
    fill(&folder, bucket, 100, 0).await?;
    let decisions = vec![
        rate(&s3, bucket, 100, 8, 400).await?,
        rate(&s3, bucket, 1, 50, 200).await?,
    ];
    Ok(ReviewBench {
        queue: timings,
        decisions,
    })
}

pub fn section(s: &mut String, r: &ReviewBench) {
    let _ = writeln!(s, "## Review queue\n");
    let _ = writeln!(
        s,
        "A queue request (the first 50 open items, oldest first) through the SDK against the \
         fake S3, {REQUESTS} times per row; `open`: every report's items open, `tail`: all but \
         the newest 1% decided, so the open items are at the end of the queue.\n"
    );
    let _ = writeln!(
        s,
        "| Reports queued | Shape | p50 ms | p99 ms | S3 requests per call | Items |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for q in &r.queue {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} |",
            q.reports, q.shape, q.p50_ms, q.p99_ms, q.requests_per_call, q.items
        );
    }
    let _ = writeln!(s, "\n| Decisions over | At once | Recorded | Decisions/s |");
    let _ = writeln!(s, "|---|---|---|---|");
    for d in &r.decisions {
        let _ = writeln!(
            s,
            "| {} report(s) | {} | {}/{} | {:.0} |",
            d.reports, d.concurrent, d.recorded, d.decisions, d.per_s
        );
    }
    let _ = writeln!(s);
}
