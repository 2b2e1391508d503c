//! transcribe-audio: start a transcription job with toxicity detection for each recording (an
//! upload under `incoming/audio/`, or the recordings a user report names), and turn what comes
//! back (the transcript under `transcripts/`, or a FAILED job) into `screened/<id>.json`.
//!
//! What a job is for (source, version, trigger and user report) is kept in a job record,
//! `jobs/<job>.json`, written before the job starts: Transcribe's output names only the job.

use serde::{Deserialize, Serialize};
use tracing::info;

use crate::chain::config::Thresholds;
use crate::chain::delivery::{get_json, now_rfc3339, put_json, Outcome};
use crate::chain::keys;
use crate::error::{Result, ServiceErrorKind};
use crate::model::ObjectRef;
use crate::model::{
    ErrorEntry, Source, SourceKind, StageDocument, Status, Trigger, SCREENED_SCHEMA,
};
use crate::ports::Identified;
use crate::ports::{
    JobStart, LanguageIdentifier, ObjectStore, SpeechLanguages, ToxicityDetector,
    TranscriptionJobs, TranscriptionRequest, Translator,
};
use crate::stages::screen_text::{
    superseded, write_screened, ScreenDeps, DEFAULT_MAX_TRANSLATED_CHARS,
};
use crate::text::rules::RuleFilter;

mod ingest;
mod user_report;

pub use ingest::ingest_transcript;
pub use user_report::user_report;

const STAGE: &str = "transcribe-audio";
pub const JOB_RECORD_SCHEMA: &str = "moderation.audio-job/v1";
/// Amazon Transcribe's batch limit: media files up to 2 GB.
pub const DEFAULT_MAX_AUDIO_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// `jobs/<job>.json`: what a transcription job is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub schema: String,
    pub job_name: String,
    /// The id the screened document and the report get.
    pub id: String,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sequencer: Option<String>,
    pub trigger: Trigger,
    pub started_at: String,
}

#[derive(Debug, Clone)]
pub struct AudioConfig {
    pub thresholds: Thresholds,
    /// Larger recordings are reported as errors instead of being sent to Transcribe.
    pub max_audio_bytes: u64,
    /// `AUDIO_LANGUAGES`: `en-US` with Transcribe's toxicity detection (the default), or other
    /// languages whose transcripts are scored through the text path.
    pub languages: SpeechLanguages,
    /// Detector calls in flight when an unscored transcript is scored here.
    pub max_concurrency: usize,
    /// KMS key Transcribe encrypts the transcript with (else S3-managed keys).
    pub output_kms_key_id: Option<String>,
    /// Translate's character budget per recording (`MAX_TRANSLATED_CHARS_PER_OBJECT`).
    pub max_translated_chars: u64,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            thresholds: Thresholds::uniform(0.5),
            max_audio_bytes: DEFAULT_MAX_AUDIO_BYTES,
            languages: SpeechLanguages::UsEnglish,
            max_concurrency: 4,
            output_kms_key_id: None,
            max_translated_chars: DEFAULT_MAX_TRANSLATED_CHARS,
        }
    }
}

pub struct AudioDeps<'a> {
    pub store: &'a dyn ObjectStore,
    pub jobs: &'a dyn TranscriptionJobs,
    /// Scores transcripts that came back without toxicity detection.
    pub detector: &'a dyn ToxicityDetector,
    pub rules: &'a RuleFilter,
    /// The text path's identifier and translator, for transcripts in other languages.
    pub languages: &'a dyn LanguageIdentifier,
    pub translator: Option<&'a dyn Translator>,
}

impl AudioDeps<'_> {
    fn screen(&self, known_language: Option<Identified>) -> ScreenDeps<'_> {
        ScreenDeps {
            store: self.store,
            detector: self.detector,
            rules: self.rules,
            languages: self.languages,
            translator: self.translator,
            known_language,
            progress: None,
            time_limit: None,
        }
    }
}

/// A screened document for an audio source, before items are added.
fn audio_doc(
    id: &str,
    source_uri: String,
    version: Option<String>,
    sequencer: Option<String>,
    trigger: Trigger,
    cfg: &AudioConfig,
) -> StageDocument {
    StageDocument {
        schema: SCREENED_SCHEMA.into(),
        id: id.to_string(),
        created_at: now_rfc3339(),
        source: Source::new(source_uri, SourceKind::Audio),
        source_version: version,
        source_sequencer: sequencer,
        trigger,
        status: Status::Complete,
        threshold: cfg.thresholds.for_kind(SourceKind::Audio),
        items: Vec::new(),
        unlisted: None,
        errors: Vec::new(),
        usage: Default::default(),
        image: None,
        conversations: Vec::new(),
        conversation_count: None,
    }
}

