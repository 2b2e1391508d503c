//! The check-api binary as Lambda runs it: started under a Runtime API emulator with the
//! offline backend and fed the Function URL fixtures in `events/check-api/` (the same files
//! `cargo lambda invoke --data-file` takes). Each answer is a Function URL response: a status,
//! headers and a JSON body.

use std::path::PathBuf;
use std::time::Duration;

use moderation_tests::lambda_host::launch::{self, Launch};
use moderation_tests::workspace_root;
use serde_json::Value;

const FIXTURES: [&str; 7] = [
    "function-url-healthz.json",
    "function-url-check-text.json",
    "function-url-check-batch.json",
    "function-url-check-prompt.json",
    "function-url-check-image.json",
    "function-url-generate.json",
    "function-url-bad-json.json",
];

/// (status, body) of each answer, in fixture order.
async fn run_fixtures() -> Vec<(u64, Value)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = FIXTURES
        .iter()
        .map(|f| std::fs::read(workspace_root().join("events/check-api").join(f)).expect("fixture"))
        .collect();
    let policies = workspace_root().join("infra/policies");
    let run = launch::run(&Launch {
        label: "check-api".into(),
        program: PathBuf::from(env!("CARGO_BIN_EXE_check-api")),
        args: Vec::new(),
        env: vec![
            ("MODERATION_BACKEND".into(), "offline".into()),
            (
                "MODERATION_OFFLINE_ROOT".into(),
                dir.path().display().to_string(),
            ),
            ("POLICY_DIR".into(), policies.display().to_string()),
            ("LOG_LEVEL".into(), "info".into()),
        ],
        events,
        log_dir: dir.path().join("logs"),
        timeout: Duration::from_secs(180),
    })
    .await
    .unwrap_or_else(|e| panic!("the binary did not answer: {e}"));
    run.responses
        .iter()
        .map(|a| {
            assert!(!a.error, "{}", String::from_utf8_lossy(&a.body));
            let resp: Value = serde_json::from_slice(&a.body).expect("a Function URL response");
            let body = resp["body"].as_str().unwrap_or_default();
            let body = serde_json::from_str(body).unwrap_or(Value::Null);
            (resp["statusCode"].as_u64().unwrap_or(0), body)
        })
        .collect()
}

#[tokio::test]
async fn every_fixture_gets_its_answer_from_the_binary() {
    let answers = run_fixtures().await;
    assert_eq!(answers.len(), FIXTURES.len());
    let [health, text, batch, prompt, image, generate, bad] = &answers[..] else {
        unreachable!("counted above")
    };
    assert_eq!(health, &(200, serde_json::json!({"status": "ok"})));
    assert_eq!(text.0, 200, "{}", text.1);
    assert_ne!(text.1["decision"], "allow", "a threat: {}", text.1);
    assert_eq!(batch.0, 200, "{}", batch.1);
    let decisions: Vec<&str> = batch.1["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["decision"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(decisions[0], "allow", "{}", batch.1);
    // A minor named with sexual content is a rule hit: blocked whatever a score says.
    assert_eq!(decisions[1], "block", "{}", batch.1);
    assert_ne!(decisions[2], "allow", "{}", batch.1);
    assert_eq!(
        (prompt.0, prompt.1["decision"].as_str()),
        (200, Some("allow"))
    );
    assert_eq!(image.0, 200, "{}", image.1);
    assert!(image.1["items"].as_array().is_some_and(|i| !i.is_empty()));
    // No image model configured: 503, naming what to set.
    assert_eq!(generate.0, 503, "{}", generate.1);
    assert!(generate.1["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("IMAGE_GENERATION_MODEL_ID")));
    assert_eq!(bad.0, 400);
    assert_eq!(bad.1["error"]["code"], "bad_request");
}
