//! S3 key layout, stable document ids and the routing table (README, "How it works").
//!
//! The offline driver and the deployed chain route with the same [`ROUTES`], so a local run is
//! the same graph as the one in AWS.

use sha2::{Digest, Sha256};

use crate::model::SourceKind;

pub const INCOMING_TEXT: &str = "incoming/text/";
pub const INCOMING_AUDIO: &str = "incoming/audio/";
pub const INCOMING_IMAGE: &str = "incoming/image/";
pub const RECORDINGS: &str = "recordings/";
pub const TRANSCRIPTS: &str = "transcripts/";
pub const SCREENED: &str = "screened/";
pub const EVALUATED: &str = "evaluated/";
pub const REPORTS: &str = "reports/";
pub const FAILED: &str = "failed/";
/// Records of started transcription jobs (`jobs/<job>.json`): what the job is for. Triggers
/// nothing; the transcript's arrival looks it up.
pub const JOBS: &str = "jobs/";
/// The picture as the services saw it (`pictures/<id>.png|jpeg`: converted, rotated and scaled
/// within 3.75 MB and 8,000 px), kept by screen-image for the policy check. Triggers nothing.
pub const PICTURES: &str = "pictures/";
/// The written policy (`policies/<file>.md`), the knowledge base's data source on AWS: a change
/// re-indexes it (sync-policies). Offline, the policy search reads its folder at each check.
pub const POLICIES: &str = "policies/";
/// The review loop's audit (`decisions/<report_id>/<at>-<id>.json`, each written once and never
/// again) and, offline, the decisions published for the game (`decisions/events.jsonl`).
/// Triggers nothing.
pub const DECISIONS: &str = "decisions/";
/// The review loop's working state: one document per report with flagged items
/// (`review/reports/<id>.json`) and the queue index over them (`review/queue/`), all updated
/// by compare-and-swap. Triggers nothing.
pub const REVIEW: &str = "review/";
/// Prefix of every Transcribe job this chain starts, so its EventBridge rule and handler can
/// tell the chain's jobs from others in the account.
pub const JOB_PREFIX: &str = "moderation-";

/// A stage of the chain, named as its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    TranscribeAudio,
    ScreenText,
    ScreenImage,
    EvaluatePolicy,
    WriteReport,
    /// Not a moderation stage: re-indexes the knowledge base when the written policy changes.
    SyncPolicies,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::TranscribeAudio => "transcribe-audio",
            Stage::ScreenText => "screen-text",
            Stage::ScreenImage => "screen-image",
            Stage::EvaluatePolicy => "evaluate-policy",
            Stage::WriteReport => "write-report",
            Stage::SyncPolicies => "sync-policies",
        }
    }

    /// The prefixes this stage writes under; never one of its own trigger prefixes.
    pub fn writes(self) -> &'static [&'static str] {
        match self {
            // A user report's screenshots are screened with screen-image's stage.
            Stage::TranscribeAudio => &[SCREENED, FAILED, JOBS, PICTURES],
            Stage::ScreenText => &[SCREENED, FAILED],
            Stage::ScreenImage => &[SCREENED, FAILED, PICTURES],
            Stage::EvaluatePolicy => &[EVALUATED, FAILED],
            Stage::WriteReport => &[REPORTS, FAILED, REVIEW],
            // An ingestion job, not an object: a failure goes to its queue's DLQ.
            Stage::SyncPolicies => &[],
        }
    }
}

/// Trigger prefix → stage. Objects under no listed prefix trigger nothing.
pub const ROUTES: &[(&str, Stage)] = &[
    (INCOMING_AUDIO, Stage::TranscribeAudio),
    (TRANSCRIPTS, Stage::TranscribeAudio),
    (INCOMING_TEXT, Stage::ScreenText),
    (INCOMING_IMAGE, Stage::ScreenImage),
    (SCREENED, Stage::EvaluatePolicy),
    (EVALUATED, Stage::WriteReport),
    (POLICIES, Stage::SyncPolicies),
];

/// The stage a newly written key triggers, if any.
pub fn route(key: &str) -> Option<Stage> {
    ROUTES
        .iter()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map(|(_, stage)| *stage)
}

pub const TEXT_EXTENSIONS: &[&str] = &["txt", "csv", "jsonl"];
/// The media formats Amazon Transcribe accepts.
pub const AUDIO_EXTENSIONS: &[&str] = &["mp3", "mp4", "wav", "flac", "ogg", "amr", "webm", "m4a"];

