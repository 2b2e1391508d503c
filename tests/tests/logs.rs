//! The functions' logs: JSON lines that name the stage and the source on every line, and never
//! carry message text or user ids at INFO (chat text can be personal data).

use moderation_tests::{event, fixture, stage_uploads, workspace_root, Apps, LogCapture};
use serde_json::Value;
use tracing_subscriber::EnvFilter;

// Single-threaded so the thread-local subscriber sees every task.
#[tokio::test(flavor = "current_thread")]
async fn info_logs_name_stage_and_source_and_carry_no_chat_text() {
    let capture = LogCapture::default();
    let _guard = tracing::subscriber::set_default(
        moderation_core::chain::telemetry::json_subscriber(EnvFilter::new("info"), capture.clone()),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    stage_uploads(dir.path());
    let apps = Apps::offline(dir.path()).await;
    let (screen, evaluate) = (&apps.screen, &apps.evaluate);
    let ev = |name: &str| event(fixture(name));
    screen_text::handler(ev("s3-put-text.json"), screen)
        .await
        .expect("screen");
    evaluate_policy::handler(ev("s3-put-screened.json"), evaluate)
        .await
        .expect("evaluate");

    let text = capture.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{text}");
    for line in &lines {
        let span = &line["span"];
        assert!(span["stage"].is_string(), "no stage: {line}");
        assert!(
            span["source_uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("s3://moderation-demo/")),
            "no source: {line}"
        );
    }
    let sample = std::fs::read_to_string(workspace_root().join("events/uploads/match-chat.csv"))
        .expect("sample");
    for row in sample.lines().skip(1) {
        let cols: Vec<&str> = row.splitn(4, ',').collect();
        let (user, message) = (cols[1], cols[3].trim_matches('"'));
        assert!(!text.contains(user), "user id {user} logged:\n{text}");
        assert!(!text.contains(message), "message text logged: {message}");
    }
}

/// The lines alarms count carry the fields the template's metric filters read.
#[test]
fn counted_events_carry_the_fields_the_metric_filters_read() {
    use moderation_core::chain::telemetry::{cut_short, dead_lettered, DEAD_LETTER, TIME_LIMIT};
    let capture = LogCapture::default();
    let subscriber =
        moderation_core::chain::telemetry::json_subscriber(EnvFilter::new("info"), capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        cut_short(
            "incoming/text/big.txt",
            "the rest is not screened",
            Some(12),
        );
        dead_lettered("screen-text", "incoming/text/x.csv", "access denied");
    });
    let text = capture.text();
    let logged: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(logged.len(), 2, "{text}");
    assert_eq!(logged[0]["fields"][TIME_LIMIT], true);
    assert_eq!(logged[0]["fields"]["messages"], 12);
    assert_eq!(logged[1]["fields"][DEAD_LETTER], true);
    assert_eq!(logged[1]["fields"]["stage"], "screen-text");
}
