//! evaluate-policy on a screened document of 10k items: peak RSS and time of the release
//! binary on the `aws` backend against the fake Retrieve and Converse (no latency), with the
//! production defaults (`LLM_CONCURRENCY` 4, `MAX_LLM_CALLS_PER_OBJECT` 5000).

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

pub async fn run(ctx: &Ctx, messages: usize) -> Result<EvalResult, String> {
    let fake = FakeAws::start(Faults::default(), 11).await;
    let endpoints = Endpoints {
        s3: ctx.s3.url(),
        aws: fake.url(),
    };
    let mut env = aws_env(&endpoints, &ctx.work);
    env.push(("KNOWLEDGE_BASE_ID".into(), "KBFAKE0001".into()));

    // The input: what screen-text writes for the upload.
    let src = "eval-source";
    let key = format!("incoming/text/chat-{messages}.txt");
    let size = put_object(&ctx.work, src, &key, chat_log(messages).as_bytes())?;
    let screen = launch::run(&Launch {
        label: "evaluate-input-screen".into(),
        program: ctx.binary("screen-text"),
        args: vec![],
        env: env.clone(),
        events: vec![s3_event(src, &key, size)],
        log_dir: ctx.logs.clone(),
        timeout: Duration::from_secs(600),
    })
    .await?;
    screen.first_ok().map_err(|e| format!("screen-text: {e}"))?;
    let doc_dir = ctx.work.join(src).join("screened");
    let doc_path = std::fs::read_dir(&doc_dir)
        .map_err(|e| format!("{}: {e}", doc_dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .ok_or("screen-text wrote no screened document")?;
    let doc_name = doc_path
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
    let mut result = EvalResult {
        items,
        over_threshold,
        screen_rss_mib: screen.peak_rss_kib as f64 / 1024.0,
        ..Default::default()
    };

    for i in 0..ctx.runs {
        let bucket = format!("eval-{i}");
        let screened_key = format!("screened/{doc_name}");
        put_object(&ctx.work, &bucket, &screened_key, &bytes)?;
        let before = fake.stats();
        let label = format!("evaluate-{i}");
        let r = launch::run(&Launch {
            label: label.clone(),
            program: ctx.binary("evaluate-policy"),
            args: vec![],
            env: env.clone(),
            events: vec![s3_event(&bucket, &screened_key, bytes.len() as u64)],
            log_dir: ctx.logs.clone(),
            timeout: Duration::from_secs(900),
        })
        .await;
        let r = r.and_then(|r| match r.first_ok().err() {
            None => Ok(r),
            Some(e) => Err(format!("{label}: function error: {e}")),
        });
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                eprintln!("bench: evaluate-policy failure: {e}");
                result.failures.push(e);
                continue;
            }
        };
        let after = fake.stats();
        let calls = |op: &str| {
            after.requests.get(op).copied().unwrap_or(0)
                - before.requests.get(op).copied().unwrap_or(0)
        };
        let evaluated_dir = ctx.work.join(&bucket).join("evaluated");
        let evaluated = std::fs::read(evaluated_dir.join(&doc_name))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let (n, judged) = evaluated.as_ref().map_or((0, 0), |d| {
            let items = d["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let judged = items.iter().filter(|i| !i["evaluation"].is_null()).count();
            (items.len(), judged)
        });
        let _ = std::fs::remove_dir_all(ctx.work.join(&bucket));
        result.runs.push(EvalRun {
            seconds: r.invoke.as_secs_f64(),
            rss_mib: r.peak_rss_kib as f64 / 1024.0,
            cpu_seconds: r.cpu.as_secs_f64(),
            retrieve_calls: calls("Retrieve"),
            converse_calls: calls("Converse"),
            items: n,
            evaluated: judged,
        });
    }
    Ok(result)
}
