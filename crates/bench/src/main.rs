//! `make bench`: cold start of the release Lambda binaries against a Python boto3 baseline,
//! screen-text throughput against a rate-limited fake Comprehend, peak memory, offline scoring
//! speed and per-message CPU. Writes `target/bench/results.md`, `results.json` and
//! `bench.png`.
//!
//! Every Lambda process runs as a child under this harness's own Runtime API emulator, with
//! the AWS endpoints pointed at loopback fakes (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`):
//! nothing leaves the machine and no credentials are needed.

mod chart;
mod checkapi;
mod checkapi_aws;
mod coldstart;
mod evaluate;
mod fake_s3;
mod images;
mod index;
mod machine;
mod micro;
mod offline;
mod report;
mod review;
mod scale;
mod stats;
mod throughput;
mod workload;

// The Lambda host lives with the tests, which run the function binaries under it too.
use moderation_tests::lambda_host::{http, launch};

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::fake_s3::FakeS3;

/// What every section needs.
pub struct Ctx {
    pub root: PathBuf,
    pub out: PathBuf,
    /// The folder that stands in for S3 (`<work>/<bucket>/<key>`).
    pub work: PathBuf,
    pub logs: PathBuf,
    pub bin_dir: PathBuf,
    pub python: PathBuf,
    pub runs: usize,
    pub s3: FakeS3,
}

