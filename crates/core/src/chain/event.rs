//! Decoding of the events that start a stage: a direct S3 notification, S3 notifications wrapped
//! in SQS messages, and EventBridge "Object Created" events. Own serde shapes keep AWS crates out
//! of the domain and let us decode keys exactly once, correctly.

use serde::Deserialize;
use serde_json::Value;

use crate::error::Error as EventError;
use crate::model::{ObjectRef, UserReport};

/// Whether sequencer `a` is later than `b`. Sequencers are hexadecimal strings of varying
/// length; the shorter one is right-padded with zeros before comparing.
pub fn sequencer_is_newer(a: &str, b: &str) -> bool {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{:0<width$}", s.to_ascii_uppercase());
    pad(a) > pad(b)
}

/// What an event asks a stage to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// An object was created (S3 notification or EventBridge "Object Created").
    Object(ObjectRef),
    /// EventBridge `Transcribe Job State Change` from `aws.transcribe`.
    TranscribeJob { job_name: String, status: String },
    /// The `moderation.user-report` custom event (README, "How it works").
    UserReport(UserReport),
}

/// One unit of work the runtime delivered; SQS messages are acknowledged one by one.
#[derive(Debug)]
pub struct Delivery {
    /// The SQS message id, `None` when invoked directly.
    pub message_id: Option<String>,
    /// SQS `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: Option<u32>,
    pub work: Result<Vec<Work>, EventError>,
    /// Records of this delivery that could not be decoded while the others could: the good
    /// ones still run, and the delivery then fails so that nothing is dropped silently.
    pub rejected: Vec<EventError>,
}

/// A decoded invocation.
#[derive(Debug)]
pub struct Invocation {
    pub from_sqs: bool,
    pub deliveries: Vec<Delivery>,
}

/// S3 notification keys are form-URL-encoded: `+` is a space and `%2B` a plus.
pub fn decode_s3_notification_key(raw: &str) -> Result<String, EventError> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|source| EventError::KeyNotUtf8 {
            key: raw.to_string(),
            source,
        })
}

#[derive(Deserialize)]
struct S3Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Value>,
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(rename = "eTag", default)]
    etag: Option<String>,
    #[serde(rename = "versionId", default)]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

#[derive(Deserialize)]
struct EventBridgeEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    detail: Value,
}

#[derive(Deserialize)]
struct TranscribeJobDetail {
    #[serde(rename = "TranscriptionJobName")]
    job_name: String,
    #[serde(rename = "TranscriptionJobStatus")]
    status: String,
}

pub const USER_REPORT_SOURCE: &str = "moderation.user-report";
pub const USER_REPORT_DETAIL_TYPE: &str = "User Report";
pub const TRANSCRIBE_DETAIL_TYPE: &str = "Transcribe Job State Change";

#[derive(Deserialize)]
struct EbDetail {
    bucket: S3Bucket,
    object: EbObject,
}

#[derive(Deserialize)]
struct EbObject {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(rename = "version-id", default)]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// Decode whatever the runtime handed a stage.
pub fn decode_invocation(payload: &Value) -> Result<Invocation, EventError> {
    if is_sqs(payload) {
        let records: Vec<Value> = payload
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut deliveries = Vec::with_capacity(records.len());
        for raw in records {
            // Without a message id a failure cannot be reported for this record alone, so the
            // whole batch fails and SQS redelivers it; any other defect fails just the record.
            let message_id = raw
                .get("messageId")
                .and_then(Value::as_str)
                .ok_or_else(|| EventError::UnsupportedEvent("SQS record without messageId".into()))?
                .to_string();
            let receive_count = raw
                .get("attributes")
                .and_then(|a| a.get("ApproximateReceiveCount"))
                .and_then(Value::as_str)
                .and_then(|n| n.parse().ok());
            let decoded = match raw.get("body").and_then(Value::as_str) {
                None => Err(EventError::UnsupportedEvent(format!(
                    "SQS message {message_id} has no string body"
                ))),
                Some(body) => serde_json::from_str::<Value>(body)
                    .map_err(EventError::EventShape)
                    .and_then(|body| decode_work_per_record(&body)),
            };
            let (work, rejected) = match decoded {
                Ok((work, rejected)) => (Ok(work), rejected),
                Err(e) => (Err(e), Vec::new()),
            };
            deliveries.push(Delivery {
                message_id: Some(message_id),
                receive_count,
                work,
                rejected,
            });
        }
        return Ok(Invocation {
            from_sqs: true,
            deliveries,
        });
    }
    let (work, rejected) = decode_work_per_record(payload)?;
    Ok(Invocation {
        from_sqs: false,
        deliveries: vec![Delivery {
            message_id: None,
            receive_count: None,
            work: Ok(work),
            rejected,
        }],
    })
}

