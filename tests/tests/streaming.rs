//! Uploads larger than one chunk go through the chain streamed: items keep their order, every
//! item over the threshold (or held for a person) is listed in full, clean lines past
//! `MAX_LISTED_BELOW_THRESHOLD` are counted, and the report counts every message. Repeated
//! lines are scored once, and the detector never has more calls in flight than configured.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use moderation_core::chain::config::Thresholds;
use moderation_core::chain::delivery::run_chain;
use moderation_core::chain::keys;
use moderation_core::model::{Report, StageDocument, Trigger, Verdict};
use moderation_core::ports::{SegmentLimits, ToxicityDetector, ToxicityScore};
use moderation_core::stages::screen_text::{screen_text_object, ScreenConfig, ScreenDeps};
use moderation_core::text::parse::ParseOptions;
use moderation_core::text::rules::RuleFilter;
use moderation_offline::FolderStore;
use moderation_tests::{
    chromium_or_skip, dispatch, dump_dom, file_url, read_doc, with_offline_vars, Apps,
    FIXTURE_BUCKET,
};

const LINES: usize = 25_000;
const LISTED_BELOW: u64 = 3_000;

/// Line `i` of the big upload: mostly plain game chat, a threat every 250 lines, a line in
/// Russian (held offline: no translator) every 1,000.
fn line(i: usize) -> String {
    if i % 250 == 7 {
        format!("you should kill yourself, player{i}")
    } else if i % 1000 == 3 {
        "ты просто ужасный игрок, уходи".to_string()
    } else {
        format!("gg team, round {i} was close, rotate b next")
    }
}

async fn apps(root: &Path) -> Apps {
    let mut apps = Apps::offline(root).await;
    let config = with_offline_vars(root, |v| {
        screen_text::Config::from_vars(v).expect("screen-text config")
    });
    apps.screen = screen_text::App::build(screen_text::Config {
        max_listed_below: LISTED_BELOW,
        ..config
    })
    .await
    .expect("screen-text app");
    apps
}

#[tokio::test]
async fn a_large_upload_streams_through_the_chain_with_every_flagged_item_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let key = "incoming/text/big-lobby.txt";
    let path = root.join(FIXTURE_BUCKET).join(key);
    std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
    let text: String = (0..LINES).map(|i| line(i) + "\n").collect();
    std::fs::write(&path, text).expect("write upload");
    let apps = apps(root).await;
    run_chain(FIXTURE_BUCKET, vec![key.to_string()], |stage, obj| {
        let apps = &apps;
        async move { dispatch(apps, stage, &obj.key).await }
    })
    .await
    .expect("chain");

    let id = keys::source_id(FIXTURE_BUCKET, key);
    let screened: StageDocument = read_doc(root, &keys::screened_key(&id));
    let report: Report = read_doc(root, &keys::report_json_key(&id));
    assert_eq!(report.summary.items, LINES as u64, "every message counted");

    // Listed in upload order, across chunk boundaries.
    let numbers: Vec<usize> = report
        .items
        .iter()
        .map(|i| i.id.trim_start_matches("line-").parse().expect("line id"))
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "items out of order"
    );

    // Every threat and every held line is listed in full, with a verdict that is not clean.
    for i in (0..LINES).filter(|i| i % 250 == 7 || i % 1000 == 3) {
        let id = format!("line-{}", i + 1);
        let item = report
            .items
            .iter()
            .find(|it| it.id == id)
            .unwrap_or_else(|| panic!("{id} is not listed"));
        assert!(
            matches!(
                item.verdict,
                Some(Verdict::Violation | Verdict::NeedsReview)
            ),
            "{id}: {:?}",
            item.verdict
        );
    }
    let listed_below = report
        .items
        .iter()
        .filter(|i| i.verdict == Some(Verdict::BelowThreshold))
        .count() as u64;
    assert_eq!(listed_below, LISTED_BELOW);
    let unlisted = report
        .unlisted
        .clone()
        .expect("clean lines past the limit are counted");
    assert_eq!(
        report.items.len() as u64 + unlisted.below_threshold,
        LINES as u64
    );
    assert!(unlisted.max_toxicity < screened.threshold);
    assert_eq!(
        screened.unlisted, report.unlisted,
        "the report keeps the count"
    );
    let first: usize = unlisted
        .first
        .trim_start_matches("line-")
        .parse()
        .expect("id");
    let last: usize = unlisted
        .last
        .trim_start_matches("line-")
        .parse()
        .expect("id");
    assert!(
        first > numbers[LISTED_BELOW as usize - 1] && last == LINES,
        "{first}..{last}"
    );
    assert_eq!(
        report.summary.needs_review + report.summary.violations,
        report
            .items
            .iter()
            .filter(|i| matches!(i.verdict, Some(Verdict::Violation | Verdict::NeedsReview)))
            .count() as u64
    );

    // The page opens with every flagged item and says how many lines were only counted.
    let html_path = root.join(FIXTURE_BUCKET).join(keys::report_html_key(&id));
    let html = std::fs::read_to_string(&html_path).expect("report page");
    assert!(
        html.contains("id=\"unlisted\""),
        "no count of the unlisted lines"
    );
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let dom = dump_dom(&browser, &file_url(&html_path), 0);
    for item in report
        .items
        .iter()
        .filter(|i| i.verdict != Some(Verdict::BelowThreshold))
    {
        assert!(
            dom.contains(&format!("id=\"{}\" data-verdict=", item.id)),
            "{} missing from the page",
            item.id
        );
    }
    assert!(
        dom.contains(&format!("data-count=\"{}\"", unlisted.below_threshold)),
        "the unlisted count is not on the page"
    );
}