/// Lower-case extension of the key's file name.
pub fn extension(key: &str) -> Option<String> {
    let name = key.rsplit('/').next()?;
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

pub fn kind_of(key: &str) -> Option<SourceKind> {
    let ext = extension(key)?;
    if TEXT_EXTENSIONS.contains(&ext.as_str()) {
        Some(SourceKind::Text)
    } else if AUDIO_EXTENSIONS.contains(&ext.as_str()) {
        Some(SourceKind::Audio)
    } else if crate::media::picture::IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        Some(SourceKind::Image)
    } else {
        None
    }
}

/// Stable id for one source object: a readable slug of the file name plus a hash of bucket and
/// key. The version is deliberately not part of it, so a newer upload of the same key replaces
/// the previous report instead of forking a second one; the version is recorded in the documents.
pub fn source_id(bucket: &str, key: &str) -> String {
    slug_id(key, &format!("{bucket}\n{key}"))
}

/// The id of one recording moderated because of a user report: each report gets its own
/// report even when two reports name the same conversation.
pub fn user_report_id(bucket: &str, key: &str, report_id: &str) -> String {
    slug_id(key, &format!("{bucket}\n{key}\nuser-report\n{report_id}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn slug_id(key: &str, hashed: &str) -> String {
    let hash = hex(&Sha256::digest(hashed.as_bytes())[..6]);
    let name = key.rsplit('/').next().unwrap_or(key);
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        hash
    } else {
        format!("{slug}-{hash}")
    }
}

/// The id embedded in a stage document key such as `screened/<id>.json`.
pub fn id_from_document_key(key: &str, prefix: &str) -> Option<String> {
    let rest = key.strip_prefix(prefix)?;
    let id = rest.strip_suffix(".json")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

pub fn screened_key(id: &str) -> String {
    format!("{SCREENED}{id}.json")
}
/// Where screen-image keeps the prepared picture (`ext` is `png` or `jpeg`).
pub fn picture_key(id: &str, ext: &str) -> String {
    format!("{PICTURES}{id}.{ext}")
}
pub fn evaluated_key(id: &str) -> String {
    format!("{EVALUATED}{id}.json")
}
pub fn report_json_key(id: &str) -> String {
    format!("{REPORTS}{id}.json")
}
pub fn report_html_key(id: &str) -> String {
    format!("{REPORTS}{id}.html")
}
pub fn report_index_key() -> String {
    format!("{REPORTS}index.html")
}
/// The report index's head (the page being filled) and per-report markers.
pub const INDEX: &str = "reports/index/";
/// Sealed pages of the report index.
pub const INDEX_PAGES: &str = "reports/pages/";
pub fn index_head_key() -> String {
    format!("{INDEX}head.json")
}
/// Present once a report has its row in the index.
pub fn index_marker_key(id: &str) -> String {
    format!("{INDEX}ids/{id}")
}
pub fn index_page_key(number: u64) -> String {
    format!("{INDEX_PAGES}{number:06}.html")
}
/// The number of a sealed page from its key.
pub fn index_page_number(key: &str) -> Option<u64> {
    key.strip_prefix(INDEX_PAGES)?
        .strip_suffix(".html")?
        .parse()
        .ok()
}
/// The review document of a report: its flagged items and what people decided.
pub fn review_doc_key(report_id: &str) -> String {
    format!("{REVIEW}reports/{report_id}.json")
}

pub fn queue_head_key() -> String {
    format!("{REVIEW}queue/head.json")
}

pub fn queue_page_key(number: u64) -> String {
    format!("{REVIEW}queue/pages/{number:06}.json")
}

/// One audit record; `at` first so a listing sorts in time order.
pub fn decision_record_key(report_id: &str, at: &str, id: &str) -> String {
    let stamp: String = at.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{DECISIONS}{report_id}/{stamp}-{id}.json")
}

/// Offline, the decisions published for the game to enforce, one JSON line each.
pub const DECISION_EVENTS_KEY: &str = "decisions/events.jsonl";

pub fn failed_key(id: &str) -> String {
    format!("{FAILED}{id}.json")
}

/// The Transcribe job for one version of one source: `moderation-<id>-<8 hex>`. A duplicate
/// event names the same job (Transcribe answers ConflictException, which is success); a newer
/// upload of the same key is a new job. Fits Transcribe's `[0-9a-zA-Z._-]{1,200}`.
pub fn job_name(id: &str, version: Option<&str>) -> String {
    let tag = hex(&Sha256::digest(version.unwrap_or("unversioned").as_bytes())[..4]);
    format!("{JOB_PREFIX}{id}-{tag}")
}

/// The source id a job name was made from.
pub fn id_from_job_name(job: &str) -> Option<String> {
    let rest = job.strip_prefix(JOB_PREFIX)?;
    let (id, tag) = rest.rsplit_once('-')?;
    (tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()) && !id.is_empty())
        .then(|| id.to_string())
}

/// `recordings/<conversation>/`, where a user report's recordings sit.
pub fn conversation_folder(conversation_id: &str) -> String {
    format!("{RECORDINGS}{conversation_id}/")
}

pub fn transcript_key(job: &str) -> String {
    format!("{TRANSCRIPTS}{job}.json")
}
pub fn job_record_key(job: &str) -> String {
    format!("{JOBS}{job}.json")
}

pub fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// `(bucket, key)` of an `s3://bucket/key` URI.
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let (bucket, key) = uri.strip_prefix("s3://")?.split_once('/')?;
    (!bucket.is_empty()).then_some((bucket, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_readable_and_distinct() {
        let a = source_id("b", "incoming/text/match chat.csv");
        assert_eq!(a, source_id("b", "incoming/text/match chat.csv"));
        assert!(a.starts_with("match-chat-csv-"), "{a}");
        assert_ne!(a, source_id("other", "incoming/text/match chat.csv"));
        assert_ne!(a, source_id("b", "incoming/text/sub/match chat.csv"));
        // Path tricks cannot escape into the id.
        let odd = source_id("b", "incoming/text/../../etc/passwd");
        assert!(odd.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_eq!(source_id("b", "incoming/text/%%%").len(), 12);
    }

    #[test]
    fn routing_table_sends_each_prefix_to_one_stage() {
        assert_eq!(route("incoming/text/a.csv"), Some(Stage::ScreenText));
        assert_eq!(route("screened/x.json"), Some(Stage::EvaluatePolicy));
        assert_eq!(route("evaluated/x.json"), Some(Stage::WriteReport));
        assert_eq!(route("reports/x.json"), None);
        assert_eq!(route("failed/x.json"), None);
        assert_eq!(route("recordings/c/a.wav"), None);
        assert_eq!(route("policies/harassment.md"), Some(Stage::SyncPolicies));
    }

    #[test]
    fn no_stage_writes_under_its_own_trigger_prefix() {
        for (prefix, stage) in ROUTES {
            for written in stage.writes() {
                assert!(
                    route(written) != Some(*stage),
                    "{} writes {written} which triggers itself via {prefix}",
                    stage.name()
                );
            }
        }
    }

    #[test]
    fn document_ids_round_trip() {
        assert_eq!(
            id_from_document_key(&screened_key("abc-12"), SCREENED).as_deref(),
            Some("abc-12")
        );
        assert_eq!(id_from_document_key("screened/a/b.json", SCREENED), None);
        assert_eq!(id_from_document_key("screened/.json", SCREENED), None);
        assert_eq!(id_from_document_key("screened/a.txt", SCREENED), None);
    }

    #[test]
    fn extensions_and_kinds() {
        assert_eq!(extension("a/b/Chat.CSV").as_deref(), Some("csv"));
        assert_eq!(extension("a/b/noext"), None);
        assert_eq!(kind_of("x.jsonl"), Some(SourceKind::Text));
        assert_eq!(kind_of("x.exe"), None);
        assert_eq!(kind_of("a/Clip.M4A"), Some(SourceKind::Audio));
    }

    #[test]
    fn job_names_are_valid_stable_and_versioned() {
        let id = source_id("b", "incoming/audio/match-42/voice chat.wav");
        let job = job_name(&id, Some("etag-1"));
        assert_eq!(job, job_name(&id, Some("etag-1")));
        assert_ne!(job, job_name(&id, Some("etag-2")));
        assert!(job.len() <= 200 && job.starts_with(JOB_PREFIX));
        assert!(job
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
        assert_eq!(id_from_job_name(&job), Some(id));
        assert_eq!(id_from_job_name("someone-elses-job"), None);
        assert_eq!(
            id_from_document_key(&transcript_key(&job), TRANSCRIPTS),
            Some(job)
        );
        assert_eq!(
            id_from_document_key("transcripts/.write_access_check_file.temp", TRANSCRIPTS),
            None
        );
    }

    #[test]
    fn user_report_ids_differ_per_report() {
        let k = "recordings/match-42/voice.wav";
        assert_ne!(user_report_id("b", k, "r-1"), user_report_id("b", k, "r-2"));
        assert_ne!(user_report_id("b", k, "r-1"), source_id("b", k));
        assert!(user_report_id("b", k, "r-1").starts_with("voice-wav-"));
    }
}
