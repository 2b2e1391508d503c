//! What every stage shares: writing documents, dead letters, and acknowledging deliveries
//! (SQS partial batch failures) in one place so handlers stay thin.

use std::future::Future;

use serde::Serialize;
use serde_json::{json, Value};
use tracing::{error, Instrument};

use crate::chain::event::{decode_invocation, Delivery, Work};
use crate::chain::keys::{self, Stage};
use crate::chain::spool::SpooledItems;
use crate::error::{Error, Result};
use crate::model::ObjectRef;
use crate::model::{DeadLetter, StageDocument, DEAD_LETTER_SCHEMA};
use crate::ports::{ObjectStore, WriteObjects};

/// What a stage did with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Wrote these keys (which may trigger the next stage).
    Wrote(Vec<String>),
    /// Not for this stage (e.g. a key under another prefix); nothing written.
    Ignored(String),
    /// Could not be processed; a dead letter was written at this key.
    DeadLettered(String),
}

impl Outcome {
    pub fn written(&self) -> &[String] {
        match self {
            Outcome::Wrote(k) => k,
            Outcome::DeadLettered(_) | Outcome::Ignored(_) => &[],
        }
    }
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Time kept back from the invocation's deadline: new work stops this long before it (or a
/// fifth of the time left, on short timeouts), and calls still waiting are abandoned a third
/// of it before, so that writing what was done has the rest.
pub const TIME_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// An invocation's time, as a stage that streams its work spends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimit {
    /// When the handler was called.
    pub started: std::time::Instant,
    /// Start no new piece of work (a chunk of messages) after this.
    pub new_work: std::time::Instant,
    /// Abandon service calls still waiting after this.
    pub calls: std::time::Instant,
}

impl TimeLimit {
    /// The limit of an invocation that ends at `deadline`: `None` when that has already passed
    /// (a runtime that sends no deadline, or a clock that disagrees), so work is never cut
    /// before it starts.
    pub fn before(deadline: std::time::SystemTime) -> Option<Self> {
        let left = deadline.duration_since(std::time::SystemTime::now()).ok()?;
        if left.is_zero() {
            return None;
        }
        let now = std::time::Instant::now();
        let margin = TIME_MARGIN.min(left / 5);
        Some(TimeLimit {
            started: now,
            new_work: now + left - margin,
            calls: now + left - margin / 3,
        })
    }

    /// The same limits for work that is to be reported however late it starts (the chat logs
    /// of a user report are never redelivered one by one): it counts as fresh from now.
    pub fn restarted(self) -> Self {
        TimeLimit {
            started: std::time::Instant::now(),
            ..self
        }
    }

    pub fn past_new_work(&self) -> bool {
        std::time::Instant::now() >= self.new_work
    }

    /// Whether work starting now has nearly the whole invocation (it starts in the first tenth):
    /// work cut off that had it is reported as far as it got; work that started late (after
    /// another record of the same delivery) is better left for a redelivery.
    pub fn fresh(&self) -> bool {
        std::time::Instant::now() < self.started + (self.new_work - self.started) / 10
    }
}

pub async fn put_json<T: Serialize + Sync>(
    store: &dyn WriteObjects,
    bucket: &str,
    key: &str,
    doc: &T,
) -> Result<()> {
    let body = serde_json::to_vec_pretty(doc).map_err(|source| Error::Document {
        key: key.to_string(),
        source,
    })?;
    store.put(bucket, key, body, "application/json").await
}

/// Write a document of any size: `head` (the document with [`ItemsSlot`] for its items) and
/// the spooled items are written pretty (the bytes [`put_json`] would write) to a temp file off
/// the async workers, then uploaded from that file.
pub async fn put_spooled<H: Serialize + Send + 'static>(
    store: &dyn WriteObjects,
    bucket: &str,
    key: &str,
    head: H,
    items: &SpooledItems,
    content_type: &str,
) -> Result<()> {
    let items = items.clone();
    let file = tokio::task::spawn_blocking(move || {
        write_temp(|w| crate::chain::spool::write_spliced(&head, &items, w))
    })
    .await
    .map_err(|e| Error::Input(format!("document writer task failed: {e}")))??;
    store
        .put_file(bucket, key, file.as_ref(), content_type)
        .await
}