/// Scores every segment 0.1 after a wait, counting what it is sent and how many calls overlap.
struct Watched {
    name: &'static str,
    /// How long the first call takes, and every other one.
    first_wait: std::time::Duration,
    wait: std::time::Duration,
    calls: AtomicUsize,
    segments: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl Watched {
    fn new(name: &'static str, first_wait_ms: u64, wait_ms: u64) -> Self {
        Watched {
            name,
            first_wait: std::time::Duration::from_millis(first_wait_ms),
            wait: std::time::Duration::from_millis(wait_ms),
            calls: AtomicUsize::new(0),
            segments: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
        }
    }

    /// Each call answers after 2 ms.
    fn steady() -> Self {
        Watched::new("watched", 2, 2)
    }

    /// The first call takes longer than the invocation has, as a throttled quota would; the
    /// others answer at once.
    fn slow_start() -> Self {
        Watched::new("slow start", 2_500, 0)
    }
}

#[async_trait]
impl ToxicityDetector for Watched {
    fn name(&self) -> &str {
        self.name
    }

    fn limits(&self) -> SegmentLimits {
        SegmentLimits {
            max_segments: 10,
            max_segment_bytes: 1024,
            max_request_bytes: 10 * 1024,
        }
    }

    async fn detect(&self, segments: &[String]) -> moderation_core::Result<Vec<ToxicityScore>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        self.segments.fetch_add(segments.len(), Ordering::SeqCst);
        let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
        tokio::time::sleep(if first { self.first_wait } else { self.wait }).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(segments
            .iter()
            .map(|_| ToxicityScore {
                toxicity: 0.1,
                ..Default::default()
            })
            .collect())
    }
}

/// Upload `lines` to bucket "b" at `key` in a folder store and screen them with `detector`
/// through the core stage (at most 3 calls in flight): the outcome, and the screened document
/// if one was written.
async fn screen_lines(
    key: &str,
    lines: impl Iterator<Item = String>,
    detector: &dyn ToxicityDetector,
    time_limit: Option<moderation_core::chain::delivery::TimeLimit>,
) -> (
    moderation_core::Result<moderation_core::chain::delivery::Outcome>,
    Option<StageDocument>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FolderStore::new(dir.path());
    let path = dir.path().join("b").join(key);
    std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
    let text: String = lines.map(|l| l + "\n").collect();
    std::fs::write(&path, text).expect("write");
    let rules = RuleFilter::default_list().expect("rules");
    let deps = ScreenDeps {
        store: &store,
        detector,
        rules: &rules,
        languages: &moderation_core::text::language::OfflineIdentifier,
        translator: None,
        known_language: None,
        progress: None,
        time_limit,
    };
    let cfg = ScreenConfig {
        thresholds: Thresholds::uniform(0.5),
        max_object_bytes: 1 << 30,
        max_concurrency: 3,
        parse: ParseOptions::default(),
        max_translated_chars: 0,
        max_listed_below: 100_000,
        conversation: Default::default(),
    };
    let obj = moderation_core::model::ObjectRef::new("b", key);
    let outcome = screen_text_object(&obj, Trigger::upload(), &deps, &cfg).await;
    let screened = dir
        .path()
        .join("b")
        .join(keys::screened_key(&keys::source_id("b", key)));
    let doc = std::fs::read(screened)
        .ok()
        .map(|bytes| serde_json::from_slice(&bytes).expect("document"));
    (outcome, doc)
}