fn failed(mut doc: StageDocument, reason: String) -> StageDocument {
    doc.status = Status::Failed;
    doc.errors.push(ErrorEntry::new(STAGE, None, reason));
    doc
}

/// Start the transcription job for one recording. Unsupported types and recordings over the
/// size limit get a failed screened document naming the problem, so the report says why.
pub async fn start_audio_job(
    obj: &ObjectRef,
    id: &str,
    trigger: Trigger,
    deps: &AudioDeps<'_>,
    cfg: &AudioConfig,
) -> Result<Outcome> {
    let doc = || {
        audio_doc(
            id,
            obj.uri(),
            obj.version(),
            obj.sequencer.clone(),
            trigger.clone(),
            cfg,
        )
    };
    if obj.key.ends_with('/') {
        return Ok(Outcome::Ignored(format!("{} is a folder marker", obj.key)));
    }
    let ext = keys::extension(&obj.key).unwrap_or_default();
    if let Some(reason) = unusable_recording(obj, &ext, cfg.max_audio_bytes) {
        return write_screened(deps.store, &obj.bucket, &failed(doc(), reason)).await;
    }
    if let Some(why) = superseded(deps.store, &obj.bucket, id, obj.sequencer.as_deref()).await {
        return Ok(Outcome::Ignored(why));
    }
    let version = obj.version().or_else(|| obj.sequencer.clone());
    let job = keys::job_name(id, version.as_deref());
    // The record goes first: a transcript must never arrive for a job nobody can place.
    let record_key = keys::job_record_key(&job);
    let record = new_job_record(obj, id, &job, &trigger);
    put_json(deps.store, &obj.bucket, &record_key, &record).await?;
    let started = start_job(deps.jobs, &transcription_request(obj, &job, ext, cfg)).await?;
    match job_outcome(&job, record_key, started) {
        Ok(outcome) => Ok(outcome),
        Err(reason) => {
            let reason = format!(
                "{} could not transcribe {}: {reason}",
                deps.jobs.name(),
                obj.key
            );
            write_screened(deps.store, &obj.bucket, &failed(doc(), reason)).await
        }
    }
}

/// Why a recording cannot be sent to transcription, if it cannot: a file type Transcribe does
/// not take, or a size over `max_bytes`.
fn unusable_recording(obj: &ObjectRef, ext: &str, max_bytes: u64) -> Option<String> {
    if !keys::AUDIO_EXTENSIONS.contains(&ext) {
        return Some(format!(
            "{}: unsupported audio file type {ext:?}; Amazon Transcribe accepts {}",
            obj.key,
            keys::AUDIO_EXTENSIONS.join(", ")
        ));
    }
    let size = obj.size.filter(|s| *s > max_bytes)?;
    Some(format!(
        "{}: the recording is {size} bytes, over the {max_bytes} byte limit (MAX_AUDIO_BYTES; Amazon Transcribe takes at most 2 GB)",
        obj.key
    ))
}

/// What job `job` is for, recorded before it starts.
fn new_job_record(obj: &ObjectRef, id: &str, job: &str, trigger: &Trigger) -> JobRecord {
    JobRecord {
        schema: JOB_RECORD_SCHEMA.into(),
        job_name: job.to_string(),
        id: id.to_string(),
        source: Source::new(obj.uri(), SourceKind::Audio),
        source_version: obj.version(),
        source_sequencer: obj.sequencer.clone(),
        trigger: trigger.clone(),
        started_at: now_rfc3339(),
    }
}

/// The job for `obj`, writing its transcript to `transcripts/<job>.json` beside it.
fn transcription_request(
    obj: &ObjectRef,
    job: &str,
    ext: String,
    cfg: &AudioConfig,
) -> TranscriptionRequest {
    TranscriptionRequest {
        job_name: job.to_string(),
        media_bucket: obj.bucket.clone(),
        media_key: obj.key.clone(),
        media_format: ext,
        languages: cfg.languages.clone(),
        output_bucket: obj.bucket.clone(),
        output_key: keys::transcript_key(job),
        output_kms_key_id: cfg.output_kms_key_id.clone(),
    }
}

/// Start the job. A recording the service refused (too long, bad media) is a failed job whose
/// report says why, not an error to retry.
async fn start_job(jobs: &dyn TranscriptionJobs, req: &TranscriptionRequest) -> Result<JobStart> {
    match jobs.start(req).await {
        Ok(s) => Ok(s),
        Err(
            e @ crate::Error::Service {
                kind: ServiceErrorKind::TooLarge | ServiceErrorKind::InvalidInput,
                ..
            },
        ) => Ok(JobStart::Failed(e.to_string())),
        Err(e) => Err(e),
    }
}

