//! evaluate-policy on a screened document of 10k items: peak RSS and time of the release
//! binary on the `aws` backend against the fake Retrieve and Converse (no latency), with the
//! production defaults (`LLM_CONCURRENCY` 4, `MAX_LLM_CALLS_PER_OBJECT` 5000).

use std::path::{Path, PathBuf};
use std::time::Duration;

use moderation_tests::fake_aws::{FakeAws, Faults};

use crate::launch::{self, Launch};
use crate::workload::{aws_env, chat_log, put_object, s3_event, Endpoints};
use crate::Ctx;

#[derive(Debug, Clone, Default)]
pub struct EvalRun {
    pub seconds: f64,
    pub rss_mib: f64,
    pub cpu_seconds: f64,
    pub retrieve_calls: u64,
    pub converse_calls: u64,
    pub items: usize,
    pub evaluated: usize,
}

#[derive(Debug, Clone, Default)]
pub struct EvalResult {
    pub items: usize,
    pub over_threshold: usize,
    pub screen_rss_mib: f64,
    pub runs: Vec<EvalRun>,
    pub failures: Vec<String>,
}

/// The screened document evaluate-policy reads, as screen-text wrote it.
struct ScreenedDoc {
    /// Its file name under `screened/`.
    name: String,
    bytes: Vec<u8>,
    items: usize,
    /// Items without a verdict: over the threshold, so evaluate-policy judges them.
    over_threshold: usize,
    /// screen-text's peak RSS producing it.
    screen_rss_mib: f64,
}

impl ScreenedDoc {
    fn key(&self) -> String {
        format!("screened/{}", self.name)
    }
}

pub async fn run(ctx: &Ctx, messages: usize) -> Result<EvalResult, String> {
    let fake = FakeAws::start(Faults::default(), 11).await;
    let endpoints = Endpoints {
        s3: ctx.s3.url(),
        aws: fake.url(),
    };
    let mut env = aws_env(&endpoints, &ctx.work);
    env.push(("KNOWLEDGE_BASE_ID".into(), "KBFAKE0001".into()));
    let doc = screened_input(ctx, &env, messages).await?;
    let mut result = EvalResult {
        items: doc.items,
        over_threshold: doc.over_threshold,
        screen_rss_mib: doc.screen_rss_mib,
        ..Default::default()
    };
    for i in 0..ctx.runs {
        // Each run reads its own copy: nothing one run writes can reach the next.
        let bucket = format!("eval-{i}");
        put_object(&ctx.work, &bucket, &doc.key(), &doc.bytes)?;
        match evaluate_once(ctx, &fake, &env, &doc, &bucket, i).await {
            Ok(run) => result.runs.push(run),
            Err(e) => {
                eprintln!("bench: evaluate-policy failure: {e}");
                result.failures.push(e);
            }
        }
    }
    Ok(result)
}

/// The input: screen-text on a chat log of `messages`, and the document it wrote.
async fn screened_input(
    ctx: &Ctx,
    env: &[(String, String)],
    messages: usize,
) -> Result<ScreenedDoc, String> {
    let src = "eval-source";
    let key = format!("incoming/text/chat-{messages}.txt");
    let size = put_object(&ctx.work, src, &key, chat_log(messages).as_bytes())?;
    let screen = launch::run(&Launch {
        label: "evaluate-input-screen".into(),
        program: ctx.binary("screen-text"),
        args: vec![],
        env: env.to_vec(),
        events: vec![s3_event(src, &key, size)],
        log_dir: ctx.logs.clone(),
        timeout: Duration::from_secs(600),
    })
    .await?;
    screen.first_ok().map_err(|e| format!("screen-text: {e}"))?;
    let doc_path = find_screened_json(&ctx.work.join(src).join("screened"))?;
    let name = doc_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = std::fs::read(&doc_path).map_err(|e| format!("{}: {e}", doc_path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", doc_path.display()))?;
    let items = doc["items"].as_array().map_or(0, Vec::len);
    let over_threshold = doc["items"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|i| i["verdict"].is_null()).count());
    Ok(ScreenedDoc {
        name,
        bytes,
        items,
        over_threshold,
        screen_rss_mib: screen.peak_rss_kib as f64 / 1024.0,
    })
}

fn find_screened_json(dir: &Path) -> Result<PathBuf, String> {
    std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .ok_or_else(|| "screen-text wrote no screened document".to_string())
}

/// Run `i`: evaluate-policy on the document in `bucket`, and the calls it made to the fake.
/// The bucket is removed after a successful run.
async fn evaluate_once(
    ctx: &Ctx,
    fake: &FakeAws,
    env: &[(String, String)],
    doc: &ScreenedDoc,
    bucket: &str,
    i: usize,
) -> Result<EvalRun, String> {
    let screened_key = doc.key();
    let before = fake.stats();
    let label = format!("evaluate-{i}");
    let r = launch::run(&Launch {
        label: label.clone(),
        program: ctx.binary("evaluate-policy"),
        args: vec![],
        env: env.to_vec(),
        events: vec![s3_event(bucket, &screened_key, doc.bytes.len() as u64)],
        log_dir: ctx.logs.clone(),
        timeout: Duration::from_secs(900),
    })
    .await?;
    if let Err(e) = r.first_ok() {
        return Err(format!("{label}: function error: {e}"));
    }
    let after = fake.stats();
    let calls = |op: &str| {
        after.requests.get(op).copied().unwrap_or(0) - before.requests.get(op).copied().unwrap_or(0)
    };
    let (items, evaluated) = count_judged(&ctx.work.join(bucket).join("evaluated").join(&doc.name));
    let _ = std::fs::remove_dir_all(ctx.work.join(bucket));
    Ok(EvalRun {
        seconds: r.invoke.as_secs_f64(),
        rss_mib: r.peak_rss_kib as f64 / 1024.0,
        cpu_seconds: r.cpu.as_secs_f64(),
        retrieve_calls: calls("Retrieve"),
        converse_calls: calls("Converse"),
        items,
        evaluated,
    })
}

/// Items in the evaluated document, and those with an evaluation; zeros when it is missing
/// or unreadable.
fn count_judged(path: &Path) -> (usize, usize) {
    let evaluated = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    evaluated.as_ref().map_or((0, 0), |d| {
        let items = d["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let judged = items.iter().filter(|i| !i["evaluation"].is_null()).count();
        (items.len(), judged)
    })
}