#[tokio::test]
async fn repeated_lines_are_scored_once_and_calls_in_flight_stay_within_the_limit() {
    // 9,000 lines over five chunks: 40 short lines said again and again, and 600 distinct
    // ones each said three times.
    let lines = (0..9_000).map(|i| {
        if i % 3 == 0 {
            format!("distinct line number {} about the match", (i / 3) % 600)
        } else {
            format!("gg {}", i % 40)
        }
    });
    let detector = Watched::steady();
    let (outcome, doc) = screen_lines("incoming/text/spam.txt", lines, &detector, None).await;
    outcome.expect("screens");
    let doc = doc.expect("screened");
    assert_eq!(doc.items.len(), 9_000);
    assert!(doc
        .items
        .iter()
        .all(|i| i.verdict == Some(Verdict::BelowThreshold) && i.toxicity == 0.1));
    let sent = detector.segments.load(Ordering::SeqCst);
    // 640 distinct texts; two chunks are scored at once, so a text may be sent by both.
    assert!((640..=2 * 640).contains(&sent), "{sent} segments sent");
    let most = detector.most_in_flight.load(Ordering::SeqCst);
    assert!(most <= 3, "{most} calls in flight with a limit of 3");
    assert!(doc.usage.comprehend_units == 0);
}

#[test]
fn a_small_document_has_no_unlisted_key() {
    // The contract's bytes for ordinary uploads: nothing new appears when nothing is counted.
    let doc = moderation_core::stages::write_report::build_report(
        serde_json::from_value(serde_json::json!({
            "schema": "moderation.evaluated/v1", "id": "x", "created_at": "2026-12-06T00:00:00Z",
            "source": {"uri": "s3://b/incoming/text/x.txt", "kind": "text"},
            "trigger": {"type": "upload"}, "status": "complete", "threshold": 0.5,
            "items": [], "errors": [], "usage": {"comprehend_units": 0, "transcribe_seconds": 0.0,
            "llm_calls": 0, "llm_input_tokens": 0, "llm_output_tokens": 0}
        }))
        .expect("document"),
    );
    let json = serde_json::to_string(&doc).expect("serialises");
    assert!(!json.contains("unlisted"), "{json}");
}

#[tokio::test]
async fn an_upload_cut_off_by_the_time_limit_is_reported_as_far_as_it_was_screened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let key = "incoming/text/endless.txt";
    let path = root.join(FIXTURE_BUCKET).join(key);
    std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
    const TOTAL: usize = 12_000;
    let text: String = (0..TOTAL)
        .map(|i| format!("{} of the match, line {i}\n", line(i)))
        .collect();
    std::fs::write(&path, text).expect("write upload");

    let mut apps = Apps::offline(root).await;
    let config = with_offline_vars(root, |v| {
        screen_text::Config::from_vars(v).expect("screen-text config")
    });
    apps.screen = screen_text::App::from_parts(
        Arc::new(FolderStore::new(root)),
        Arc::new(Watched::slow_start()),
        RuleFilter::default_list().expect("rules"),
        &screen_text::Config {
            concurrency: 3,
            ..config
        },
    );
    // One SQS batch: the long upload, then a short one that finds the time already spent.
    let next = "incoming/text/next-in-batch.txt";
    std::fs::write(root.join(FIXTURE_BUCKET).join(next), "gg\n").expect("write upload");
    let record = |id: &str, key: &str| {
        serde_json::json!({"messageId": id, "eventSource": "aws:sqs",
            "attributes": {"ApproximateReceiveCount": "1"},
            "body": serde_json::json!({"Records":[{"eventSource":"aws:s3",
                "eventName":"ObjectCreated:Put",
                "s3":{"bucket":{"name":FIXTURE_BUCKET},"object":{"key":key}}}]}).to_string()})
    };
    let payload = serde_json::json!({"Records": [record("m-long", key), record("m-next", next)]});
    let capture = moderation_tests::LogCapture::default();
    {
        // The test's runtime is single-threaded, so this subscriber sees the stage's lines.
        let _logs =
            tracing::subscriber::set_default(moderation_core::chain::telemetry::json_subscriber(
                tracing_subscriber::EnvFilter::new("warn"),
                capture.clone(),
            ));
        let answer = screen_text::handler(
            // The invocation has a second: the first chunks are handed over at once, and by
            // the time the slow first call returns no new chunk may start.
            moderation_tests::event_due_in(payload, 1_000),
            &apps.screen,
        )
        .await
        .expect("screen-text writes what it screened");
        // The long one is done with; the short one is left for a redelivery, not reported
        // as screened up to nothing.
        assert_eq!(
            answer,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-next"}]})
        );
    }
    let next_id = keys::source_id(FIXTURE_BUCKET, next);
    assert!(!root
        .join(FIXTURE_BUCKET)
        .join(keys::screened_key(&next_id))
        .exists());
    // What the template's metric filter counts (tests/tests/infra.rs holds the pattern).
    assert!(
        capture.text().lines().any(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["fields"]["time_limit"] == serde_json::json!(true))
        }),
        "no time_limit line in {}",
        capture.text()
    );

    let id = keys::source_id(FIXTURE_BUCKET, key);
    let screened: StageDocument = read_doc(root, &keys::screened_key(&id));
    let n = screened.items.len();
    assert!(n > 0 && n < TOTAL, "{n} of {TOTAL} messages screened");
    // Whole chunks from the top of the file, in order: the rest is named, not guessed at.
    let ids: Vec<String> = (1..=n).map(|i| format!("line-{i}")).collect();
    assert_eq!(
        screened
            .items
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(screened.status, moderation_core::model::Status::Failed);
    // The slow first call was abandoned at the end of the call time: its messages are held
    // for a person, never passed.
    assert!(screened.items.iter().any(|i| {
        i.verdict == Some(Verdict::NeedsReview)
            && i.review_reason
                .as_deref()
                .is_some_and(|r| r.contains("scores unavailable"))
    }));
    assert!(screened.errors.iter().any(|e| e
        .message
        .contains("the invocation's time ran out before slow start answered")));
    let why = screened
        .errors
        .iter()
        .find(|e| e.message.contains("time limit"))
        .unwrap_or_else(|| panic!("no time-limit error in {:?}", screened.errors));
    assert!(
        why.message.contains(&format!(
            "after screening {n} messages, through message line-{n};"
        )),
        "{}",
        why.message
    );
    assert!(why.message.starts_with(key), "{}", why.message);

    // The chain carries it on: the report says the screening failed and why.
    run_chain(
        FIXTURE_BUCKET,
        vec![keys::screened_key(&id)],
        |stage, obj| {
            let apps = &apps;
            async move { dispatch(apps, stage, &obj.key).await }
        },
    )
    .await
    .expect("chain");
    let report: Report = read_doc(root, &keys::report_json_key(&id));
    assert_eq!(report.status, moderation_core::model::Status::Failed);
    assert_eq!(report.summary.items, n as u64);
    assert!(report
        .errors
        .iter()
        .any(|e| e.message.contains("the rest of the file was not screened")));
}

