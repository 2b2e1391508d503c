//! screen-text throughput: the release binary, on the `aws` backend with production's SDK
//! configuration (adaptive retry, `AWS_MAX_ATTEMPTS` 5), reads an upload from the folder S3 and
//! calls the fake Comprehend, which adds latency and enforces a TPS cap per run. The same
//! binary runs again with `COMPREHEND_TPS` set to the cap (the client-side pacer, with
//! standard retry under it).
//!
//! Without a pacer the functions run adaptive retry (`moderation_aws::load_sdk_config`), so
//! the comparison with the SDK's standard retry mode alone runs the same handler in this
//! process instead (`screen_text::App::from_parts` with a standard-retry SDK configuration).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moderation_tests::fake_aws::{FakeAws, Faults, RateLimit};
use serde_json::Value;

use crate::launch::{self, Launch};
use crate::workload::{aws_env, chat_log, put_object, s3_event, Endpoints};
use crate::Ctx;

#[derive(Debug, Clone)]
pub struct Spec {
    pub slug: String,
    pub messages: usize,
    /// DetectToxicContent requests per second the fake admits (token bucket, 1 s burst).
    pub cap: Option<f64>,
    pub latency: Duration,
    /// `COMPREHEND_CONCURRENCY`.
    pub concurrency: usize,
    /// Latency-bound runs are started together, each against its own fake (own cap); CPU-bound
    /// runs one after another.
    pub side_by_side: bool,
    /// Side-by-side scenarios of the same batch also run at the same time (light ones only, so
    /// the machine stays far from busy).
    pub batch: u8,
    pub retry: Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The release binary as deployed: adaptive retry (client-side rate limiter).
    AdaptiveBinary,
    /// The same handler in this process with the SDK's standard retry mode (same attempts,
    /// default backoff), for comparison.
    StandardInProcess,
    /// The release binary with `COMPREHEND_TPS` at the cap: the client-side pacer.
    PacedBinary,
}

impl Spec {
    pub fn describe(&self) -> String {
        let cap = self
            .cap
            .map_or("no cap".to_string(), |c| format!("cap {c:.0} req/s"));
        let retry = match self.retry {
            Retry::AdaptiveBinary => "",
            Retry::StandardInProcess => ", **standard retry** (in-process)",
            Retry::PacedBinary => ", **paced** (`COMPREHEND_TPS` = cap)",
        };
        format!(
            "{}k msgs, {cap}, {} ms latency, concurrency {}{retry}",
            self.messages / 1000,
            self.latency.as_millis(),
            self.concurrency
        )
    }

    /// For the chart: `10k @20/s`, `100k no cap`, `100k 0 ms`.
    pub fn short_name(&self) -> String {
        let n = format!("{}k", self.messages / 1000);
        let what = match self.cap {
            Some(c) => format!("@{c:.0}/s"),
            None if self.latency.is_zero() => "0 ms".into(),
            None => "no cap".into(),
        };
        let retry = match self.retry {
            Retry::AdaptiveBinary => "",
            Retry::StandardInProcess => " std",
            Retry::PacedBinary => " paced",
        };
        format!("{n} {what}{retry}")
    }

    /// ⌈messages / 10⌉: every message is short, so ten fit in one request.
    pub fn min_requests(&self) -> u64 {
        self.messages.div_ceil(10) as u64
    }
}

fn spec(
    batch: u8,
    slug: &str,
    messages: usize,
    cap: Option<f64>,
    latency_ms: u64,
    concurrency: usize,
    side_by_side: bool,
) -> Spec {
    Spec {
        slug: slug.into(),
        messages,
        cap,
        latency: Duration::from_millis(latency_ms),
        concurrency,
        side_by_side,
        batch,
        retry: Retry::AdaptiveBinary,
    }
}

fn standard(mut s: Spec, batch: u8) -> Spec {
    s.slug.push_str("-std");
    s.retry = Retry::StandardInProcess;
    s.batch = batch;
    s
}

fn paced(mut s: Spec, batch: u8) -> Spec {
    s.slug.push_str("-paced");
    s.retry = Retry::PacedBinary;
    s.batch = batch;
    s
}

