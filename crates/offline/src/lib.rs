//! moderation-offline: the embedded default backend. A folder stands in for the bucket, a
//! linear profanity model plus category lexicons stands in for Comprehend, BM25 over the
//! Markdown policy stands in for the knowledge base, and a rules evaluator stands in for the LLM.

pub mod detector;
pub mod openai;
pub mod policy;
pub mod profanity;
#[cfg(feature = "semantic")]
pub mod semantic;
pub mod store;

pub use detector::OfflineDetector;
pub use policy::{PolicyIndex, RulesJudge};
pub use store::FolderStore;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("object key {key:?} in bucket {bucket:?} cannot be stored in a folder: {why}")]
    UnsafeKey {
        bucket: String,
        key: String,
        why: String,
    },
    #[error("profanity model JSON could not be parsed")]
    ProfanityParse(#[source] serde_json::Error),
    #[error("profanity model uses unsupported setting {setting} = {found}")]
    ProfanityUnsupported {
        setting: &'static str,
        found: String,
    },
    #[error("profanity model is inconsistent: {0}")]
    ProfanityShape(String),
    #[error("lexicon line {line}: {reason}")]
    Lexicon { line: usize, reason: String },
    #[error("policy folder {path}: {source}")]
    PolicyIo {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("embedding model file {path}: {source}")]
    ModelFile {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("embedding failed while {what}: {source}")]
    Embedding {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("LLM_ENDPOINT {endpoint}: {reason}")]
    LlmEndpoint { endpoint: String, reason: String },
    #[error("policy {path}: {reason}")]
    Policy { path: String, reason: String },
}

impl From<Error> for moderation_core::Error {
    fn from(e: Error) -> Self {
        moderation_core::Error::Config(e.to_string())
    }
}