#[tokio::test]
async fn an_upload_that_started_late_and_ran_out_of_time_is_left_for_a_redelivery() {
    // An earlier record of the delivery used most of the invocation.
    let now = std::time::Instant::now();
    let limit = moderation_core::chain::delivery::TimeLimit {
        started: now - std::time::Duration::from_secs(100),
        new_work: now + std::time::Duration::from_millis(300),
        calls: now + std::time::Duration::from_millis(400),
    };
    let lines = (0..6_000).map(|i| format!("{} {i}", line(i)));
    let detector = Watched::slow_start();
    let (outcome, doc) =
        screen_lines("incoming/text/late.txt", lines, &detector, Some(limit)).await;
    let err = outcome.expect_err("left for a redelivery");
    assert!(
        matches!(err, moderation_core::Error::OutOfTime(_)) && err.is_retryable(),
        "{err}"
    );
    assert!(doc.is_none(), "nothing is written");
}

#[tokio::test]
async fn an_upload_read_to_its_end_before_the_stop_is_not_reported_as_cut() {
    // Two chunks, both handed over at once; the detector's slow first call (2.5 s) outlasts the
    // stop for new chunks but not the one for calls. The stop leaves the parser 1.5 s to hand
    // both over, so a busy machine's slow debug-build parse does not cut the upload.
    let now = std::time::Instant::now();
    let limit = moderation_core::chain::delivery::TimeLimit {
        started: now,
        new_work: now + std::time::Duration::from_millis(1_500),
        calls: now + std::time::Duration::from_secs(30),
    };
    let lines = (0..800).map(|i| format!("{} {i}", line(i)));
    let detector = Watched::slow_start();
    let (outcome, doc) =
        screen_lines("incoming/text/short.txt", lines, &detector, Some(limit)).await;
    outcome.expect("screens");
    let doc = doc.expect("screened");
    assert_eq!(doc.items.len(), 800);
    assert_ne!(doc.status, moderation_core::model::Status::Failed);
    assert!(
        !doc.errors.iter().any(|e| e.message.contains("time limit")),
        "{:?}",
        doc.errors
    );
}

#[tokio::test]
async fn the_screening_handlers_can_run_on_any_thread() {
    // lambda_runtime's concurrent mode and tokio::spawn need Send futures; the time limit's
    // shared state must not take that away.
    fn on_any_thread<F: std::future::Future + Send>(_: F) {}
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = Apps::offline(dir.path()).await;
    on_any_thread(screen_text::handler(
        moderation_tests::event(serde_json::json!({})),
        &apps.screen,
    ));
    on_any_thread(transcribe_audio::handler(
        moderation_tests::event(serde_json::json!({})),
        &apps.audio,
    ));
}