impl Ctx {
    pub fn binary(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

const USAGE: &str = "usage: bench [--out DIR] [--bin-dir DIR] [--python PATH] [--runs N] \
[--cold-runs N] [--only coldstart,throughput,memory,scale,images,index,offline,checkapi,micro] [--scenario SLUG,...] [--sizes N,N,...] [--quick]";

struct Args {
    out: PathBuf,
    bin_dir: PathBuf,
    python: PathBuf,
    runs: usize,
    cold_runs: usize,
    only: Option<Vec<String>>,
    /// Throughput scenarios to run (their slugs); all when unset.
    scenarios: Option<Vec<String>>,
    /// Upload sizes for the scale section (messages); set, it runs only these chains.
    sizes: Option<Vec<usize>>,
    quick: bool,
}

fn parse_args(root: &Path) -> Result<Args, String> {
    let mut a = Args {
        out: root.join("target/bench"),
        bin_dir: root.join("target/release"),
        python: root.join(".cache/venv/bin/python"),
        runs: 5,
        cold_runs: 15,
        only: None,
        scenarios: None,
        sizes: None,
        quick: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--out" => a.out = PathBuf::from(value()?),
            "--bin-dir" => a.bin_dir = PathBuf::from(value()?),
            "--python" => a.python = PathBuf::from(value()?),
            "--runs" => a.runs = count(&flag, &value()?)?,
            "--cold-runs" => a.cold_runs = count(&flag, &value()?)?,
            "--only" => a.only = Some(value()?.split(',').map(str::to_string).collect()),
            "--scenario" => a.scenarios = Some(value()?.split(',').map(str::to_string).collect()),
            "--sizes" => {
                a.sizes = Some(
                    value()?
                        .split(',')
                        .map(|n| count(&flag, n))
                        .collect::<Result<_, _>>()?,
                )
            }
            "--quick" => a.quick = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn count(flag: &str, v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag} wants a positive number, got {v:?}"))
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."));
    let args = match parse_args(&root) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(root, args)) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

impl Args {
    /// Whether `--only` (when given) names this section.
    fn wants(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == section))
    }
}

async fn run(root: PathBuf, args: Args) -> Result<(), String> {
    let started = Instant::now();
    let ctx = context(root, &args).await?;
    // The sections that run the Lambda binaries need them built.
    if [
        "coldstart",
        "throughput",
        "memory",
        "scale",
        "images",
        "index",
    ]
    .iter()
    .any(|s| args.wants(s))
    {
        check_binaries(&ctx)?;
    }
    let machine = machine::describe(&ctx).await;
    eprintln!("bench: {}", machine.one_line());
    let mut results = report::Results {
        machine,
        ..Default::default()
    };
    measure(&ctx, &args, &mut results).await?;
    results.harness_seconds = started.elapsed().as_secs_f64();
    results.build = report::read_build_times(&ctx.out.join("build-times.tsv"));
    results.total_seconds = make_bench_seconds(&ctx.out);
    write_outputs(&ctx, &results)
}

/// A fresh work folder with the fake S3 serving it.
async fn context(root: PathBuf, args: &Args) -> Result<Ctx, String> {
    let work = args.out.join("work");
    // Outputs of an earlier run would only mislead; the folder is ours alone.
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let s3 = FakeS3::start(&work)
        .await
        .map_err(|e| format!("fake S3: {e}"))?;
    Ok(Ctx {
        logs: args.out.join("logs"),
        out: args.out.clone(),
        work,
        bin_dir: args.bin_dir.clone(),
        python: args.python.clone(),
        runs: args.runs,
        s3,
        root,
    })
}

fn check_binaries(ctx: &Ctx) -> Result<(), String> {
    for bin in ["screen-text", "evaluate-policy", "write-report"] {
        if !ctx.binary(bin).exists() {
            return Err(format!(
                "{} is missing: run `cargo build --release -p screen-text -p evaluate-policy -p write-report` (make bench does)",
                ctx.binary(bin).display()
            ));
        }
    }
    Ok(())
}

/// Each section `--only` asks for (all by default), in the report's order of measuring.
async fn measure(ctx: &Ctx, args: &Args, results: &mut report::Results) -> Result<(), String> {
    if args.wants("coldstart") {
        eprintln!("bench: cold start ({} runs per case)", args.cold_runs);
        results.cold = Some(coldstart::run(ctx, args.cold_runs).await?);
    }
    if args.wants("throughput") {
        results.throughput = Some(measure_throughput(ctx, args).await);
    }
    if args.wants("memory") {
        eprintln!("bench: evaluate-policy on 10k screened items");
        results.evaluate = Some(evaluate::run(ctx, if args.quick { 1_000 } else { 10_000 }).await?);
    }
    if args.wants("scale") {
        results.scale = Some(measure_scale(ctx, args).await);
    }
    if args.wants("images") {
        eprintln!("bench: images");
        results.images = Some(images::run(ctx, if args.quick { 6 } else { 30 }).await);
    }
    if args.wants("index") {
        eprintln!("bench: report index");
        results.index = Some(measure_index(ctx, args).await?);
    }
    if args.wants("offline") {
        eprintln!("bench: offline scoring");
        results.offline = Some(offline::run(ctx).await);
    }
    if args.wants("checkapi") {
        eprintln!("bench: real-time check API");
        results.check_api = Some(checkapi::run(ctx, args.quick).await);
    }
    if args.wants("review") {
        eprintln!("bench: review queue");
        let sizes: &[usize] = if args.quick {
            &[1_000, 10_000]
        } else {
            &[1_000, 100_000]
        };
        results.review = Some(review::run(ctx, sizes).await?);
    }
    if args.wants("micro") {
        results.micro = micro::read(&ctx.root.join("target/criterion"));
    }
    Ok(())
}

/// The scenarios `--scenario` names (all by default).
async fn measure_throughput(ctx: &Ctx, args: &Args) -> Vec<throughput::Scenario> {
    let specs: Vec<_> = throughput::specs(args.quick)
        .into_iter()
        .filter(|s| args.scenarios.as_ref().is_none_or(|o| o.contains(&s.slug)))
        .collect();
    eprintln!("bench: throughput ({} scenarios)", specs.len());
    throughput::run(ctx, &specs).await
}

/// `--sizes` alone when given; otherwise small sizes for `--quick`, and up to a million
/// messages, the shortest-line upload and modctl on a million lines for the full run.
async fn measure_scale(ctx: &Ctx, args: &Args) -> scale::ScaleResult {
    let (sizes, shortest, modctl): (&[usize], _, _) = if let Some(sizes) = &args.sizes {
        (sizes, None, None)
    } else if args.quick {
        (&[1_000, 10_000], None, Some(10_000))
    } else {
        (
            &[10_000, 100_000, 1_000_000],
            Some(moderation_core::stages::screen_text::DEFAULT_MAX_OBJECT_BYTES),
            Some(1_000_000),
        )
    };
    scale::run(ctx, sizes, shortest, modctl).await
}

async fn measure_index(ctx: &Ctx, args: &Args) -> Result<index::IndexResult, String> {
    let sizes: &[usize] = if args.quick {
        &[100, 1_000]
    } else {
        &[100, 1_000, 10_000]
    };
    index::run(ctx, sizes, if args.quick { 5 } else { 20 }).await
}

/// `make bench` writes the epoch second it started: the whole run, builds included.
fn make_bench_seconds(out: &Path) -> Option<f64> {
    let t0 = std::fs::read_to_string(out.join("started"))
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(now.saturating_sub(t0) as f64)
}

/// `results.md`, `results.json` and `bench.png` (a chart that cannot be drawn is only
/// reported), then the markdown on stdout.
fn write_outputs(ctx: &Ctx, results: &report::Results) -> Result<(), String> {
    let md = report::markdown(results);
    let md_path = ctx.out.join("results.md");
    std::fs::write(&md_path, &md).map_err(|e| format!("{}: {e}", md_path.display()))?;
    let json_path = ctx.out.join("results.json");
    std::fs::write(&json_path, report::json(results).to_string())
        .map_err(|e| format!("{}: {e}", json_path.display()))?;
    let png = ctx.out.join("bench.png");
    match chart::draw(results, &png) {
        Ok(()) => eprintln!("bench: wrote {}", png.display()),
        Err(e) => eprintln!("bench: no chart: {e}"),
    }
    eprintln!("bench: wrote {}", md_path.display());
    println!("{md}");
    Ok(())
}
