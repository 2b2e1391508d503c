//! transcribe-audio: start a transcription job with toxicity detection for each recording (an
//! upload under `incoming/audio/`, or the recordings a user report names), and turn what comes
//! back (the transcript under `transcripts/`, or a FAILED job) into `screened/<id>.json`.
//!
//! What a job is for (source, version, trigger and user report) is kept in a job record,
//! `jobs/<job>.json`, written before the job starts: Transcribe's output names only the job.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::chain::config::Thresholds;
use crate::chain::delivery::{dead_letter, get_json, now_rfc3339, put_json, Outcome};
use crate::chain::keys::{self, Stage};
use crate::error::{Result, ServiceErrorKind};
use crate::media::transcript::{
    covered_seconds, parse_transcript, SpeechSegment, TranscriptContent, Utterance,
};
use crate::model::ObjectRef;
use crate::model::{
    ErrorEntry, Item, Source, SourceKind, StageDocument, Status, Trigger, TriggerKind, UserReport,
    Verdict, SCREENED_SCHEMA,
};
use crate::ports::Identified;
use crate::ports::{
    JobStart, LanguageIdentifier, ObjectStore, SpeechLanguages, ToxicityDetector,
    TranscriptionJobs, TranscriptionRequest, Translator,
};
use crate::stages::screen_text::{
    over_threshold, screen_messages_within, superseded, write_screened, ScreenDeps,
    DEFAULT_MAX_TRANSLATED_CHARS,
};
use crate::text::parse::ParsedMessage;
use crate::text::rules::RuleFilter;

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
    if !keys::AUDIO_EXTENSIONS.contains(&ext.as_str()) {
        let reason = format!(
            "{}: unsupported audio file type {ext:?}; Amazon Transcribe accepts {}",
            obj.key,
            keys::AUDIO_EXTENSIONS.join(", ")
        );
        return write_screened(deps.store, &obj.bucket, &failed(doc(), reason)).await;
    }
    if let Some(size) = obj.size.filter(|s| *s > cfg.max_audio_bytes) {
        let reason = format!(
            "{}: the recording is {size} bytes, over the {} byte limit (MAX_AUDIO_BYTES; Amazon Transcribe takes at most 2 GB)",
            obj.key, cfg.max_audio_bytes
        );
        return write_screened(deps.store, &obj.bucket, &failed(doc(), reason)).await;
    }
    if let Some(why) = superseded(deps.store, &obj.bucket, id, obj.sequencer.as_deref()).await {
        return Ok(Outcome::Ignored(why));
    }
    let version = obj.version().or_else(|| obj.sequencer.clone());
    let job = keys::job_name(id, version.as_deref());
    let record = JobRecord {
        schema: JOB_RECORD_SCHEMA.into(),
        job_name: job.clone(),
        id: id.to_string(),
        source: Source::new(obj.uri(), SourceKind::Audio),
        source_version: obj.version(),
        source_sequencer: obj.sequencer.clone(),
        trigger: trigger.clone(),
        started_at: now_rfc3339(),
    };
    // The record goes first: a transcript must never arrive for a job nobody can place.
    let record_key = keys::job_record_key(&job);
    put_json(deps.store, &obj.bucket, &record_key, &record).await?;
    let req = TranscriptionRequest {
        job_name: job.clone(),
        media_bucket: obj.bucket.clone(),
        media_key: obj.key.clone(),
        media_format: ext,
        languages: cfg.languages.clone(),
        output_bucket: obj.bucket.clone(),
        output_key: keys::transcript_key(&job),
        output_kms_key_id: cfg.output_kms_key_id.clone(),
    };
    let started = match deps.jobs.start(&req).await {
        Ok(s) => s,
        // The recording itself was refused (too long, bad media): the report says why.
        Err(
            e @ crate::Error::Service {
                kind: ServiceErrorKind::TooLarge | ServiceErrorKind::InvalidInput,
                ..
            },
        ) => JobStart::Failed(e.to_string()),
        Err(e) => return Err(e),
    };
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
        JobStart::Failed(reason) => {
            let reason = format!(
                "{} could not transcribe {}: {reason}",
                deps.jobs.name(),
                obj.key
            );
            write_screened(deps.store, &obj.bucket, &failed(doc(), reason)).await
        }
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