fn is_sqs(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            records
                .iter()
                .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        })
}

/// Objects named by one S3 notification or EventBridge event (not SQS-wrapped); any other
/// kind of event is an error.
pub fn decode_objects(payload: &Value) -> Result<Vec<ObjectRef>, EventError> {
    decode_work(payload)?
        .into_iter()
        .map(|w| match w {
            Work::Object(o) => Ok(o),
            other => Err(EventError::UnsupportedEvent(format!(
                "{} is not an object event",
                other.describe()
            ))),
        })
        .collect()
}

impl Work {
    /// A short description for logs and errors (no user content).
    pub fn describe(&self) -> String {
        match self {
            Work::Object(o) => o.uri(),
            Work::TranscribeJob { job_name, status } => {
                format!("Transcribe job {job_name} ({status})")
            }
            Work::UserReport(r) => format!(
                "user report {} on conversation {}",
                r.report_id, r.conversation_id
            ),
        }
    }
}

/// The work named by one S3 notification or EventBridge event (not SQS-wrapped); any record
/// that cannot be decoded fails the whole event.
pub fn decode_work(payload: &Value) -> Result<Vec<Work>, EventError> {
    let (work, rejected) = decode_work_per_record(payload)?;
    match rejected.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(work),
    }
}

fn decode_s3_record(raw: Value) -> Result<Option<Work>, EventError> {
    let r: S3Record = serde_json::from_value(raw).map_err(EventError::EventShape)?;
    // Deletions and other non-create events carry no content to moderate.
    if !r.event_name.is_empty() && !r.event_name.starts_with("ObjectCreated") {
        return Ok(None);
    }
    Ok(Some(Work::Object(ObjectRef {
        bucket: r.s3.bucket.name,
        key: decode_s3_notification_key(&r.s3.object.key)?,
        size: r.s3.object.size,
        etag: r.s3.object.etag,
        version_id: r.s3.object.version_id,
        sequencer: r.s3.object.sequencer,
    })))
}

/// Like [`decode_work`], but an S3 notification's records are decoded one by one: the work of
/// the good records, and the errors of the bad ones.
pub fn decode_work_per_record(payload: &Value) -> Result<(Vec<Work>, Vec<EventError>), EventError> {
    // S3 sends a test event when notifications are configured; it names no object.
    if payload.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok((Vec::new(), Vec::new()));
    }
    if let Some(records) = payload.get("Records") {
        let n: S3Notification =
            serde_json::from_value(json_records(records)?).map_err(EventError::EventShape)?;
        let mut out = Vec::with_capacity(n.records.len());
        let mut rejected = Vec::new();
        for raw in n.records {
            match decode_s3_record(raw) {
                Ok(Some(work)) => out.push(work),
                Ok(None) => {}
                Err(e) => rejected.push(e),
            }
        }
        return Ok((out, rejected));
    }
    decode_event(payload).map(|w| (w, Vec::new()))
}

/// `{"Records": [...]}` with the records left as JSON, so that each is decoded alone.
fn json_records(records: &Value) -> Result<Value, EventError> {
    match records {
        Value::Array(_) => Ok(serde_json::json!({ "Records": records })),
        other => Err(EventError::UnsupportedEvent(format!(
            "\"Records\" is not a list but {}",
            match other {
                Value::Object(_) => "an object",
                Value::String(_) => "a string",
                _ => "a scalar",
            }
        ))),
    }
}