/// A temp file holding what `write` wrote, flushed and ready to upload.
pub fn write_temp(
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<()>,
) -> Result<tempfile::TempPath> {
    use std::io::Write as _;
    let io = |source| Error::Io {
        path: "temp file of a document".into(),
        source,
    };
    let (file, path) = tempfile::Builder::new()
        .prefix("moderation-doc-")
        .tempfile()
        .map_err(io)?
        .into_parts();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    write(&mut out)?;
    out.flush().map_err(io)?;
    Ok(path)
}

/// Read a document of any size from the store, parsed as it streams off disk (S3 bodies are
/// spooled to a temp file by the adapter). `None` when it does not exist.
pub async fn read_document<T: serde::de::DeserializeOwned + Send + 'static>(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
) -> Result<Option<T>> {
    let opened = match store.open(&ObjectRef::new(bucket, key)).await {
        Ok(o) => o,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let owned_key = key.to_string();
    tokio::task::spawn_blocking(move || {
        let reader = std::io::BufReader::with_capacity(64 * 1024, opened.reader);
        serde_json::from_reader(reader)
            .map(Some)
            .map_err(|source| document_error(owned_key, source))
    })
    .await
    .map_err(|e| Error::Input(format!("document reader task failed: {e}")))?
}

/// What a failed parse of a stored document means: a read, or a spool write, that failed is
/// not a broken document, and retrying may help (a full /tmp frees up when the instance is
/// replaced); anything else is the document's fault.
fn document_error(key: String, source: serde_json::Error) -> Error {
    let spool = source
        .to_string()
        .starts_with(crate::chain::spool::SPOOL_FAILED);
    match source.classify() {
        serde_json::error::Category::Io => Error::Io {
            path: key,
            source: source.into(),
        },
        _ if spool => Error::Io {
            path: key,
            source: std::io::Error::other(source),
        },
        _ => Error::Document { key, source },
    }
}

pub async fn get_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
) -> Result<Option<T>> {
    let Some(bytes) = store.get_bytes(bucket, key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| Error::Document {
            key: key.to_string(),
            source,
        })
}

/// Read the stage document an event names (`<prefix><id>.json`). `Err(outcome)` when there is
/// nothing to process: the key is not a document of this prefix (ignored), or the document is
/// gone or unreadable (dead-lettered, since redelivery cannot fix it).
pub async fn read_stage_document<I>(
    store: &dyn ObjectStore,
    stage: Stage,
    obj: &ObjectRef,
    prefix: &str,
) -> Result<std::result::Result<(String, StageDocument<I>), Outcome>>
where
    StageDocument<I>: serde::de::DeserializeOwned + Send + 'static,
{
    let Some(id) = keys::id_from_document_key(&obj.key, prefix) else {
        return Ok(Err(Outcome::Ignored(format!(
            "{} is not a {prefix} document",
            obj.key
        ))));
    };
    let reason = match read_document(store, &obj.bucket, &obj.key).await {
        Ok(Some(doc)) => return Ok(Ok((id, doc))),
        Ok(None) => format!("{} no longer exists", obj.uri()),
        Err(e @ Error::Document { .. }) => e.to_string(),
        Err(e) => return Err(e),
    };
    dead_letter(store, stage, obj, &id, &reason).await.map(Err)
}

/// Record work that cannot succeed under `failed/<id>.json`, so it is never silently lost.
pub async fn dead_letter(
    store: &dyn ObjectStore,
    stage: Stage,
    obj: &ObjectRef,
    id: &str,
    reason: &str,
) -> Result<Outcome> {
    write_dead_letter(store, stage, obj, id, reason, None).await
}

