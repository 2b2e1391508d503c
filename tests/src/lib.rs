//! Shared helpers for the offline whole-chain, handler-with-fixture and fault-injection tests.

pub mod check_api;
pub mod devtools;
pub mod fake_aws;
pub mod infra;
pub mod lambda_host;
pub mod review;

use std::path::{Path, PathBuf};

use lambda_runtime::{Context, LambdaEvent};
use moderation_core::chain::config::Vars;
use moderation_core::chain::delivery::Outcome;
use moderation_core::chain::keys::Stage;
use serde_json::Value;

/// The workspace root, where `events/` and `infra/` live.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A Lambda event fixture from `events/`, parsed.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The bucket the fixtures name.
pub const FIXTURE_BUCKET: &str = "moderation-demo";

/// Copy the sample chat logs into `<root>/<bucket>/incoming/text/`, as an uploader would.
pub fn stage_uploads(root: &Path) -> Vec<String> {
    stage_samples(root, moderation_core::model::SourceKind::Text)
}

/// Copy the sample images into `<root>/<bucket>/incoming/image/samples/`.
pub fn stage_images(root: &Path) -> Vec<String> {
    stage_samples(root, moderation_core::model::SourceKind::Image)
}

fn stage_samples(root: &Path, kind: moderation_core::model::SourceKind) -> Vec<String> {
    let src = workspace_root().join("events/uploads");
    let folder = match kind {
        moderation_core::model::SourceKind::Image => "incoming/image/samples",
        _ => "incoming/text",
    };
    let dest = root.join(FIXTURE_BUCKET).join(folder);
    std::fs::create_dir_all(&dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
    let mut keys = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if moderation_core::chain::keys::kind_of(&name) != Some(kind) {
            continue;
        }
        std::fs::copy(e.path(), dest.join(&name)).unwrap_or_else(|err| panic!("{name}: {err}"));
        keys.push(format!("{folder}/{name}"));
    }
    keys
}

/// The four functions, built from configuration exactly as their `main`s do.
pub struct Apps {
    pub audio: transcribe_audio::App,
    pub screen: screen_text::App,
    pub image: screen_image::App,
    pub evaluate: evaluate_policy::App,
    pub report: write_report::App,
}

/// Run `f` with the variables of an offline run over the folder bucket at `root`.
pub fn with_offline_vars<T>(root: &Path, f: impl FnOnce(&Vars) -> T) -> T {
    let root = root.display().to_string();
    let policy = workspace_root()
        .join("infra/policies")
        .display()
        .to_string();
    let whisper = whisper_dir().display().to_string();
    let nsfw = nsfw_model().display().to_string();
    let pairs = [
        ("MODERATION_BACKEND", "offline"),
        ("MODERATION_OFFLINE_ROOT", root.as_str()),
        ("POLICY_DIR", policy.as_str()),
        ("MODERATION_BUCKET", FIXTURE_BUCKET),
        ("WHISPER_DIR", whisper.as_str()),
        ("NSFW_MODEL", nsfw.as_str()),
    ];
    let vars = Vars::from_pairs(&pairs);
    f(&vars)
}

/// The offline open_nsfw model (`NSFW_MODEL`, else the workspace's `.cache` copy).
pub fn nsfw_model() -> PathBuf {
    std::env::var_os("NSFW_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root().join(moderation_core::stages::screen_image::DEFAULT_NSFW_MODEL)
        })
}

/// Whether this build has the offline image classifier and its model: pictures are then
/// labelled offline instead of held for a person. CI sets `REQUIRE_MODELS=1`, so a build with
/// the feature but no model fails here instead of passing on the other branch.
pub fn offline_classifier_on() -> bool {
    if !cfg!(feature = "nsfw") {
        return false;
    }
    let present = nsfw_model().is_file();
    assert!(
        present || std::env::var("REQUIRE_MODELS").as_deref() != Ok("1"),
        "REQUIRE_MODELS=1 but {} is missing (make models)",
        nsfw_model().display()
    );
    present
}

/// The offline Whisper model (`WHISPER_DIR`, else the workspace's `.cache/models/whisper-tiny-en`).
pub fn whisper_dir() -> PathBuf {
    std::env::var_os("WHISPER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/models/whisper-tiny-en"))
}

