//! The report index: what adding one report costs with 100, 1,000 and 10,000 reports already
//! listed (wall time and S3 requests, through the SDK against the fake S3), beside the full
//! rebuild write-report did before (list `reports/`, GET every report, PUT the page) measured
//! at the same sizes in the same run. Then 50 writers at once over HTTP: rows lost or doubled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moderation_aws::S3Store;
use moderation_core::chain::delivery::put_json;
use moderation_core::chain::keys;
use moderation_core::model::Report;
use moderation_core::ports::ObjectStore;
use moderation_core::stages::write_report::index::{add_to_index, render_sealed_page, IndexRow};
use moderation_offline::FolderStore;
use moderation_tests::{listed_in_index, sample_report};

use crate::Ctx;

#[derive(Debug)]
pub struct SizeResult {
    pub existing: usize,
    /// Milliseconds per added report, one value per report added.
    pub add_ms: Vec<f64>,
    pub add_requests: f64,
    pub rebuild_ms: f64,
    pub rebuild_requests: u64,
}

#[derive(Debug)]
pub struct ConcurrentResult {
    pub writers: usize,
    pub listed_once: usize,
    pub missing: usize,
    pub doubled: usize,
    pub mean_swaps: f64,
    pub seconds: f64,
}

#[derive(Debug)]
pub struct IndexResult {
    pub sizes: Vec<SizeResult>,
    pub concurrent: Result<ConcurrentResult, String>,
}

async fn s3_store(ctx: &Ctx) -> S3Store {
    let sdk = moderation_tests::fake_aws::sdk_config(&ctx.s3.url(), Duration::from_secs(10)).await;
    S3Store::from_sdk_config(&sdk)
}

pub async fn run(ctx: &Ctx, sizes: &[usize], adds: usize) -> Result<IndexResult, String> {
    let s3 = s3_store(ctx).await;
    let mut out = Vec::new();
    for &existing in sizes {
        let bucket = format!("index-{existing}");
        // Filled in this process through the folder store: the same files the fake S3 serves.
        let folder = FolderStore::new(&ctx.work);
        for n in 0..existing {
            add(&folder, &bucket, &sample_report(&bucket, n)).await?;
        }
        let mut add_ms = Vec::new();
        let before = ctx.s3.requests();
        for n in existing..existing + adds {
            let r = sample_report(&bucket, n);
            put_json(&folder, &bucket, &keys::report_json_key(&r.report_id), &r)
                .await
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            add_to_index(&s3, &bucket, &r, 8)
                .await
                .map_err(|e| format!("index {bucket}: {e}"))?;
            add_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let add_requests = (ctx.s3.requests() - before) as f64 / adds as f64;
        let before = ctx.s3.requests();
        let t = Instant::now();
        rebuild(&s3, &bucket).await?;
        let rebuild_ms = t.elapsed().as_secs_f64() * 1e3;
        let rebuild_requests = ctx.s3.requests() - before;
        eprintln!(
            "bench: index at {existing}: {:.1} ms and {add_requests:.1} requests a report; rebuild {rebuild_ms:.0} ms, {rebuild_requests} requests",
            crate::stats::summarize(&add_ms).map_or(0.0, |s| s.median)
        );
        out.push(SizeResult {
            existing,
            add_ms,
            add_requests,
            rebuild_ms,
            rebuild_requests,
        });
    }
    Ok(IndexResult {
        sizes: out,
        concurrent: concurrent(&ctx.work, &s3, 50).await,
    })
}

/// A report written and added, as write-report does.
async fn add(store: &dyn ObjectStore, bucket: &str, r: &Report) -> Result<(), String> {
    put_json(store, bucket, &keys::report_json_key(&r.report_id), r)
        .await
        .map_err(|e| e.to_string())?;
    add_to_index(store, bucket, r, 8)
        .await
        .map(|_| ())
        .map_err(|e| format!("index {bucket}: {e}"))
}

/// The index as write-report built it before: every report read, one page written.
async fn rebuild(store: &dyn ObjectStore, bucket: &str) -> Result<(), String> {
    let keys: Vec<String> = store
        .list(bucket, keys::REPORTS)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|k| keys::id_from_document_key(k, keys::REPORTS).is_some())
        .collect();
    let mut rows = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(r) = moderation_core::chain::delivery::get_json::<Report>(store, bucket, &k)
            .await
            .map_err(|e| e.to_string())?
        {
            rows.push(IndexRow::of(&r));
        }
    }
    rows.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    store
        .put(
            bucket,
            "reports/rebuilt-index.html",
            render_sealed_page(&rows, 1, None).into_bytes(),
            "text/html; charset=utf-8",
        )
        .await
        .map_err(|e| e.to_string())
}

/// `writers` reports added at once, each on its own task, through the SDK.
async fn concurrent(
    work: &std::path::Path,
    s3: &S3Store,
    writers: usize,
) -> Result<ConcurrentResult, String> {
    let bucket = "index-concurrent";
    let s3 = Arc::new(s3.clone());
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..writers {
        let s3 = s3.clone();
        tasks.spawn(async move {
            add_to_index(s3.as_ref(), bucket, &sample_report(bucket, n), 8).await
        });
    }
    let mut swaps = 0u64;
    while let Some(done) = tasks.join_next().await {
        let added = done
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        swaps += u64::from(added.swaps);
    }
    let seconds = t.elapsed().as_secs_f64();
    let seen = listed_in_index(&work.join(bucket));
    let listed_once = (0..writers)
        .filter(|&n| seen.get(&sample_report(bucket, n).report_id) == Some(&1))
        .count();
    let doubled = seen.values().filter(|&&c| c > 1).count();
    Ok(ConcurrentResult {
        writers,
        listed_once,
        missing: writers - seen.len().min(writers),
        doubled,
        mean_swaps: swaps as f64 / writers as f64,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_s3::FakeS3;

    /// The SDK's conditional headers and S3's 412 over real HTTP: 50 writers, no row lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_writers_through_the_sdk_list_every_report_once() {
        let work = tempfile::tempdir().expect("tempdir");
        let fake = FakeS3::start(work.path()).await.expect("fake S3");
        let sdk =
            moderation_tests::fake_aws::sdk_config(&fake.url(), Duration::from_secs(10)).await;
        let s3 = S3Store::from_sdk_config(&sdk);
        let c = concurrent(work.path(), &s3, 50).await.expect("ran");
        assert_eq!(
            c.listed_once, 50,
            "missing {} doubled {}",
            c.missing, c.doubled
        );
        // Contention happened, or the test proves nothing about the swap.
        assert!(c.mean_swaps > 1.0, "{}", c.mean_swaps);
    }
}
