use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::*;
use crate::error::ServiceErrorKind;

/// The fixture `cargo lambda invoke --data-file` uses: two policy files written, one deleted.
fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/sqs-policies-changed.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// An index that answers from a script and records what it was asked.
struct Index {
    answer: fn() -> Result<SyncStart>,
    asked: Mutex<Vec<String>>,
}

impl Index {
    fn new(answer: fn() -> Result<SyncStart>) -> Self {
        Index {
            answer,
            asked: Mutex::new(Vec::new()),
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("not poisoned").clone()
    }
}

#[async_trait]
impl PolicyIndex for Index {
    async fn start_sync(&self, why: &str) -> Result<SyncStart> {
        self.asked
            .lock()
            .expect("not poisoned")
            .push(why.to_string());
        (self.answer)()
    }
}

fn started() -> Result<SyncStart> {
    Ok(SyncStart::Started {
        job_id: "JOB0000001".into(),
    })
}

fn failures(response: &Value) -> Vec<&str> {
    response["batchItemFailures"]
        .as_array()
        .expect("an SQS batch response")
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect()
}

#[test]
fn a_batch_of_edits_and_a_deletion_is_one_plan() {
    let plan = plan(&fixture()).expect("reads");
    assert_eq!(
        plan.changed,
        [
            "policies/harassment.md",
            "policies/threats.md",
            "policies/old-rules.md"
        ]
    );
    assert_eq!(plan.messages.len(), 3);
    assert!(plan.from_sqs && plan.unreadable.is_empty());
}

#[tokio::test]
async fn one_job_for_the_whole_batch_and_every_message_acknowledged() {
    let index = Index::new(started);
    let response = sync_policies(&fixture(), Some(&index))
        .await
        .expect("handled");
    assert_eq!(failures(&response), Vec::<&str>::new());
    let asked = index.asked();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].contains("3 changed") && asked[0].contains("policies/old-rules.md"));
}

#[tokio::test]
async fn a_running_job_sends_the_whole_batch_back_for_later() {
    let index = Index::new(|| {
        Ok(SyncStart::Busy {
            job_id: Some("JOB0000000".into()),
        })
    });
    let response = sync_policies(&fixture(), Some(&index))
        .await
        .expect("handled");
    assert_eq!(failures(&response).len(), 3);
}

#[tokio::test]
async fn a_refused_call_is_retried_then_dead_lettered_never_dropped() {
    let index = Index::new(|| {
        Err(Error::Service {
            service: "bedrock-agent",
            kind: ServiceErrorKind::Permission,
            source: "AccessDeniedException".into(),
        })
    });
    let response = sync_policies(&fixture(), Some(&index))
        .await
        .expect("handled");
    assert_eq!(failures(&response).len(), 3);
    // Invoked directly, the error is the invocation's.
    let direct = json!({"detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "policies/a.md"}}});
    let e = sync_policies(&direct, Some(&index))
        .await
        .expect_err("fails");
    assert!(e.to_string().contains("AccessDenied"), "{e}");
}

#[tokio::test]
async fn an_unreadable_message_is_kept_and_the_rest_still_sync() {
    let mut payload = fixture();
    payload["Records"][1]["body"] = json!("not json");
    let index = Index::new(started);
    let response = sync_policies(&payload, Some(&index))
        .await
        .expect("handled");
    assert_eq!(
        failures(&response),
        [payload["Records"][1]["messageId"].as_str().expect("id")]
    );
    assert_eq!(index.asked().len(), 1);
}

#[tokio::test]
async fn keys_outside_policies_and_folder_markers_start_nothing() {
    let index = Index::new(started);
    for key in ["incoming/text/a.txt", "policies/", "policies/drafts/"] {
        let event = json!({"detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": key}}});
        let response = sync_policies(&event, Some(&index)).await.expect("handled");
        assert_eq!(response["sync"], "nothing to do", "{key}");
    }
    assert!(index.asked().is_empty());
}

#[test]
fn s3_notifications_count_removals_and_decode_keys() {
    let event = json!({"Records": [
        {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"},
            "object": {"key": "policies/hate+speech.md"}}},
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"},
            "object": {"key": "policies/a%2Bb.md"}}},
        {"eventName": "ObjectRestore:Post", "s3": {"bucket": {"name": "b"},
            "object": {"key": "policies/c.md"}}}
    ]});
    assert_eq!(
        changed_keys(&event).expect("decodes"),
        ["policies/hate speech.md", "policies/a+b.md"]
    );
}

#[test]
fn another_kind_of_event_is_named_in_the_error() {
    let e = changed_keys(&json!({"detail-type": "User Report", "source": "x", "detail": {}}))
        .expect_err("not an object change");
    assert!(e.to_string().contains("User Report"), "{e}");
}

#[test]
fn the_job_description_stays_within_200_characters() {
    let many: Vec<String> = (0..40)
        .map(|i| format!("policies/section-{i}.md"))
        .collect();
    let text = describe(&many);
    assert!(text.len() <= 200, "{} chars", text.len());
    assert!(text.starts_with("sync-policies: 40 changed: policies/section-0.md, "));
    assert!(text.ends_with(", ..."));
    assert_eq!(
        describe(&["policies/a.md".into()]),
        "sync-policies: 1 changed: policies/a.md"
    );
}

#[tokio::test]
async fn without_an_index_the_change_is_read_and_acknowledged() {
    let response = sync_policies(&fixture(), None).await.expect("handled");
    assert_eq!(failures(&response), Vec::<&str>::new());
    let direct = json!({"detail-type": "Object Deleted", "source": "aws.s3",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "policies/a.md"}}});
    let response = sync_policies(&direct, None).await.expect("handled");
    assert_eq!(response["changed"], json!(["policies/a.md"]));
}