impl Apps {
    pub async fn offline(root: &Path) -> Apps {
        let (a, s, e, r) = with_offline_vars(root, |v| {
            (
                transcribe_audio::Config::from_vars(v).expect("transcribe-audio config"),
                screen_text::Config::from_vars(v).expect("screen-text config"),
                evaluate_policy::Config::from_vars(v).expect("evaluate-policy config"),
                write_report::Config::from_vars(v).expect("write-report config"),
            )
        });
        Apps {
            audio: transcribe_audio::App::build(a)
                .await
                .expect("transcribe-audio app"),
            screen: screen_text::App::build(s).await.expect("screen-text app"),
            image: offline_image_app(root).await,
            evaluate: evaluate_policy::App::build(e)
                .await
                .expect("evaluate-policy app"),
            report: write_report::App::build(r).await.expect("write-report app"),
        }
    }
}

/// screen-image over the folder bucket at `root`, built from configuration as its `main` does
/// (offline: no image classifier, Tesseract OCR).
pub async fn offline_image_app(root: &Path) -> screen_image::App {
    let config = with_offline_vars(root, |v| {
        screen_image::Config::from_vars(v).expect("screen-image config")
    });
    screen_image::App::build(config)
        .await
        .expect("screen-image app")
}

/// A Lambda event as the runtime delivers it.
pub fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// A Lambda event whose invocation ends `ms` milliseconds from now.
pub fn event_due_in(payload: Value, ms: u64) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        + ms;
    LambdaEvent::new(payload, context)
}

/// Deliver a routed key to the matching function handler as an S3 notification, the way the
/// deployed chain does; what the handler wrote comes back as the outcome.
pub async fn dispatch(a: &Apps, stage: Stage, key: &str) -> moderation_core::Result<Outcome> {
    let payload = serde_json::json!({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
        "s3":{"bucket":{"name":FIXTURE_BUCKET},"object":{"key":s3_notification_key(key)}}}]});
    let out = match stage {
        Stage::ScreenText => screen_text::handler(event(payload), &a.screen).await?,
        Stage::ScreenImage => screen_image::handler(event(payload), &a.image).await?,
        Stage::EvaluatePolicy => evaluate_policy::handler(event(payload), &a.evaluate).await?,
        Stage::WriteReport => write_report::handler(event(payload), &a.report).await?,
        Stage::TranscribeAudio => transcribe_audio::handler(event(payload), &a.audio).await?,
        Stage::SyncPolicies => {
            sync_policies::handler(event(payload), &sync_policies::App::without_index()).await?
        }
    };
    let keys = out["written"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Outcome::Wrote(keys))
}