async fn write_dead_letter(
    store: &dyn ObjectStore,
    stage: Stage,
    obj: &ObjectRef,
    id: &str,
    reason: &str,
    attempts: Option<u32>,
) -> Result<Outcome> {
    crate::chain::telemetry::dead_lettered(stage.name(), &obj.key, reason);
    let key = keys::failed_key(id);
    let letter = DeadLetter {
        schema: DEAD_LETTER_SCHEMA.into(),
        id: id.to_string(),
        stage: stage.name().into(),
        reason: reason.to_string(),
        input_key: obj.key.clone(),
        input_uri: obj.uri(),
        failed_at: now_rfc3339(),
        attempts,
    };
    put_json(store, &obj.bucket, &key, &letter).await?;
    Ok(Outcome::DeadLettered(key))
}

/// How a stage treats a failed object.
#[derive(Debug, Clone, Copy)]
pub struct FailurePolicy {
    /// The queue's `maxReceiveCount`: the delivery with this receive count is the last one.
    pub max_receive_count: u32,
}

/// Run `process` for every object in a Lambda payload; see [`handle_work`]. Events that name
/// no object (Transcribe job changes, user reports) are not for these stages.
pub async fn handle_payload<F, Fut>(
    stage: Stage,
    payload: &Value,
    store: &dyn ObjectStore,
    policy: FailurePolicy,
    process: F,
) -> Result<Value>
where
    F: Fn(ObjectRef) -> Fut,
    Fut: Future<Output = Result<Outcome>>,
{
    let process = &process;
    handle_work(
        stage,
        payload,
        store,
        policy,
        None,
        move |work| async move {
            match work {
                Work::Object(obj) => process(obj).await,
                other => Err(Error::UnsupportedEvent(format!(
                    "{} is not handled by {}",
                    other.describe(),
                    stage.name()
                ))),
            }
        },
    )
    .await
}

/// Where a failure of `work` is recorded: the object and id for `failed/<id>.json`. Work that
/// names no object is recorded in `home_bucket`, the bucket the stage serves.
fn dead_letter_subject(work: &Work, home_bucket: Option<&str>) -> Option<(ObjectRef, String)> {
    match work {
        Work::Object(obj) => {
            // A transcript's failure belongs to the recording's id, like its report.
            let id = keys::id_from_document_key(&obj.key, keys::TRANSCRIPTS)
                .and_then(|job| keys::id_from_job_name(&job))
                .unwrap_or_else(|| keys::source_id(&obj.bucket, &obj.key));
            Some((obj.clone(), id))
        }
        Work::TranscribeJob { job_name, .. } => {
            let bucket = home_bucket?;
            let id = keys::id_from_job_name(job_name).unwrap_or_else(|| job_name.clone());
            Some((ObjectRef::new(bucket, keys::job_record_key(job_name)), id))
        }
        Work::UserReport(r) => {
            let bucket = home_bucket?;
            let folder = keys::conversation_folder(&r.conversation_id);
            let id = keys::user_report_id(bucket, folder.trim_end_matches('/'), &r.report_id);
            Some((ObjectRef::new(bucket, folder), id))
        }
    }
}

/// Run `process` for every piece of work in a Lambda payload, inside a span naming the stage
/// and the source. A failure that retrying cannot fix, or the last delivery of one that it
/// could, is recorded under `failed/<id>.json` (stage, reason, input key). SQS deliveries fail
/// one by one (`batchItemFailures`): retryable failures are reported so SQS redelivers (and,
/// after the last try, moves them to the dead-letter queue as well); permanent ones are
/// acknowledged once their dead letter is written. A direct invocation fails as a whole on a
/// retryable failure, so Lambda's own retry and on-failure destination apply.
pub async fn handle_work<F, Fut>(
    stage: Stage,
    payload: &Value,
    store: &dyn ObjectStore,
    policy: FailurePolicy,
    home_bucket: Option<&str>,
    process: F,
) -> Result<Value>
where
    F: Fn(Work) -> Fut,
    Fut: Future<Output = Result<Outcome>>,
{
    let invocation = decode_invocation(payload)?;
    let handler = Handler {
        stage,
        store,
        policy,
        home_bucket,
    };
    let mut tally = Tally::default();
    for delivery in invocation.deliveries {
        handler.run_delivery(delivery, &process, &mut tally).await;
    }
    tally.into_response(invocation.from_sqs)
}

