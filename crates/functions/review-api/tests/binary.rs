//! The review-api binary as Lambda runs it: started under a Runtime API emulator with the
//! offline backend over moderated samples, fed the HTTP API fixtures in `events/review-api/`
//! (the same files `cargo lambda invoke --data-file` takes). The moderator is the verified
//! token's subject, never the body's, and only for members of the moderators group.

use std::path::PathBuf;
use std::time::Duration;

use moderation_tests::lambda_host::launch::{self, Launch};
use moderation_tests::review::moderate_samples;
use moderation_tests::{workspace_root, FIXTURE_BUCKET};
use serde_json::Value;

const FIXTURES: [&str; 5] = [
    "http-api-console.json",
    "http-api-queue.json",
    "http-api-decision.json",
    "http-api-decision-bad-verdict.json",
    "http-api-decision-not-a-moderator.json",
];

#[tokio::test]
async fn every_fixture_gets_its_answer_and_the_moderator_is_the_token_subject() {
    let dir = tempfile::tempdir().expect("tempdir");
    moderate_samples(dir.path()).await;
    let events = FIXTURES
        .iter()
        .map(|f| {
            std::fs::read(workspace_root().join("events/review-api").join(f)).expect("fixture")
        })
        .collect();
    let policies = workspace_root().join("infra/policies");
    let run = launch::run(&Launch {
        label: "review-api".into(),
        program: PathBuf::from(env!("CARGO_BIN_EXE_review-api")),
        args: Vec::new(),
        env: vec![
            ("MODERATION_BACKEND".into(), "offline".into()),
            (
                "MODERATION_OFFLINE_ROOT".into(),
                dir.path().display().to_string(),
            ),
            ("MODERATION_BUCKET".into(), FIXTURE_BUCKET.into()),
            ("POLICY_DIR".into(), policies.display().to_string()),
            ("LOG_LEVEL".into(), "info".into()),
        ],
        events,
        log_dir: dir.path().join("logs"),
        timeout: Duration::from_secs(180),
    })
    .await
    .unwrap_or_else(|e| panic!("the binary did not answer: {e}"));
    let answers: Vec<(u64, String)> = run
        .responses
        .iter()
        .map(|a| {
            assert!(!a.error, "{}", String::from_utf8_lossy(&a.body));
            let resp: Value = serde_json::from_slice(&a.body).expect("an HTTP API response");
            (
                resp["statusCode"].as_u64().unwrap_or(0),
                resp["body"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let json = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    let [console, queue, decision, bad, outsider] = &answers[..] else {
        panic!("{} answers", answers.len())
    };
    assert_eq!(console.0, 200);
    assert!(console.1.contains("Review queue"));
    assert_eq!(queue.0, 200, "{}", queue.1);
    assert!(!json(&queue.1)["items"]
        .as_array()
        .expect("items")
        .is_empty());
    assert_eq!(decision.0, 201, "{}", decision.1);
    let d = json(&decision.1);
    assert_eq!(
        d["decision"]["moderator"], "6f1c2a9e-5b7d-4c1e-9a3f-2b8d7e6c5a41",
        "the token's subject, not the body's moderator"
    );
    assert_eq!(bad.0, 400, "{}", bad.1);
    assert!(json(&bad.1)["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("verdict"));
    assert_eq!(outsider.0, 403, "{}", outsider.1);
    assert_eq!(json(&outsider.1)["error"]["code"], "forbidden");
}