/// A JSON document of the fixture bucket under `root`.
pub fn read_doc<T: serde::de::DeserializeOwned>(root: &Path, key: &str) -> T {
    let path = root.join(FIXTURE_BUCKET).join(key);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The functions wired to the fake AWS services at `sdk`'s endpoint, over a folder bucket.
pub async fn apps_on_fake_aws(
    root: &Path,
    sdk: &aws_config::SdkConfig,
    concurrency: usize,
) -> Apps {
    apps_on_fake_aws_in_mode(root, sdk, concurrency, false).await
}

/// As [`apps_on_fake_aws`], with `POLICY_MODE=retrieve_and_generate` when `generate` is set.
pub async fn apps_on_fake_aws_in_mode(
    root: &Path,
    sdk: &aws_config::SdkConfig,
    concurrency: usize,
    generate: bool,
) -> Apps {
    use std::sync::Arc;
    let store: Arc<dyn moderation_core::ports::ObjectStore> =
        Arc::new(moderation_offline::FolderStore::new(root));
    let (s, e, r) = with_offline_vars(root, |v| {
        (
            screen_text::Config::from_vars(v).expect("screen-text config"),
            evaluate_policy::Config::from_vars(v).expect("evaluate-policy config"),
            write_report::Config::from_vars(v).expect("write-report config"),
        )
    });
    let screen = screen_text::App::from_parts(
        store.clone(),
        Arc::new(moderation_aws::ComprehendDetector::from_sdk_config(sdk)),
        moderation_core::text::rules::RuleFilter::default_list().expect("rules"),
        &screen_text::Config { concurrency, ..s },
    );
    let evaluate = evaluate_policy::App::from_parts(
        store.clone(),
        Arc::new(moderation_aws::KnowledgeBaseRetriever::from_sdk_config(
            sdk,
            "KBFAKE0001",
        )),
        if generate {
            Arc::new(
                moderation_aws::bedrock::RetrieveAndGenerateJudge::from_sdk_config(
                    sdk,
                    "KBFAKE0001",
                    "fake-model",
                    3,
                    moderation_core::stages::evaluate_policy::prompt::PromptTemplate::default_template(),
                ),
            )
        } else {
            Arc::new(moderation_core::stages::evaluate_policy::LlmJudge::new(
                moderation_aws::ConverseModel::from_sdk_config(sdk, "fake-model"),
            ))
        },
        // Fault tests measure failure handling, not the spend cap.
        &evaluate_policy::Config {
            concurrency,
            max_llm_calls: usize::MAX,
            ..e
        },
    );
    let report = write_report::App::from_parts(store.clone(), &r);
    let audio =
        offline_audio_app(root, Err("no speech-to-text in the fake-AWS tests".into())).await;
    Apps {
        audio,
        screen,
        image: offline_image_app(root).await,
        evaluate,
        report,
    }
}

/// As [`apps_on_fake_aws`], with screen-text identifying languages through Comprehend and
/// translating through Translate, both at the fake.
pub async fn apps_on_fake_aws_translating(root: &Path, sdk: &aws_config::SdkConfig) -> Apps {
    use std::sync::Arc;
    let mut apps = apps_on_fake_aws(root, sdk, 2).await;
    apps.screen = apps.screen.with_languages(
        Arc::new(moderation_aws::ComprehendLanguages::from_sdk_config(sdk)),
        Some(Arc::new(
            moderation_aws::TranslateToEnglish::from_sdk_config(sdk),
        )),
    );
    apps
}

/// transcribe-audio whose transcripts in other languages are identified and translated through
/// the fake at `sdk`'s endpoint (Comprehend, Translate), with `languages` as `AUDIO_LANGUAGES`
/// and the transcription jobs `jobs`.
pub async fn audio_app_on_fake_aws_translating(
    root: &Path,
    sdk: &aws_config::SdkConfig,
    languages: &str,
    jobs: std::sync::Arc<dyn moderation_core::ports::TranscriptionJobs>,
) -> transcribe_audio::App {
    use std::sync::Arc;
    let mut config = with_offline_vars(root, |v| {
        transcribe_audio::Config::from_vars(v).expect("transcribe-audio config")
    });
    config.languages =
        moderation_core::ports::SpeechLanguages::parse(languages).expect("AUDIO_LANGUAGES");
    let text = screen_text::App::from_parts(
        Arc::new(moderation_offline::FolderStore::new(root)),
        Arc::new(moderation_aws::ComprehendDetector::from_sdk_config(sdk)),
        moderation_core::text::rules::RuleFilter::default_list().expect("rules"),
        &config.text,
    )
    .with_languages(
        Arc::new(moderation_aws::ComprehendLanguages::from_sdk_config(sdk)),
        Some(Arc::new(
            moderation_aws::TranslateToEnglish::from_sdk_config(sdk),
        )),
    );
    transcribe_audio::App::from_parts(text, jobs, &config)
}

/// Deliver an S3 notification for `key` to `stage` the way an SQS queue with
/// `max_receive` does: again while the handler reports the message failed, then to the DLQ.
/// Returns the number of deliveries and whether the message ended in the dead-letter queue.
pub async fn deliver_via_sqs(a: &Apps, stage: Stage, key: &str, max_receive: u32) -> (u32, bool) {
    let body =
        serde_json::json!({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
        "s3":{"bucket":{"name":FIXTURE_BUCKET},"object":{"key":s3_notification_key(key)}}}]})
        .to_string();
    for n in 1..=max_receive {
        let payload = serde_json::json!({"Records":[{"messageId":"msg-1","eventSource":"aws:sqs",
            "attributes":{"ApproximateReceiveCount": n.to_string()},"body": body}]});
        let out = match stage {
            Stage::ScreenText => screen_text::handler(event(payload), &a.screen).await,
            Stage::ScreenImage => screen_image::handler(event(payload), &a.image).await,
            Stage::EvaluatePolicy => evaluate_policy::handler(event(payload), &a.evaluate).await,
            Stage::WriteReport => write_report::handler(event(payload), &a.report).await,
            Stage::TranscribeAudio => transcribe_audio::handler(event(payload), &a.audio).await,
            Stage::SyncPolicies => {
                let app = sync_policies::App::without_index();
                sync_policies::handler(event(payload), &app).await
            }
        }
        .expect("an SQS batch always gets a batch response");
        let failed = out["batchItemFailures"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if !failed {
            return (n, false);
        }
    }
    (max_receive, true)
}

/// Keys under `prefix` in the fixture bucket under `root`.
pub fn keys_under(root: &Path, prefix: &str) -> Vec<String> {
    let dir = root.join(FIXTURE_BUCKET).join(prefix);
    let mut keys: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| format!("{prefix}{}", e.file_name().to_string_lossy()))
                .filter(|k| !k.contains("/.tmp-"))
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