/// What [`handle_work`] runs every delivery with.
struct Handler<'a> {
    stage: Stage,
    store: &'a dyn ObjectStore,
    policy: FailurePolicy,
    home_bucket: Option<&'a str>,
}

/// What the deliveries of one invocation came to.
#[derive(Debug, Default)]
struct Tally {
    /// SQS message ids to report as `batchItemFailures`, so SQS redelivers them.
    failures: Vec<String>,
    /// The first failure, which a direct invocation fails with.
    first_error: Option<Error>,
    /// Keys written, dead letters included.
    written: Vec<String>,
}

impl Tally {
    fn failed(&mut self, e: Error) {
        self.first_error.get_or_insert(e);
    }

    /// What a stage's outcome leaves to report: the keys it wrote.
    fn record(&mut self, outcome: Outcome, span: &tracing::Span) {
        match outcome {
            Outcome::Wrote(keys) => self.written.extend(keys),
            Outcome::DeadLettered(key) => self.written.push(key),
            Outcome::Ignored(why) => span.in_scope(|| tracing::info!(why, "ignored")),
        }
    }

    /// SQS gets the deliveries to redeliver; a direct invocation fails with the first error,
    /// or lists what was written.
    fn into_response(self, from_sqs: bool) -> Result<Value> {
        if from_sqs {
            let items: Vec<Value> = self
                .failures
                .into_iter()
                .map(|id| json!({ "itemIdentifier": id }))
                .collect();
            return Ok(json!({ "batchItemFailures": items }));
        }
        match self.first_error {
            Some(e) => Err(e),
            None => Ok(json!({ "written": self.written })),
        }
    }
}

/// The key of an object the routing table gives to another stage, if `work` is one: the
/// table decides, so a misconfigured trigger cannot run the wrong stage. Work that names no
/// object is routed by its event.
fn misrouted(stage: Stage, work: &Work) -> Option<&str> {
    match work {
        Work::Object(obj) if keys::route(&obj.key) != Some(stage) => Some(&obj.key),
        _ => None,
    }
}

/// The reason a dead letter gives: a retryable failure that reached it failed on every try.
fn failure_reason(e: &Error, retryable: bool, receive_count: Option<u32>) -> String {
    match receive_count {
        Some(n) if retryable => format!("failed on all {n} deliveries: {e}"),
        _ => e.to_string(),
    }
}

