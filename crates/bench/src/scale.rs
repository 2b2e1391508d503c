//! Memory at scale: the text chain's release binaries (screen-text → evaluate-policy →
//! write-report, `aws` backend against the loopback fakes without latency) on chat logs of 10k,
//! 100k and 1M messages, each stage's peak RSS side by side; an upload at `MAX_OBJECT_BYTES`
//! of the shortest possible lines (one character and a line break); and `modctl` offline on a
//! log of a million lines. Every run's report must count every message: nothing lost.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moderation_core::chain::spool::VerdictCounts;
use moderation_core::model::Report;
use moderation_core::stages::write_report::{MAX_BELOW_IN_FULL, MAX_FLAGGED_IN_FULL};
use moderation_tests::fake_aws::{FakeAws, Faults};

use crate::launch::{self, Launch};
use crate::workload::{aws_env, message, s3_event, Endpoints};
use crate::Ctx;

/// One stage's process: its time, CPU and peak RSS.
#[derive(Debug, Clone, Default)]
pub struct StageRun {
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub rss_mib: f64,
}

/// The whole text chain on one upload.
#[derive(Debug, Clone, Default)]
pub struct ChainRun {
    pub label: String,
    pub messages: u64,
    pub bytes: u64,
    pub screen: Option<StageRun>,
    pub evaluate: Option<StageRun>,
    pub report: Option<StageRun>,
    /// Items the report lists in full, and below-threshold ones it only counts.
    pub listed: u64,
    pub unlisted: u64,
    /// The report's `summary.items`: must equal `messages`.
    pub counted: u64,
    pub over_threshold: u64,
    pub needs_review: u64,
    pub report_json_mib: f64,
    pub report_html_mib: f64,
    /// Headless Chromium: seconds from start to the loaded page's DOM (with the browser's own
    /// start-up), and whether the first item over the threshold is on it.
    pub html_load: Option<Result<(f64, bool), String>>,
    pub failure: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ModctlRun {
    pub lines: u64,
    pub seconds: f64,
    pub max_rss_mib: f64,
    pub summary: String,
}

#[derive(Debug, Clone, Default)]
pub struct ScaleResult {
    pub chains: Vec<ChainRun>,
    pub shortest: Option<ChainRun>,
    pub modctl: Option<Result<ModctlRun, String>>,
    /// screen-text's `MemorySize` in the template, MB.
    pub template_mb: Option<u64>,
}

/// Chat logs of `sizes` messages through the chain; `shortest_bytes` of one-character lines;
/// `modctl_lines` through modctl.
pub async fn run(
    ctx: &Ctx,
    sizes: &[usize],
    shortest_bytes: Option<u64>,
    modctl_lines: Option<usize>,
) -> ScaleResult {
    let fake = FakeAws::start(Faults::default(), 13).await;
    let endpoints = Endpoints {
        s3: ctx.s3.url(),
        aws: fake.url(),
    };
    let mut env = aws_env(&endpoints, &ctx.work);
    env.push(("KNOWLEDGE_BASE_ID".into(), "KBFAKE0001".into()));
    let mut result = ScaleResult {
        template_mb: template_memory(&ctx.root.join("infra/template.yaml"), "ScreenTextFunction"),
        ..Default::default()
    };
    for &n in sizes {
        eprintln!("bench: scale, {n} messages");
        let log = |w: &mut dyn std::io::Write| -> std::io::Result<()> {
            for i in 0..n {
                writeln!(w, "{}", message(i))?;
            }
            Ok(())
        };
        let run = chain(ctx, &env, &format!("{n} messages"), n as u64, log).await;
        result.chains.push(run);
    }
    if let Some(bytes) = shortest_bytes {
        let lines = bytes / 2;
        eprintln!("bench: scale, {bytes} bytes of one-character lines ({lines} lines)");
        let log = |w: &mut dyn std::io::Write| -> std::io::Result<()> {
            // 26 letters in turn: short, repeated lines, as a flood or a stuck key makes them.
            let block: Vec<u8> = (0..4096u64)
                .flat_map(|i| [b'a' + (i % 26) as u8, b'\n'])
                .collect();
            let mut left = lines * 2;
            while left > 0 {
                let take = left.min(block.len() as u64) as usize;
                w.write_all(&block[..take])?;
                left -= take as u64;
            }
            Ok(())
        };
        let label = format!("{bytes} bytes of one-character lines");
        result.shortest = Some(chain(ctx, &env, &label, lines, log).await);
    }
    if let Some(lines) = modctl_lines {
        eprintln!("bench: scale, modctl on {lines} lines");
        result.modctl = Some(modctl(ctx, lines));
    }
    result
}

/// screen-text, evaluate-policy and write-report, one invocation each, on the upload `write`
/// makes; the bucket folder is removed afterwards.
async fn chain(
    ctx: &Ctx,
    env: &[(String, String)],
    label: &str,
    messages: u64,
    write: impl Fn(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> ChainRun {
    let bucket = format!("scale-{}", label.split_whitespace().next().unwrap_or("x"));
    let mut run = ChainRun {
        label: label.to_string(),
        messages,
        ..Default::default()
    };
    if let Err(e) = chain_steps(ctx, env, &bucket, &mut run, write).await {
        eprintln!("bench: scale {label}: {e}");
        run.failure = Some(e);
    }
    let _ = std::fs::remove_dir_all(ctx.work.join(&bucket));
    run
}

async fn chain_steps(
    ctx: &Ctx,
    env: &[(String, String)],
    bucket: &str,
    run: &mut ChainRun,
    write: impl Fn(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), String> {
    let key = "incoming/text/chat.txt";
    let path = ctx.work.join(bucket).join(key);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    {
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        write(&mut out)
            .and_then(|()| std::io::Write::flush(&mut out))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    run.bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let bucket_dir = ctx.work.join(bucket);
    let stage = |bin: &'static str, key: String| {
        let size = std::fs::metadata(bucket_dir.join(&key)).map_or(0, |m| m.len());
        Launch {
            label: format!("scale-{bucket}-{bin}"),
            program: ctx.binary(bin),
            args: vec![],
            env: env.to_vec(),
            events: vec![s3_event(bucket, &key, size)],
            log_dir: ctx.logs.clone(),
            timeout: Duration::from_secs(3600),
        }
    };
    run.screen = Some(one(&stage("screen-text", key.to_string())).await?);
    let screened = only_json(&bucket_dir.join("screened"))?;
    run.evaluate = Some(one(&stage("evaluate-policy", format!("screened/{screened}"))).await?);
    let evaluated = only_json(&bucket_dir.join("evaluated"))?;
    run.report = Some(one(&stage("write-report", format!("evaluated/{evaluated}"))).await?);
    let json = bucket_dir.join("reports").join(&evaluated);
    let html = json.with_extension("html");
    run.report_json_mib = mib(&json);
    run.report_html_mib = mib(&html);

    let file = std::fs::File::open(&json).map_err(|e| format!("{}: {e}", json.display()))?;
    let report: Report<VerdictCounts> = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| format!("{}: {e}", json.display()))?;
    let c = report.items;
    run.listed = c.violation + c.no_violation + c.needs_review + c.below_threshold + c.none;
    run.unlisted = report.unlisted.map_or(0, |u| u.below_threshold);
    run.counted = report.summary.items;
    run.over_threshold = report.summary.over_threshold;
    run.needs_review = report.summary.needs_review;
    let flagged = c.violation + c.no_violation + c.needs_review + c.none;
    let below_in_full = if c.below_threshold > MAX_BELOW_IN_FULL as u64 || run.unlisted > 0 {
        0
    } else {
        c.below_threshold
    };
    let in_full = flagged.min(MAX_FLAGGED_IN_FULL as u64) + below_in_full;
    run.html_load = moderation_tests::chromium().map(|browser| {
        let started = Instant::now();
        let page = std::fs::canonicalize(&html).map_err(|e| format!("{}: {e}", html.display()))?;
        let dom = moderation_tests::try_dump_dom(&browser, &moderation_tests::file_url(&page), 0)?;
        let shown = dom.matches("<section class=\"item ").count() as u64;
        Ok((started.elapsed().as_secs_f64(), shown == in_full))
    });
    if run.counted != run.messages {
        return Err(format!(
            "the report counts {} items for {} messages",
            run.counted, run.messages
        ));
    }
    Ok(())
}

fn mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(f64::NAN, |m| m.len() as f64 / 1_048_576.0)
}

async fn one(l: &Launch) -> Result<StageRun, String> {
    let r = launch::run(l).await?;
    r.first_ok().map_err(|e| format!("{}: {e}", l.label))?;
    Ok(StageRun {
        seconds: r.invoke.as_secs_f64(),
        cpu_seconds: r.cpu.as_secs_f64(),
        rss_mib: r.peak_rss_kib as f64 / 1024.0,
    })
}

/// The one `.json` document a stage wrote in `dir`.
fn only_json(dir: &Path) -> Result<String, String> {
    std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".json"))
        .ok_or_else(|| format!("nothing written in {}", dir.display()))
}