/// The deployed graph, stage by stage, through SQS-like queues: uploads → screen-text,
/// `screened/` → evaluate-policy, `evaluated/` → write-report. Returns the keys whose message
/// ended in a dead-letter queue.
pub async fn run_chain_via_sqs(
    a: &Apps,
    root: &Path,
    uploads: &[String],
    max_receive: u32,
) -> Vec<String> {
    let mut dlq = Vec::new();
    for stage in [Stage::ScreenText, Stage::EvaluatePolicy, Stage::WriteReport] {
        // Each stage sees what the one before it wrote.
        let keys = match stage {
            Stage::ScreenText => uploads.to_vec(),
            Stage::EvaluatePolicy => keys_under(root, moderation_core::chain::keys::SCREENED),
            _ => keys_under(root, moderation_core::chain::keys::EVALUATED),
        };
        for key in keys {
            if deliver_via_sqs(a, stage, &key, max_receive).await.1 {
                dlq.push(key);
            }
        }
    }
    dlq
}

/// A key as S3 writes it into a notification: form-URL-encoded (space as `+`).
pub fn s3_notification_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// transcribe-audio over the folder bucket at `root`, with the offline transcription backed by
/// `speech` (a scripted recogniser in tests, or the Whisper model).
pub async fn offline_audio_app(
    root: &Path,
    speech: Result<std::sync::Arc<dyn moderation_core::ports::SpeechToText>, String>,
) -> transcribe_audio::App {
    offline_audio_app_in(root, speech, "en-US").await
}

/// [`offline_audio_app`] with `languages` as `AUDIO_LANGUAGES`.
pub async fn offline_audio_app_in(
    root: &Path,
    speech: Result<std::sync::Arc<dyn moderation_core::ports::SpeechToText>, String>,
    languages: &str,
) -> transcribe_audio::App {
    let mut config = with_offline_vars(root, |v| {
        transcribe_audio::Config::from_vars(v).expect("transcribe-audio config")
    });
    config.languages =
        moderation_core::ports::SpeechLanguages::parse(languages).expect("AUDIO_LANGUAGES");
    let text = screen_text::App::build(config.text.clone())
        .await
        .expect("screen-text app");
    let jobs = std::sync::Arc::new(moderation_offline::LocalTranscription::new(
        text.store().clone(),
        speech,
        text.detector().clone(),
    ));
    transcribe_audio::App::from_parts(text, jobs, &config)
}

/// transcribe-audio over the folder bucket at `root` with the transcription jobs `jobs` makes.
pub async fn audio_app_with_jobs(
    root: &Path,
    jobs: impl FnOnce(
        &screen_text::App,
    ) -> std::sync::Arc<dyn moderation_core::ports::TranscriptionJobs>,
) -> transcribe_audio::App {
    let config = with_offline_vars(root, |v| {
        transcribe_audio::Config::from_vars(v).expect("transcribe-audio config")
    });
    let text = screen_text::App::build(config.text.clone())
        .await
        .expect("screen-text app");
    let jobs = jobs(&text);
    transcribe_audio::App::from_parts(text, jobs, &config)
}

/// Where headless Chromium is, if installed (`CHROMIUM` overrides).
pub fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMIUM").ok(),
        Some("/usr/bin/chromium".into()),
        Some("/usr/bin/chromium-browser".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Chromium, or `None` with a message when it is absent and not required (`REQUIRE_CHROMIUM`).
pub fn chromium_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var("REQUIRE_CHROMIUM").is_err(),
            "REQUIRE_CHROMIUM is set but no chromium was found (make test installs Debian's chromium)"
        );
        eprintln!("skipping: chromium not installed (make test installs it)");
    }
    found
}

/// Whether the `tesseract` program is installed; with `REQUIRE_TESSERACT` set, it must be.
pub fn tesseract_or_skip() -> bool {
    let found = std::process::Command::new("tesseract")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("REQUIRE_TESSERACT").is_err(),
            "REQUIRE_TESSERACT is set but tesseract was not found (make test installs Debian's tesseract-ocr)"
        );
        eprintln!("skipping: tesseract not installed (make test installs it)");
    }
    found
}

