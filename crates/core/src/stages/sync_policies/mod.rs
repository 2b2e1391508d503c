//! sync-policies: a policy file written or deleted under `policies/` → one re-index of the
//! knowledge base. The queue in front of it batches a burst of edits (its batching window), so
//! a whole upload of `infra/policies/` costs one ingestion job; a job already running is not
//! trusted to have seen the change, so the batch comes back later and starts the next one.
//!
//! The events are EventBridge "Object Created" / "Object Deleted" from S3 (deletions matter
//! here, unlike in the moderation stages), wrapped in SQS, or S3 notifications.

use serde_json::{json, Value};

use crate::chain::keys::POLICIES;
use crate::error::{Error, Result};
use crate::ports::{PolicyIndex, SyncStart};

/// What one invocation asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// Policy files created or deleted, in event order, once each.
    pub changed: Vec<String>,
    /// SQS message ids of the batch (empty when invoked directly).
    pub messages: Vec<String>,
    /// Messages that could not be read, with why: never acknowledged, so the DLQ keeps them.
    pub unreadable: Vec<(String, String)>,
    pub from_sqs: bool,
}

/// Read the invocation: which policy files changed, and which messages carried them.
pub fn plan(payload: &Value) -> Result<SyncPlan> {
    let mut plan = SyncPlan::default();
    let Some(records) = sqs_records(payload) else {
        plan.changed = changed_keys(payload)?;
        return Ok(plan);
    };
    plan.from_sqs = true;
    for record in records {
        let id = record
            .get("messageId")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::UnsupportedEvent("SQS record without messageId".into()))?;
        let keys = record
            .get("body")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::UnsupportedEvent(format!("SQS message {id} has no string body")))
            .and_then(|body| serde_json::from_str(body).map_err(Error::EventShape))
            .and_then(|body: Value| changed_keys(&body));
        match keys {
            Ok(keys) => {
                plan.messages.push(id.to_string());
                for key in keys {
                    if !plan.changed.contains(&key) {
                        plan.changed.push(key);
                    }
                }
            }
            Err(e) => plan.unreadable.push((id.to_string(), e.to_string())),
        }
    }
    Ok(plan)
}

fn sqs_records(payload: &Value) -> Option<&Vec<Value>> {
    let records = payload.get("Records")?.as_array()?;
    records
        .iter()
        .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        .then_some(records)
}

/// The policy keys one event names as created or deleted. Other keys are not this function's
/// (a misrouted event is ignored, not an error); an event of another kind is an error.
pub fn changed_keys(event: &Value) -> Result<Vec<String>> {
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let keys = if let Some(records) = event.get("Records").and_then(Value::as_array) {
        records
            .iter()
            .map(s3_notification_key)
            .collect::<Result<Vec<_>>>()?
    } else {
        vec![eventbridge_key(event)?]
    };
    Ok(keys
        .into_iter()
        .flatten()
        .filter(|k| is_policy_file(k))
        .collect())
}

fn eventbridge_key(event: &Value) -> Result<Option<String>> {
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    match detail_type {
        Some("Object Created" | "Object Deleted") => event
            .pointer("/detail/object/key")
            .and_then(Value::as_str)
            .map(|k| Some(k.to_string()))
            .ok_or_else(|| {
                Error::UnsupportedEvent(format!("{detail_type:?} event without detail.object.key"))
            }),
        other => Err(Error::UnsupportedEvent(format!(
            "EventBridge detail-type {other:?} is not an S3 object change"
        ))),
    }
}

fn s3_notification_key(record: &Value) -> Result<Option<String>> {
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !(name.starts_with("ObjectCreated") || name.starts_with("ObjectRemoved")) {
        return Ok(None);
    }
    let raw = record
        .pointer("/s3/object/key")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::UnsupportedEvent(format!("S3 record {name} without s3.object.key"))
        })?;
    crate::chain::event::decode_s3_notification_key(raw).map(Some)
}

/// A file under `policies/`, not the folder marker the console creates.
fn is_policy_file(key: &str) -> bool {
    key.strip_prefix(POLICIES)
        .is_some_and(|rest| !rest.is_empty() && !rest.ends_with('/'))
}

/// The job's description: what changed, within the API's 200 characters.
pub fn describe(changed: &[String]) -> String {
    let mut text = format!("sync-policies: {} changed", changed.len());
    for key in changed {
        if text.len() + key.len() + 2 > 200 {
            text.push_str(", ...");
            break;
        }
        text.push_str(if text.ends_with("changed") {
            ": "
        } else {
            ", "
        });
        text.push_str(key);
    }
    text
}

/// Re-index once for everything the invocation names. SQS gets every message back
/// (`batchItemFailures`) when the index is busy or the call failed, so the change is never
/// dropped: after the queue's last try the messages go to its dead-letter queue, which is
/// alarmed. A direct invocation fails instead. Without an index (the offline backend, whose
/// policy search reads the folder at each check) the change is read and acknowledged.
pub async fn sync_policies(payload: &Value, index: Option<&dyn PolicyIndex>) -> Result<Value> {
    let plan = plan(payload)?;
    for (id, why) in &plan.unreadable {
        tracing::error!(message_id = %id, error = %why, "unreadable policy change event");
    }
    let outcome = match index {
        _ if plan.changed.is_empty() => Ok(json!({ "sync": "nothing to do" })),
        None => Ok(json!({ "sync": "no index to update", "changed": plan.changed })),
        Some(index) => start(&plan, index).await,
    };
    respond(plan, outcome)
}

async fn start(plan: &SyncPlan, index: &dyn PolicyIndex) -> Result<Value> {
    match index.start_sync(&describe(&plan.changed)).await? {
        SyncStart::Started { job_id } => {
            tracing::info!(
                job_id,
                files = plan.changed.len(),
                "policy re-index started"
            );
            Ok(json!({ "sync": "started", "job_id": job_id, "changed": plan.changed }))
        }
        SyncStart::Busy { job_id } => {
            tracing::info!(running = ?job_id, "a re-index is running; this change waits for the next");
            Err(Error::Service {
                service: "knowledge base",
                kind: crate::error::ServiceErrorKind::Throttled,
                source: format!(
                    "ingestion job {} is still running",
                    job_id.as_deref().unwrap_or("(unnamed)")
                )
                .into(),
            })
        }
    }
}

fn respond(plan: SyncPlan, outcome: Result<Value>) -> Result<Value> {
    if !plan.from_sqs {
        return outcome;
    }
    let mut failed: Vec<String> = plan.unreadable.into_iter().map(|(id, _)| id).collect();
    if let Err(e) = &outcome {
        tracing::warn!(error = %e, messages = plan.messages.len(), "policy re-index not started; retried later");
        failed.extend(plan.messages);
    }
    let items: Vec<Value> = failed
        .into_iter()
        .map(|id| json!({ "itemIdentifier": id }))
        .collect();
    Ok(json!({ "batchItemFailures": items }))
}

#[cfg(test)]
mod tests;