/// `transcripts/<job>.json` arrived: parse it and write `screened/<id>.json`.
pub async fn ingest_transcript(
    obj: &ObjectRef,
    deps: &AudioDeps<'_>,
    cfg: &AudioConfig,
) -> Result<Outcome> {
    // Transcribe's `.write_access_check_file.temp`, folders and other files are not transcripts.
    let Some(job) = keys::id_from_document_key(&obj.key, keys::TRANSCRIPTS) else {
        return Ok(Outcome::Ignored(format!("{} is not a transcript", obj.key)));
    };
    let mut doc = match job_record(deps.store, &obj.bucket, &job).await? {
        Ok(r) => audio_doc(
            &r.id,
            r.source.uri,
            r.source_version,
            r.source_sequencer,
            r.trigger,
            cfg,
        ),
        Err(why) => {
            let why = why.reason();
            // Still moderate the speech; the report says what is unknown.
            let id = keys::id_from_job_name(&job).unwrap_or_else(|| job.clone());
            let mut d = audio_doc(&id, obj.uri(), None, None, Trigger::upload(), cfg);
            d.status = Status::Partial;
            d.errors.push(ErrorEntry::new(
                STAGE,
                None,
                format!("{why}: the recording and the trigger of job {job} are unknown; the source shown is the transcript"),
            ));
            d
        }
    };
    if let Some(why) = superseded(
        deps.store,
        &obj.bucket,
        &doc.id,
        doc.source_sequencer.as_deref(),
    )
    .await
    {
        return Ok(Outcome::Ignored(why));
    }
    let Some(bytes) = deps.store.get_bytes(&obj.bucket, &obj.key).await? else {
        let reason = format!("{} no longer exists", obj.uri());
        return dead_letter(deps.store, Stage::TranscribeAudio, obj, &doc.id, &reason).await;
    };
    let transcript = match parse_transcript(&bytes) {
        Ok(t) => t,
        Err(reason) => {
            let doc = failed(doc, format!("transcript {}: {reason}", obj.key));
            return write_screened(deps.store, &obj.bucket, &doc).await;
        }
    };
    let content = transcript.content;
    doc.usage.transcribe_seconds = covered_seconds(&content);
    doc.source.language = transcript.language.as_ref().map(|l| l.code.clone());
    // Asked for other languages, transcribed as US English only (the offline speech model is
    // English-only): speech in another language would come out as English-sounding noise.
    if !matches!(cfg.languages, SpeechLanguages::UsEnglish)
        && matches!(content, TranscriptContent::Scored(_))
    {
        doc.status = Status::Partial;
        doc.errors.push(ErrorEntry::new(
            STAGE,
            None,
            format!(
                "AUDIO_LANGUAGES is {} but {} transcribed the recording as US English only; \
                 speech in another language is not understood: a person should listen to it",
                cfg.languages,
                deps.jobs.name()
            ),
        ));
    }
    let threshold = doc.threshold;
    match content {
        // Silence, music or speech the recogniser could not make out is not "clean".
        TranscriptContent::Scored(segments) if segments.is_empty() => {
            doc.status = Status::Partial;
            doc.errors.push(ErrorEntry::new(
                STAGE,
                None,
                format!(
                    "transcript {}: no speech was recognised in the recording; a person should listen to it",
                    obj.key
                ),
            ));
        }
        TranscriptContent::Scored(segments) => {
            doc.items = segments
                .into_iter()
                .map(|s| segment_item(s, deps.rules, threshold))
                .collect();
        }
        TranscriptContent::Unscored(utterances) => {
            // Single-language identification transcribes everything in the language found.
            let known = transcript
                .language
                .map(|l| Identified::from_speech(&l.code, l.score.unwrap_or(1.0)));
            let (items, errors, usage) =
                score_utterances(utterances, deps, known, threshold, cfg).await;
            if !errors.is_empty() || items.iter().any(|i| i.review_reason.is_some()) {
                doc.status = Status::Partial;
            }
            doc.items = items;
            doc.errors.extend(errors);
            doc.usage.comprehend_units += usage.comprehend_units;
            doc.usage.language_units += usage.language_units;
            doc.usage.translated_characters += usage.translated_characters;
        }
    }
    write_screened(deps.store, &obj.bucket, &doc).await
}

