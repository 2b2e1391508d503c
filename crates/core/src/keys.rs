//! S3 key layout, stable document ids and the routing table (DESIGN.md §2).
//!
//! The offline driver and the deployed chain route with the same [`ROUTES`], so a local run is
//! the same graph as the one in AWS.

use sha2::{Digest, Sha256};

use crate::model::SourceKind;

pub const INCOMING_TEXT: &str = "incoming/text/";
pub const INCOMING_AUDIO: &str = "incoming/audio/";
pub const RECORDINGS: &str = "recordings/";
pub const TRANSCRIPTS: &str = "transcripts/";
pub const SCREENED: &str = "screened/";
pub const EVALUATED: &str = "evaluated/";
pub const REPORTS: &str = "reports/";
pub const FAILED: &str = "failed/";

/// A stage of the chain, named as its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    TranscribeAudio,
    ScreenText,
    EvaluatePolicy,
    WriteReport,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::TranscribeAudio => "transcribe-audio",
            Stage::ScreenText => "screen-text",
            Stage::EvaluatePolicy => "evaluate-policy",
            Stage::WriteReport => "write-report",
        }
    }

    /// The prefixes this stage writes under; never one of its own trigger prefixes.
    pub fn writes(self) -> &'static [&'static str] {
        match self {
            Stage::TranscribeAudio => &[SCREENED, FAILED],
            Stage::ScreenText => &[SCREENED, FAILED],
            Stage::EvaluatePolicy => &[EVALUATED, FAILED],
            Stage::WriteReport => &[REPORTS, FAILED],
        }
    }
}

/// Trigger prefix → stage. Objects under no listed prefix trigger nothing.
pub const ROUTES: &[(&str, Stage)] = &[
    (INCOMING_AUDIO, Stage::TranscribeAudio),
    (TRANSCRIPTS, Stage::TranscribeAudio),
    (INCOMING_TEXT, Stage::ScreenText),
    (SCREENED, Stage::EvaluatePolicy),
    (EVALUATED, Stage::WriteReport),
];

/// The stage a newly written key triggers, if any.
pub fn route(key: &str) -> Option<Stage> {
    ROUTES
        .iter()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map(|(_, stage)| *stage)
}

pub const TEXT_EXTENSIONS: &[&str] = &["txt", "csv", "jsonl"];

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
    } else {
        None
    }
}

/// Stable id for one source object: a readable slug of the file name plus a hash of bucket and
/// key. The version is deliberately not part of it, so a newer upload of the same key replaces
/// the previous report instead of forking a second one; the version is recorded in the documents.
pub fn source_id(bucket: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{bucket}\n{key}").as_bytes());
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
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
pub fn failed_key(id: &str) -> String {
    format!("{FAILED}{id}.json")
}

pub fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
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
    }
}