/// The scenarios. Caps are chosen so each capped run takes ~50 s: 10k messages at 20 req/s
/// (the example) and 100k at 200 req/s (at 20 req/s 100k messages would take 8 min).
/// Concurrency is the default 4 where that already asks for more than the cap (4 in flight ×
/// 10 per s = 40 req/s) and 32 where the cap is higher. The capped scenarios run again with
/// standard retry. The 10k scenarios (≤ 400 messages/s each) share a batch; the 100k ones
/// (up to 2,500 messages/s a run) each have their own.
pub fn specs(quick: bool) -> Vec<Spec> {
    if quick {
        let capped = spec(1, "2k-cap20", 2_000, Some(20.0), 100, 4, true);
        return vec![
            capped.clone(),
            standard(capped.clone(), 1),
            paced(capped, 1),
            spec(1, "2k-nocap", 2_000, None, 100, 4, true),
            spec(2, "20k-cpu", 20_000, None, 0, 4, false),
        ];
    }
    let small = spec(1, "10k-cap20", 10_000, Some(20.0), 100, 4, true);
    let large = spec(2, "100k-cap200", 100_000, Some(200.0), 100, 32, true);
    // 1,000 req/s is 10,000 messages a second: one run at a time, or the two cores, not the
    // cap, would set the pace. 100 ms × 1,000 req/s needs 100 calls in flight.
    let huge = spec(7, "100k-cap1000", 100_000, Some(1000.0), 100, 128, false);
    vec![
        small.clone(),
        large.clone(),
        huge.clone(),
        standard(small.clone(), 1),
        standard(large.clone(), 3),
        standard(huge.clone(), 8),
        paced(small, 1),
        paced(large, 6),
        paced(huge, 9),
        spec(1, "10k-nocap", 10_000, None, 100, 4, true),
        spec(4, "100k-nocap", 100_000, None, 100, 32, true),
        spec(5, "100k-cpu", 100_000, None, 0, 4, false),
    ]
}

#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub seconds: f64,
    pub requests: u64,
    pub ok: u64,
    pub capped: u64,
    pub items: usize,
    /// Items without scores (detector failed after every retry): `needs_review`.
    pub unscored: usize,
    pub rss_mib: f64,
    pub cpu_seconds: f64,
    /// Successful requests a second between the first and the last (the fake's clock).
    pub sustained_ok_per_s: f64,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub spec: Spec,
    pub runs: Vec<RunResult>,
    pub failures: Vec<String>,
}

pub async fn run(ctx: &Ctx, specs: &[Spec]) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = specs
        .iter()
        .map(|spec| Scenario {
            spec: spec.clone(),
            runs: Vec::new(),
            failures: Vec::new(),
        })
        .collect();
    let mut batches: Vec<u8> = specs.iter().map(|s| s.batch).collect();
    batches.sort_unstable();
    batches.dedup();
    for batch in batches {
        let members: Vec<usize> = (0..specs.len())
            .filter(|&i| specs[i].batch == batch)
            .collect();
        for &i in &members {
            eprintln!("bench:   {} × {}", ctx.runs, specs[i].describe());
        }
        let jobs = members
            .iter()
            .flat_map(|&i| (0..ctx.runs).map(move |run| (i, run)));
        let results: Vec<(usize, Result<RunResult, String>)> =
            if members.iter().all(|&i| specs[i].side_by_side) {
                futures::future::join_all(
                    jobs.map(|(i, run)| async move { (i, one(ctx, &specs[i], run).await) }),
                )
                .await
            } else {
                let mut v = Vec::new();
                for (i, run) in jobs {
                    v.push((i, one(ctx, &specs[i], run).await));
                }
                v
            };
        for (i, r) in results {
            match r {
                Ok(r) => out[i].runs.push(r),
                Err(e) => {
                    eprintln!("bench: throughput failure: {e}");
                    out[i].failures.push(e);
                }
            }
        }
    }
    out
}

async fn one(ctx: &Ctx, spec: &Spec, i: usize) -> Result<RunResult, String> {
    let faults = Faults {
        latency: spec.latency,
        rate_limit: spec.cap.map(RateLimit::per_second),
        ..Faults::default()
    };
    let fake = FakeAws::start(faults, 1000 + i as u64).await;
    let bucket = format!("tp-{}-{i}", spec.slug);
    let key = format!("incoming/text/chat-{}.txt", spec.messages);
    let size = put_object(&ctx.work, &bucket, &key, chat_log(spec.messages).as_bytes())?;
    if spec.retry == Retry::StandardInProcess {
        return in_process(ctx, spec, &fake, &bucket, &key, size).await;
    }
    let endpoints = Endpoints {
        s3: ctx.s3.url(),
        aws: fake.url(),
    };
    let mut env = aws_env(&endpoints, &ctx.work);
    env.push((
        "COMPREHEND_CONCURRENCY".into(),
        spec.concurrency.to_string(),
    ));
    if let (Retry::PacedBinary, Some(cap)) = (spec.retry, spec.cap) {
        env.push(("COMPREHEND_TPS".into(), cap.to_string()));
    }
    let label = format!("throughput-{}-{i}", spec.slug);
    let l = Launch {
        label: label.clone(),
        program: ctx.binary("screen-text"),
        args: vec![],
        env,
        events: vec![s3_event(&bucket, &key, size)],
        log_dir: ctx.logs.clone(),
        timeout: Duration::from_secs(20 * 60),
    };
    let r = launch::run(&l).await?;
    r.first_ok()
        .map_err(|e| format!("{label}: function error: {e}"))?;
    let mut result = collect(ctx, &fake, &bucket, &label, r.invoke.as_secs_f64()).await?;
    result.rss_mib = r.peak_rss_kib as f64 / 1024.0;
    result.cpu_seconds = r.cpu.as_secs_f64();
    Ok(result)
}