fn segment_item(s: SpeechSegment, rules: &RuleFilter, threshold: f64) -> Item {
    let mut item = Item {
        rule_hits: rules.scan(&s.text),
        id: s.id,
        text: s.text,
        user: None,
        timestamp: None,
        conversation: None,
        start_time: Some(s.start_time),
        end_time: Some(s.end_time),
        toxicity: s.toxicity,
        categories: s.categories,
        verdict: None,
        evaluation: None,
        review_reason: None,
        revealed: None,
        language: None,
        translation: None,
        bounding_box: None,
    };
    if !over_threshold(&item, threshold) {
        item.verdict = Some(Verdict::BelowThreshold);
    }
    item
}

/// A transcript without toxicity detection (e.g. a non-English job): its sentences are scored
/// by the text path's detector and rule filter, keeping their times.
async fn score_utterances(
    utterances: Vec<Utterance>,
    deps: &AudioDeps<'_>,
    known_language: Option<Identified>,
    threshold: f64,
    cfg: &AudioConfig,
) -> (Vec<Item>, Vec<ErrorEntry>, crate::model::Usage) {
    let times: Vec<(Option<f64>, Option<f64>)> = utterances
        .iter()
        .map(|u| (u.start_time, u.end_time))
        .collect();
    let messages = utterances
        .into_iter()
        .enumerate()
        .map(|(n, u)| ParsedMessage {
            id: format!("seg-{}", n + 1),
            text: u.text,
            user: None,
            timestamp: None,
            conversation: None,
            issues: Vec::new(),
        })
        .collect();
    let (mut items, errors, usage) = screen_messages_within(
        messages,
        &deps.screen(known_language),
        threshold,
        cfg.max_concurrency,
        cfg.max_translated_chars,
    )
    .await;
    for (item, (start, end)) in items.iter_mut().zip(times) {
        item.start_time = start;
        item.end_time = end;
    }
    (items, errors, usage)
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
    if status != "FAILED" {
        return Ok(Outcome::Ignored(format!(
            "job {job} is {status}; only FAILED jobs are handled here"
        )));
    }
    if !job.starts_with(keys::JOB_PREFIX) {
        return Ok(Outcome::Ignored(format!(
            "job {job} was not started by this chain"
        )));
    }
    let reason = || async {
        deps.jobs
            .failure_reason(job)
            .await
            .map(|r| r.unwrap_or_else(|| "no FailureReason was given".into()))
    };
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
                reason().await?
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
    let reason = reason().await?;
    let doc = audio_doc(
        &record.id,
        record.source.uri,
        record.source_version,
        record.source_sequencer,
        record.trigger,
        cfg,
    );
    let doc = failed(
        doc,
        format!("{} job {job} failed: {reason}", deps.jobs.name()),
    );
    write_screened(deps.store, bucket, &doc).await
}

/// Why a conversation id cannot name a folder, if it cannot.
fn conversation_problem(id: &str) -> Option<String> {
    if id.trim().is_empty() {
        return Some("conversation_id is empty".into());
    }
    if id.len() > 512 {
        return Some(format!(
            "conversation_id is {} bytes long (at most 512)",
            id.len()
        ));
    }
    if id.contains('/') || id == "." || id == ".." || id.chars().any(char::is_control) {
        return Some(format!(
            "conversation_id {id:?} cannot name a folder under {}",
            keys::RECORDINGS
        ));
    }
    None
}