/// modctl (release, offline, lexicon detector: the MiniLM head scores 140 messages a second)
/// on a log of `lines` messages; its peak RSS from the kernel's rusage of the child, read by
/// the benchmark's Python (a process's `VmHWM` is gone once it exits).
fn modctl(ctx: &Ctx, lines: usize) -> Result<ModctlRun, String> {
    let bin = ctx.binary("modctl");
    if !bin.exists() {
        return Err(format!(
            "{} is missing (make bench builds it)",
            bin.display()
        ));
    }
    let dir = ctx.work.join("modctl-scale");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log = dir.join("chat.txt");
    {
        use std::io::Write;
        let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for i in 0..lines {
            writeln!(out, "{}", message(i)).map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    let script = "import resource, subprocess, sys\n\
        p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n\
        sys.stderr.write(p.stderr)\n\
        print(p.returncode)\n\
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
        print(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else '')\n";
    let out_dir: PathBuf = dir.join("out");
    let started = Instant::now();
    let out = std::process::Command::new(&ctx.python)
        .arg("-c")
        .arg(script)
        .arg(&bin)
        .arg("moderate")
        .arg(&log)
        .arg("--out")
        .arg(&out_dir)
        .arg("--policy")
        .arg(ctx.root.join("infra/policies"))
        .arg("--quiet")
        .env("OFFLINE_DETECTOR", "lexicon")
        .current_dir(&ctx.root)
        .output()
        .map_err(|e| format!("{}: {e}", ctx.python.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.lines();
    let code = fields.next().unwrap_or_default().trim().to_string();
    let rss_kib: f64 = fields
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(f64::NAN);
    let summary = fields.next().unwrap_or_default().to_string();
    if code != "0" {
        return Err(format!(
            "modctl exited {code}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(ModctlRun {
        lines: lines as u64,
        seconds,
        max_rss_mib: rss_kib / 1024.0,
        summary,
    })
}

/// A function's `MemorySize` in the SAM template, MB.
pub fn template_memory(template: &Path, function: &str) -> Option<u64> {
    let text = std::fs::read_to_string(template).ok()?;
    let start = text.find(&format!("\n  {function}:"))? + 1;
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("  ") || l.starts_with("   "))
        .find_map(|l| l.trim().strip_prefix("MemorySize:"))
        .and_then(|v| v.split('#').next()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_gives_screen_text_its_memory() {
        let root = moderation_tests::workspace_root();
        let mb = template_memory(&root.join("infra/template.yaml"), "ScreenTextFunction");
        assert!(mb.is_some_and(|m| m >= 128), "{mb:?}");
    }
}