impl Handler<'_> {
    /// Run every piece of work of one delivery; the delivery fails (is redelivered) when one of
    /// them must be retried or a record of it could not be decoded.
    async fn run_delivery<F, Fut>(&self, delivery: Delivery, process: &F, tally: &mut Tally)
    where
        F: Fn(Work) -> Fut,
        Fut: Future<Output = Result<Outcome>>,
    {
        let stage = self.stage.name();
        let works = match delivery.work {
            Ok(w) => w,
            Err(e) => {
                error!(stage, error = %e, "undecodable delivery");
                // No bucket or key to record it under: leave it to the queue's DLQ.
                tally.failures.extend(delivery.message_id);
                tally.failed(e);
                return;
            }
        };
        let last_try = delivery
            .receive_count
            .is_some_and(|n| n >= self.policy.max_receive_count);
        let mut delivery_failed = false;
        for work in works {
            if let Some(key) = misrouted(self.stage, &work) {
                tracing::info!(stage, key = %key, "not routed to this stage; ignored");
                continue;
            }
            let run = self.run_work(work, delivery.receive_count, last_try, process, tally);
            if let Err(e) = run.await {
                delivery_failed = true;
                tally.failed(e);
            }
        }
        for e in delivery.rejected {
            // The good records of this delivery ran; the bad one must not vanish with it.
            error!(stage, error = %e, "undecodable record in the delivery");
            delivery_failed = true;
            tally.failed(e);
        }
        if delivery_failed {
            tally.failures.extend(delivery.message_id);
        }
    }

    /// Run one piece of work in a span naming the stage and the source. A failure that
    /// retrying cannot fix, or one on the last try, is recorded as a dead letter. `Err` when
    /// the delivery must fail: the failure is to be retried, or its dead letter could not be
    /// written.
    async fn run_work<F, Fut>(
        &self,
        work: Work,
        receive_count: Option<u32>,
        last_try: bool,
        process: &F,
        tally: &mut Tally,
    ) -> std::result::Result<(), Error>
    where
        F: Fn(Work) -> Fut,
        Fut: Future<Output = Result<Outcome>>,
    {
        let span =
            tracing::info_span!("object", stage = self.stage.name(), source_uri = %work.describe());
        let subject = dead_letter_subject(&work, self.home_bucket);
        let e = match process(work).instrument(span.clone()).await {
            Ok(outcome) => {
                tally.record(outcome, &span);
                return Ok(());
            }
            Err(e) => e,
        };
        let retryable = e.is_retryable();
        span.in_scope(|| error!(error = %e, retryable, last_try, "stage failed"));
        if retryable && !last_try {
            return Err(e);
        }
        let reason = failure_reason(&e, retryable, receive_count);
        let dead = self
            .record_failure(subject.as_ref(), &reason, receive_count)
            .instrument(span.clone())
            .await;
        match dead {
            Ok(Outcome::DeadLettered(k)) => tally.written.push(k),
            Ok(_) => {}
            Err(dead_err) => {
                // Not even the dead letter could be written: the queue must keep it.
                span.in_scope(|| error!(error = %dead_err, "dead letter not written"));
                return Err(e);
            }
        }
        if retryable {
            Err(e)
        } else {
            Ok(())
        }
    }

    /// The dead letter of a failure, under the subject [`dead_letter_subject`] found.
    async fn record_failure(
        &self,
        subject: Option<&(ObjectRef, String)>,
        reason: &str,
        receive_count: Option<u32>,
    ) -> Result<Outcome> {
        match subject {
            Some((obj, id)) => {
                write_dead_letter(self.store, self.stage, obj, id, reason, receive_count).await
            }
            None => Err(Error::Config(
                "no bucket to record the failure in (set MODERATION_BUCKET)".into(),
            )),
        }
    }
}

/// Drive the chain in-process: run the stage each written key routes to until nothing new is
/// written. The offline chain and tests use this with the same routing table as the deployment.
pub async fn run_chain<F, Fut>(bucket: &str, start: Vec<String>, dispatch: F) -> Result<Vec<String>>
where
    F: Fn(Stage, ObjectRef) -> Fut,
    Fut: Future<Output = Result<Outcome>>,
{
    let mut queue: std::collections::VecDeque<String> = start.into();
    let mut written = Vec::new();
    while let Some(key) = queue.pop_front() {
        let Some(stage) = keys::route(&key) else {
            continue;
        };
        let outcome = dispatch(stage, ObjectRef::new(bucket, key.clone())).await?;
        if let Outcome::DeadLettered(k) = &outcome {
            written.push(k.clone());
        }
        for k in outcome.written() {
            written.push(k.clone());
            queue.push_back(k.clone());
        }
    }
    Ok(written)
}