fn decode_event(payload: &Value) -> Result<Vec<Work>, EventError> {
    if payload.get("detail-type").is_some() {
        let e: EventBridgeEvent =
            serde_json::from_value(payload.clone()).map_err(EventError::EventShape)?;
        return match (e.source.as_str(), e.detail_type.as_str()) {
            (_, "Object Created") => {
                let d: EbDetail =
                    serde_json::from_value(e.detail).map_err(EventError::EventShape)?;
                // EventBridge keys are not URL-encoded: take them as they are.
                Ok(vec![Work::Object(ObjectRef {
                    bucket: d.bucket.name,
                    key: d.object.key,
                    size: d.object.size,
                    etag: d.object.etag,
                    version_id: d.object.version_id,
                    sequencer: d.object.sequencer,
                })])
            }
            ("aws.transcribe", TRANSCRIBE_DETAIL_TYPE) => {
                let d: TranscribeJobDetail =
                    serde_json::from_value(e.detail).map_err(EventError::EventShape)?;
                Ok(vec![Work::TranscribeJob {
                    job_name: d.job_name,
                    status: d.status,
                }])
            }
            (USER_REPORT_SOURCE, USER_REPORT_DETAIL_TYPE) => {
                let r: UserReport = serde_json::from_value(e.detail).map_err(|source| {
                    EventError::UnsupportedEvent(format!(
                        "user report detail is malformed: {source}"
                    ))
                })?;
                Ok(vec![Work::UserReport(r)])
            }
            (source, dt) => Err(EventError::UnsupportedEvent(format!(
                "EventBridge detail-type {dt:?} from source {source:?}"
            ))),
        };
    }
    Err(EventError::UnsupportedEvent(
        "neither an S3 notification, an SQS message nor an EventBridge event".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_event(key: &str) -> Value {
        json!({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"b"},"object":{"key":key,"size":12,"eTag":"e1"}}}]})
    }

    #[test]
    fn s3_keys_are_form_url_decoded() {
        let cases = [
            (
                "incoming/text/match+chat.csv",
                "incoming/text/match chat.csv",
            ),
            ("incoming/text/a%2Bb.csv", "incoming/text/a+b.csv"),
            (
                "incoming/text/caf%C3%A9+%E2%9C%93.txt",
                "incoming/text/café ✓.txt",
            ),
            ("incoming/text/100%25.txt", "incoming/text/100%.txt"),
        ];
        for (raw, want) in cases {
            let objs = decode_objects(&s3_event(raw)).expect("decodes");
            assert_eq!(objs[0].key, want, "raw {raw}");
            assert_eq!(objs[0].etag.as_deref(), Some("e1"));
        }
    }

    #[test]
    fn invalid_utf8_escape_is_an_error_naming_the_key() {
        let err = decode_objects(&s3_event("incoming/text/%FF.txt")).expect_err("bad utf-8");
        assert!(err.to_string().contains("%FF"), "{err}");
    }

    #[test]
    fn eventbridge_keys_are_taken_as_is() {
        let ev = json!({"version":"0","detail-type":"Object Created","source":"aws.s3",
            "detail":{"bucket":{"name":"b"},"object":{"key":"incoming/text/a+b%2B.csv","etag":"x","version-id":"v9"}}});
        let objs = decode_objects(&ev).expect("decodes");
        assert_eq!(objs[0].key, "incoming/text/a+b%2B.csv");
        assert_eq!(objs[0].version().as_deref(), Some("v9"));
    }

    #[test]
    fn sqs_records_decode_independently() {
        let good = s3_event("incoming/text/x.txt").to_string();
        let ev = json!({"Records":[
            {"messageId":"m1","eventSource":"aws:sqs","body":good,
             "attributes":{"ApproximateReceiveCount":"2"}},
            {"messageId":"m2","eventSource":"aws:sqs","body":"not json"}]});
        let inv = decode_invocation(&ev).expect("decodes");
        assert!(inv.from_sqs);
        assert_eq!(inv.deliveries.len(), 2);
        assert!(inv.deliveries[0].work.is_ok());
        assert_eq!(inv.deliveries[0].receive_count, Some(2));
        assert!(inv.deliveries[1].work.is_err());
        assert_eq!(inv.deliveries[1].message_id.as_deref(), Some("m2"));
        // A record without a body fails alone; one without an id fails the batch.
        let ev = json!({"Records":[
            {"messageId":"m1","eventSource":"aws:sqs"},
            {"messageId":"m2","eventSource":"aws:sqs","body":s3_event("incoming/text/y.txt").to_string()}]});
        let inv = decode_invocation(&ev).expect("decodes");
        assert!(inv.deliveries[0].work.is_err() && inv.deliveries[1].work.is_ok());
        let ev = json!({"Records":[{"eventSource":"aws:sqs","body":"{}"}]});
        assert!(decode_invocation(&ev).is_err());
    }

    #[test]
    fn test_events_and_deletions_name_nothing() {
        let t = json!({"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"});
        assert!(decode_objects(&t).expect("ok").is_empty());
        let del = json!({"Records":[{"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete",
            "s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]});
        assert!(decode_objects(&del).expect("ok").is_empty());
    }

    #[test]
    fn sequencers_order_events_of_one_key() {
        assert!(sequencer_is_newer(
            "0055AED6DCD90281E6",
            "0055AED6DCD90281E5"
        ));
        assert!(!sequencer_is_newer(
            "0055AED6DCD90281E5",
            "0055AED6DCD90281E6"
        ));
        // Different lengths compare after right-padding with zeros.
        assert!(sequencer_is_newer("0055AED6DCD90281E6", "0055AED6DCD9028"));
        assert!(!sequencer_is_newer(
            "0055AED6DCD90281E6",
            "0055AED6DCD90281E6"
        ));
        let objs = decode_objects(
            &json!({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"b"},"object":{"key":"k","sequencer":"00AB"}}}]}),
        )
        .expect("decodes");
        assert_eq!(objs[0].sequencer.as_deref(), Some("00AB"));
    }

    #[test]
    fn transcribe_and_user_report_events_decode() {
        let job = json!({"version":"0","detail-type":"Transcribe Job State Change",
            "source":"aws.transcribe","detail":{"TranscriptionJobName":"moderation-x-0011aabb",
            "TranscriptionJobStatus":"FAILED"}});
        assert_eq!(
            decode_work(&job).expect("decodes"),
            vec![Work::TranscribeJob {
                job_name: "moderation-x-0011aabb".into(),
                status: "FAILED".into()
            }]
        );
        let report = json!({"source":"moderation.user-report","detail-type":"User Report",
            "detail":{"report_id":"r-1","reporter_id":"u-7","reported_user_id":"u-9",
            "conversation_id":"match-42","reason":"harassment","reported_at":"2026-11-21T10:00:00Z"}});
        match decode_work(&report).expect("decodes").as_slice() {
            [Work::UserReport(r)] => assert_eq!(r.conversation_id, "match-42"),
            other => panic!("unexpected {other:?}"),
        }
        // A report missing a field names it.
        let bad = json!({"source":"moderation.user-report","detail-type":"User Report",
            "detail":{"report_id":"r-1"}});
        let err = decode_work(&bad).expect_err("malformed").to_string();
        assert!(err.contains("reporter_id"), "{err}");
        // Object-only stages reject the other kinds clearly.
        let err = decode_objects(&job).expect_err("not an object").to_string();
        assert!(err.contains("moderation-x-0011aabb"), "{err}");
    }

    #[test]
    fn unknown_payloads_are_rejected_clearly() {
        let err = decode_objects(&json!({"hello":1})).expect_err("unknown");
        assert!(err.to_string().contains("neither"), "{err}");
    }
}
