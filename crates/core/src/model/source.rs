//! Where an item came from: the kind and location of the source object, and what started
//! its moderation (an upload, or a user report).

use serde::{Deserialize, Serialize};

/// What kind of content a source object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Audio,
    Text,
    Image,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Audio => "audio",
            SourceKind::Text => "text",
            SourceKind::Image => "image",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub uri: String,
    pub kind: SourceKind,
    /// A recording's spoken language as the speech service gave it (`es-US`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl Source {
    pub fn new(uri: impl Into<String>, kind: SourceKind) -> Self {
        Source {
            uri: uri.into(),
            kind,
            language: None,
        }
    }
}

/// The user-report event detail (README, "How it works"), carried into the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserReport {
    pub report_id: String,
    pub reporter_id: String,
    pub reported_user_id: String,
    pub conversation_id: String,
    pub reason: String,
    pub reported_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: TriggerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_report: Option<UserReport>,
}

impl Trigger {
    pub fn upload() -> Self {
        Trigger {
            kind: TriggerKind::Upload,
            user_report: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Upload,
    UserReport,
}

/// An object a stage is asked to process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// S3's per-key event order: a later write has a greater sequencer.
    pub sequencer: Option<String>,
}

impl ObjectRef {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            size: None,
            etag: None,
            version_id: None,
            sequencer: None,
        }
    }

    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Version id when the bucket is versioned, else the ETag.
    pub fn version(&self) -> Option<String> {
        self.version_id.clone().or_else(|| self.etag.clone())
    }
}