/// Read a configuration file (forbidden terms, prompt template) from `s3://bucket/key`
/// through the store, or from a local path.
pub async fn read_config_uri(store: &dyn ObjectStore, uri: &str) -> Result<String> {
    let bytes = if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| Error::Config(format!("{uri} is not an s3://bucket/key URI")))?;
        store
            .get_bytes(bucket, key)
            .await?
            .ok_or_else(|| Error::NotFound {
                uri: uri.to_string(),
            })?
    } else {
        std::fs::read(uri).map_err(|source| Error::Io {
            path: uri.to_string(),
            source,
        })?
    };
    String::from_utf8(bytes).map_err(|e| Error::Config(format!("{uri}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_stops_a_margin_before_the_deadline() {
        use std::time::{Duration, SystemTime};
        let limit =
            TimeLimit::before(SystemTime::now() + Duration::from_secs(300)).expect("a limit");
        let new_work = limit.new_work.duration_since(limit.started);
        let calls = limit.calls.duration_since(limit.started);
        // 300 s less the 30 s margin (give or take the test's own time); calls end 10 s before.
        assert!(
            new_work > Duration::from_secs(269) && new_work <= Duration::from_secs(270),
            "{new_work:?}"
        );
        assert!(
            calls > Duration::from_secs(289) && calls <= Duration::from_secs(290),
            "{calls:?}"
        );
        assert!(limit.fresh() && !limit.past_new_work());
        // A short timeout keeps a fifth back, not 30 s it does not have.
        let limit =
            TimeLimit::before(SystemTime::now() + Duration::from_secs(10)).expect("a limit");
        let new_work = limit.new_work.duration_since(limit.started);
        assert!(
            new_work > Duration::from_secs(7) && new_work <= Duration::from_secs(8),
            "{new_work:?}"
        );
        // A deadline in the past (none sent, or a skewed clock) does not stop work at once.
        assert_eq!(TimeLimit::before(SystemTime::UNIX_EPOCH), None);
        assert_eq!(
            TimeLimit::before(SystemTime::now() - Duration::from_secs(1)),
            None
        );
        // Work that starts after the first tenth of the time is not fresh.
        let now = std::time::Instant::now();
        let late = TimeLimit {
            started: now - Duration::from_secs(30),
            new_work: now + Duration::from_secs(240),
            calls: now + Duration::from_secs(260),
        };
        assert!(!late.fresh() && !late.past_new_work());
    }

    #[test]
    fn a_spool_that_cannot_be_written_is_retried_and_a_broken_document_is_not() {
        let full: serde_json::Error = serde::de::Error::custom(format!(
            "{}temp file of items: No space left on device",
            crate::chain::spool::SPOOL_FAILED
        ));
        let e = document_error("screened/x.json".into(), full);
        assert!(matches!(e, Error::Io { .. }) && e.is_retryable(), "{e}");
        let broken =
            serde_json::from_str::<StageDocument>("{\"schema\": 1}").expect_err("not a document");
        let e = document_error("screened/x.json".into(), broken);
        assert!(
            matches!(e, Error::Document { .. }) && !e.is_retryable(),
            "{e}"
        );
    }

    #[test]
    fn only_objects_routed_to_the_stage_are_its_work() {
        let text = Work::Object(ObjectRef::new("b", "incoming/text/chat.txt"));
        assert_eq!(misrouted(Stage::ScreenText, &text), None);
        assert_eq!(
            misrouted(Stage::WriteReport, &text),
            Some("incoming/text/chat.txt")
        );
        let job = Work::TranscribeJob {
            job_name: "moderation-x".into(),
            status: "FAILED".into(),
        };
        assert_eq!(misrouted(Stage::TranscribeAudio, &job), None);
    }

    #[test]
    fn a_dead_letter_says_when_every_try_failed() {
        let throttled = Error::service(
            "comprehend",
            crate::error::ServiceErrorKind::Throttled,
            "slow down",
        );
        let reason = failure_reason(&throttled, true, Some(5));
        assert!(
            reason.starts_with("failed on all 5 deliveries: "),
            "{reason}"
        );
        let bad = Error::Input("not a chat log".into());
        assert_eq!(failure_reason(&bad, false, Some(5)), bad.to_string());
        assert_eq!(
            failure_reason(&throttled, true, None),
            throttled.to_string()
        );
    }

    #[test]
    fn sqs_gets_the_failed_deliveries_and_a_direct_call_the_first_error() {
        let tally = || Tally {
            failures: vec!["m-2".into()],
            first_error: Some(Error::Input("first".into())),
            written: vec!["screened/a.json".into()],
        };
        assert_eq!(
            tally().into_response(true).expect("sqs answer"),
            json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
        );
        let err = tally().into_response(false).expect_err("direct call fails");
        assert!(err.to_string().contains("first"), "{err}");
        let clean = Tally {
            written: vec!["screened/a.json".into()],
            ..Default::default()
        };
        assert_eq!(
            clean.into_response(false).expect("written"),
            json!({"written": ["screened/a.json"]})
        );
    }
}
