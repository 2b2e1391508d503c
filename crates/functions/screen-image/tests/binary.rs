//! The screen-image binary as Lambda runs it: started under a Runtime API emulator with the
//! offline backend, fed the `events/` fixtures (an S3 notification and an SQS-wrapped one),
//! and judged by its answers and the screened documents it writes.

use std::path::PathBuf;
use std::time::Duration;

use moderation_core::chain::keys;
use moderation_core::model::StageDocument;
use moderation_tests::lambda_host::launch::{self, Launch};
use moderation_tests::{tesseract_or_skip, workspace_root, FIXTURE_BUCKET};

#[tokio::test]
async fn the_binary_screens_the_fixture_images_under_the_runtime_api() {
    if !tesseract_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for name in ["lose-again-meme.png", "squad-chat-screenshot.png"] {
        let path = root
            .join(FIXTURE_BUCKET)
            .join("incoming/image/match-42")
            .join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::copy(workspace_root().join("events/uploads").join(name), &path).expect("copy");
    }
    let events = ["s3-put-image.json", "sqs-s3-put-image.json"]
        .iter()
        .map(|f| std::fs::read(workspace_root().join("events").join(f)).expect("fixture"))
        .collect();
    let run = launch::run(&Launch {
        label: "screen-image".into(),
        program: PathBuf::from(env!("CARGO_BIN_EXE_screen-image")),
        args: Vec::new(),
        env: vec![
            ("MODERATION_BACKEND".into(), "offline".into()),
            ("MODERATION_OFFLINE_ROOT".into(), root.display().to_string()),
            (
                "NSFW_MODEL".into(),
                moderation_tests::nsfw_model().display().to_string(),
            ),
            ("LOG_LEVEL".into(), "info".into()),
        ],
        events,
        log_dir: root.join("logs"),
        timeout: Duration::from_secs(180),
    })
    .await
    .unwrap_or_else(|e| panic!("the binary did not answer: {e}"));
    assert_eq!(run.responses.len(), 2);
    let answers: Vec<serde_json::Value> = run
        .responses
        .iter()
        .map(|a| {
            assert!(!a.error, "{}", String::from_utf8_lossy(&a.body));
            serde_json::from_slice(&a.body).expect("JSON answer")
        })
        .collect();
    let meme = keys::source_id(
        FIXTURE_BUCKET,
        "incoming/image/match-42/lose-again-meme.png",
    );
    assert_eq!(
        answers[0]["written"][0],
        keys::screened_key(&meme),
        "{}",
        answers[0]
    );
    // SQS-wrapped: a partial-batch answer with no failures.
    assert_eq!(
        answers[1]["batchItemFailures"],
        serde_json::json!([]),
        "{}",
        answers[1]
    );
    let chat = keys::source_id(
        FIXTURE_BUCKET,
        "incoming/image/match-42/squad-chat-screenshot.png",
    );
    for id in [&meme, &chat] {
        let path = root.join(FIXTURE_BUCKET).join(keys::screened_key(id));
        let doc: StageDocument =
            serde_json::from_slice(&std::fs::read(&path).expect("screened document"))
                .expect("parses");
        let found = doc.image.as_ref().expect("image findings");
        assert_eq!(found.text_model.as_deref(), Some("Tesseract OCR"));
        // The prepared copy the policy check will send is there.
        let picture = found.picture.as_deref().expect("picture key");
        assert!(
            root.join(FIXTURE_BUCKET).join(picture).is_file(),
            "{picture}"
        );
        // Text read in the picture is over the gate and on its way to the policy check.
        assert!(doc.items.iter().any(|i| i.verdict.is_none()), "{doc:?}");
    }
    // A debug build of a whole image stage stays small.
    assert!(
        run.peak_rss_kib > 0 && run.peak_rss_kib < 1024 * 1024,
        "{}",
        run.peak_rss_kib
    );
}