/// What a run did: the fake's DetectToxicContent counts and the screened document's items (the
/// bucket folder is removed afterwards). No RSS or CPU figures: the caller knows those.
async fn collect(
    ctx: &Ctx,
    fake: &FakeAws,
    bucket: &str,
    label: &str,
    seconds: f64,
) -> Result<RunResult, String> {
    let stats = fake.stats();
    let op = "DetectToxicContent";
    let dir = ctx.work.join(bucket);
    let (items, unscored) = tokio::task::spawn_blocking(move || {
        let counts = screened_items(&dir);
        // The document is ~0.5 KB a message; keep the disk use of a full run small.
        let _ = std::fs::remove_dir_all(&dir);
        counts
    })
    .await
    .map_err(|e| format!("{label}: {e}"))??;
    Ok(RunResult {
        seconds,
        requests: stats.requests.get(op).copied().unwrap_or(0),
        ok: stats.ok.get(op).copied().unwrap_or(0),
        capped: stats.capped,
        items,
        unscored,
        rss_mib: f64::NAN,
        cpu_seconds: f64::NAN,
        sustained_ok_per_s: stats.sustained_ok_per_s(op).unwrap_or(f64::NAN),
    })
}

/// The screen-text handler in this process: the folder store, the real Comprehend adapter over
/// an SDK configuration with standard retry (production's attempts and attempt timeout, the
/// SDK's default backoff), pointed at the fake. No peak RSS or CPU: the fake shares the process.
async fn in_process(
    ctx: &Ctx,
    spec: &Spec,
    fake: &FakeAws,
    bucket: &str,
    key: &str,
    size: u64,
) -> Result<RunResult, String> {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    let label = format!("throughput-{}", bucket);
    let root = ctx.work.display().to_string();
    let pairs = [
        ("MODERATION_BACKEND", "offline"),
        ("MODERATION_OFFLINE_ROOT", root.as_str()),
    ];
    let vars = moderation_core::chain::config::Vars::from_pairs(&pairs);
    let config = screen_text::Config::from_vars(&vars).map_err(|e| e.to_string())?;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(fake.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_comprehend::config::Credentials::new(
            "AKIDBENCHMARK000000",
            "bench-secret-not-a-real-key",
            None,
            None,
            "bench",
        ))
        .retry_config(RetryConfig::standard().with_max_attempts(config.sdk.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(config.sdk.attempt_timeout)
                .build(),
        )
        .load()
        .await;
    let app = screen_text::App::from_parts(
        Arc::new(moderation_offline::FolderStore::new(&ctx.work)),
        Arc::new(moderation_aws::ComprehendDetector::from_sdk_config(&sdk)),
        moderation_core::text::rules::RuleFilter::default_list().map_err(|e| e.to_string())?,
        &screen_text::Config {
            concurrency: spec.concurrency,
            ..config
        },
    );
    let event: serde_json::Value =
        serde_json::from_slice(&s3_event(bucket, key, size)).map_err(|e| e.to_string())?;
    let t = Instant::now();
    screen_text::handler(
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
        &app,
    )
    .await
    .map_err(|e| format!("{label}: {e}"))?;
    collect(ctx, fake, bucket, &label, t.elapsed().as_secs_f64()).await
}

/// Items in the one `screened/` document of a bucket folder, and how many have no scores.
pub fn screened_items(bucket_dir: &Path) -> Result<(usize, usize), String> {
    let doc = screened_doc(bucket_dir)?;
    let items = doc["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let unscored = items
        .iter()
        .filter(|i| !i["review_reason"].is_null())
        .count();
    Ok((items.len(), unscored))
}

pub fn screened_doc(bucket_dir: &Path) -> Result<Value, String> {
    let dir = bucket_dir.join("screened");
    let path = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .ok_or_else(|| format!("no screened document in {}", dir.display()))?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