/// The keys a started job leaves (its record, and the transcript of a job that finished at
/// once), or why it failed.
fn job_outcome(
    job: &str,
    record_key: String,
    started: JobStart,
) -> std::result::Result<Outcome, String> {
    match started {
        JobStart::Started => {
            info!(job = %job, "transcription job started");
            Ok(Outcome::Wrote(vec![record_key]))
        }
        JobStart::AlreadyExists => {
            info!(job = %job, "transcription job already exists (duplicate event)");
            Ok(Outcome::Wrote(vec![record_key]))
        }
        JobStart::Completed { transcript_key } => {
            Ok(Outcome::Wrote(vec![record_key, transcript_key]))
        }
        JobStart::Failed(reason) => Err(reason),
    }
}

/// Why a job record could not be used.
enum NoRecord {
    Missing(String),
    Unreadable(String),
}

impl NoRecord {
    fn reason(self) -> String {
        match self {
            NoRecord::Missing(r) | NoRecord::Unreadable(r) => r,
        }
    }
}

/// Read `jobs/<job>.json`.
async fn job_record(
    store: &dyn ObjectStore,
    bucket: &str,
    job: &str,
) -> Result<std::result::Result<JobRecord, NoRecord>> {
    let key = keys::job_record_key(job);
    match get_json::<JobRecord>(store, bucket, &key).await {
        Ok(Some(r)) => Ok(Ok(r)),
        Ok(None) => Ok(Err(NoRecord::Missing(format!("no job record {key}")))),
        Err(e @ crate::Error::Document { .. }) => Ok(Err(NoRecord::Unreadable(e.to_string()))),
        Err(e) => Err(e),
    }
}

/// EventBridge `Transcribe Job State Change`. FAILED jobs of this chain become a failed
/// screened document with Transcribe's `FailureReason`; COMPLETED needs nothing (the
/// transcript's own S3 event does the work); jobs without a record here belong to someone else.
pub async fn job_state_changed(
    job: &str,
    status: &str,
    bucket: &str,
    deps: &AudioDeps<'_>,
    cfg: &AudioConfig,
) -> Result<Outcome> {
    if let Some(why) = not_a_failure_of_ours(job, status) {
        return Ok(Outcome::Ignored(why));
    }
    let record = match job_record(deps.store, bucket, job).await? {
        Ok(r) => r,
        Err(NoRecord::Missing(why)) => {
            return Ok(Outcome::Ignored(format!(
                "{why} in {bucket}: job {job} belongs to another deployment"
            )))
        }
        // Ours, but what it was for is lost: still report the failure.
        Err(NoRecord::Unreadable(why)) => {
            let id = keys::id_from_job_name(job).unwrap_or_else(|| job.to_string());
            let uri = keys::s3_uri(bucket, &keys::job_record_key(job));
            let doc = audio_doc(&id, uri, None, None, Trigger::upload(), cfg);
            let msg = format!(
                "{} job {job} failed: {}; its job record is unreadable ({why})",
                deps.jobs.name(),
                job_failure_reason(deps.jobs, job).await?
            );
            return write_screened(deps.store, bucket, &failed(doc, msg)).await;
        }
    };
    if let Some(why) = superseded(
        deps.store,
        bucket,
        &record.id,
        record.source_sequencer.as_deref(),
    )
    .await
    {
        return Ok(Outcome::Ignored(why));
    }
    let reason = job_failure_reason(deps.jobs, job).await?;
    let doc = audio_doc(
        &record.id,
        record.source.uri,
        record.source_version,
        record.source_sequencer,
        record.trigger,
        cfg,
    );
    let msg = format!("{} job {job} failed: {reason}", deps.jobs.name());
    write_screened(deps.store, bucket, &failed(doc, msg)).await
}

/// Why a job state change is not for this stage, if it is not: only FAILED jobs this chain
/// started are (COMPLETED ones are handled by their transcript's own event).
fn not_a_failure_of_ours(job: &str, status: &str) -> Option<String> {
    if status != "FAILED" {
        return Some(format!(
            "job {job} is {status}; only FAILED jobs are handled here"
        ));
    }
    if !job.starts_with(keys::JOB_PREFIX) {
        return Some(format!("job {job} was not started by this chain"));
    }
    None
}

/// The service's `FailureReason` for `job`, or a note that it gave none.
async fn job_failure_reason(jobs: &dyn TranscriptionJobs, job: &str) -> Result<String> {
    jobs.failure_reason(job)
        .await
        .map(|r| r.unwrap_or_else(|| "no FailureReason was given".into()))
}

#[cfg(test)]
mod tests;