/// Headless Chromium on a closed network: without the background-networking flags it keeps
/// trying hosts it cannot reach.
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A PNG screenshot of `url` at `width` × `height`, taken by headless Chromium.
pub fn screenshot(browser: &Path, url: &str, out: &Path, width: u32, height: u32) {
    let profile = tempfile::tempdir().expect("chromium profile dir");
    let status = std::process::Command::new(browser)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(HEADLESS)
        .args([
            "--hide-scrollbars",
            &format!("--window-size={width},{height}"),
            &format!("--screenshot={}", out.display()),
            url,
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("chromium runs");
    assert!(status.success(), "chromium --screenshot failed: {status}");
}

/// The DOM of `url` once loaded, or, with a `budget_ms`, after headless Chromium has run its
/// scripts for that much virtual time (media metadata loads, event handlers fire).
pub fn dump_dom(browser: &Path, url: &str, budget_ms: u32) -> String {
    try_dump_dom(browser, url, budget_ms).unwrap_or_else(|e| panic!("{e}"))
}

/// [`dump_dom`], failing with the reason instead of panicking (the benchmarks time it).
pub fn try_dump_dom(browser: &Path, url: &str, budget_ms: u32) -> Result<String, String> {
    let profile = tempfile::tempdir().map_err(|e| format!("profile dir: {e}"))?;
    let out = std::process::Command::new(browser)
        .args(HEADLESS)
        .arg("--autoplay-policy=no-user-gesture-required")
        // Without a budget the DOM is dumped once the page has loaded.
        .args((budget_ms > 0).then(|| format!("--virtual-time-budget={budget_ms}")))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .map_err(|e| format!("{}: {e}", browser.display()))?;
    if !out.status.success() {
        return Err(format!(
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `file://` URL of a local page.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Chat lines of every kind: banter, allowed swearing, insults, threats, evasions, a scam.
pub const CHAT_POOL: &[&str] = &[
    "gl hf everyone",
    "nice shot, that flank was clean",
    "this fucking lag is killing me",
    "you are such an idiot, stop feeding",
    "y0u 1d10t",
    "i know where you live, watch your back",
    "k i l l  y o u r s e l f",
    "nobody wants you here, uninstall the game",
    "we got outplayed, rematch?",
    "FREE ROBUX, verify your account to claim your prize",
    "shit, forgot my armor again",
    "i will find you and hurt you",
    "anyone up for ranked tonight",
    "shut up loser, nobody asked you",
    "thanks for the carry, legend",
    "you're worthless trash",
];

/// Message `i` of a large upload: a pool line made distinct by a running number.
pub fn chat_message(i: usize) -> String {
    format!("{} #{i}", CHAT_POOL[i % CHAT_POOL.len()])
}

/// A small report numbered `n`, for index tests and benchmarks: no items, a plausible summary.
pub fn sample_report(bucket: &str, n: usize) -> moderation_core::model::Report {
    use moderation_core::model::{
        Report, Source, SourceKind, Status, Summary, Trigger, Usage, REPORT_SCHEMA,
    };
    Report {
        schema: REPORT_SCHEMA.into(),
        report_id: format!("chat-{n:06}-0a1b2c"),
        created_at: format!(
            "2026-11-25T{:02}:{:02}:{:02}.000Z",
            n / 3600 % 24,
            n / 60 % 60,
            n % 60
        ),
        source: Source::new(
            format!("s3://{bucket}/incoming/text/chat-{n}.txt"),
            SourceKind::Text,
        ),
        trigger: Trigger::upload(),
        status: Status::Complete,
        summary: Summary {
            items: 10,
            over_threshold: (n % 3) as u64,
            ..Default::default()
        },
        items: Vec::new(),
        unlisted: None,
        errors: Vec::new(),
        usage: Usage::default(),
        image: None,
        conversations: Vec::new(),
    }
}

/// Report ids on an index page, in page order.
pub fn ids_on_index_page(path: &Path) -> Vec<String> {
    let html = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    html.split("<tr data-report=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// Every id listed on `reports/index.html` and the sealed pages of a folder bucket, with how
/// often.
pub fn listed_in_index(bucket_dir: &Path) -> std::collections::BTreeMap<String, usize> {
    use moderation_core::chain::keys;
    let mut seen = std::collections::BTreeMap::new();
    let mut pages = vec![bucket_dir.join(keys::report_index_key())];
    if let Ok(dir) = std::fs::read_dir(bucket_dir.join(keys::INDEX_PAGES)) {
        pages.extend(dir.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    for p in pages {
        for id in ids_on_index_page(&p) {
            *seen.entry(id).or_insert(0) += 1;
        }
    }
    seen
}

/// A log writer that keeps what it is given, for tests of the functions' JSON logs.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'w self) -> LogCapture {
        self.clone()
    }
}