/// A user report: moderate every recording under `recordings/<conversation>/` with the report
/// as the trigger (audio through transcription jobs; chat logs and screenshots through
/// `screen_other`, the text and image paths' stages). Each recording gets its own report per user report. A conversation with no
/// recordings gets a failed report that says so.
pub async fn user_report<F, Fut>(
    report: &UserReport,
    bucket: &str,
    deps: &AudioDeps<'_>,
    cfg: &AudioConfig,
    screen_other: F,
) -> Result<Outcome>
where
    F: Fn(ObjectRef, String, Trigger) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let trigger = Trigger {
        kind: TriggerKind::UserReport,
        user_report: Some(report.clone()),
    };
    let folder = keys::conversation_folder(&report.conversation_id);
    let folder_id = keys::user_report_id(bucket, folder.trim_end_matches('/'), &report.report_id);
    let folder_doc = || {
        audio_doc(
            &folder_id,
            keys::s3_uri(bucket, &folder),
            None,
            None,
            trigger.clone(),
            cfg,
        )
    };
    if let Some(problem) = conversation_problem(&report.conversation_id) {
        let reason = format!("user report {}: {problem}", report.report_id);
        return write_screened(deps.store, bucket, &failed(folder_doc(), reason)).await;
    }
    let mut recordings: Vec<String> = deps
        .store
        .list(bucket, &folder)
        .await?
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .collect();
    recordings.sort();
    if recordings.is_empty() {
        let reason = format!(
            "user report {}: no recordings under {} — unknown conversation {:?}, or nothing was recorded",
            report.report_id,
            keys::s3_uri(bucket, &folder),
            report.conversation_id
        );
        return write_screened(deps.store, bucket, &failed(folder_doc(), reason)).await;
    }
    info!(recordings = recordings.len(), report_id = %report.report_id, "user report");
    let mut written = Vec::new();
    let mut retry: Option<crate::Error> = None;
    for key in recordings {
        let obj = ObjectRef::new(bucket, key.clone());
        let id = keys::user_report_id(bucket, &key, &report.report_id);
        let kind = keys::kind_of(&key);
        let result = match kind {
            Some(SourceKind::Audio) => start_audio_job(&obj, &id, trigger.clone(), deps, cfg).await,
            Some(SourceKind::Text | SourceKind::Image) => {
                screen_other(obj.clone(), id.clone(), trigger.clone()).await
            }
            None => {
                let doc = audio_doc(&id, obj.uri(), None, None, trigger.clone(), cfg);
                let reason = format!(
                    "{key}: unsupported file type; recordings are audio ({}), chat logs ({}) or \
                     screenshots ({})",
                    keys::AUDIO_EXTENSIONS.join(", "),
                    keys::TEXT_EXTENSIONS.join(", "),
                    crate::media::picture::IMAGE_EXTENSIONS.join(", ")
                );
                write_screened(deps.store, bucket, &failed(doc, reason)).await
            }
        };
        let outcome = match result {
            Ok(o) => o,
            // The report's earlier files used the invocation's time. Redelivering would run
            // them first again and run out again, so this log gets a report that says so.
            Err(crate::Error::OutOfTime(why)) => {
                crate::chain::telemetry::cut_short(
                    &key,
                    "chat log of a user report not screened",
                    None,
                );
                let mut doc = audio_doc(&id, obj.uri(), None, None, trigger.clone(), cfg);
                doc.source.kind = kind.unwrap_or(SourceKind::Text);
                let reason = format!(
                    "{key}: not screened ({why}); upload this log under incoming/text/ to \
                     screen it on its own"
                );
                write_screened(deps.store, bucket, &failed(doc, reason)).await?
            }
            // The others still run; the message is redelivered for this one (started jobs
            // answer ConflictException, so only chat logs are screened again).
            Err(e) if e.is_retryable() => {
                warn!(key = %key, error = %e, "recording of a user report failed; will retry");
                retry.get_or_insert(e);
                continue;
            }
            // One recording that cannot be moderated must not hide the others: its own report
            // says why.
            Err(e) => {
                let mut doc = audio_doc(&id, obj.uri(), None, None, trigger.clone(), cfg);
                doc.source.kind = kind.unwrap_or(SourceKind::Audio);
                let doc = failed(doc, format!("{key}: {e}"));
                write_screened(deps.store, bucket, &doc).await?
            }
        };
        written.extend(outcome.written().iter().cloned());
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(Outcome::Wrote(written)),
    }
}
