//! moderation-offline: the embedded default backend. A folder stands in for the bucket, a
//! linear profanity model plus category lexicons stands in for Comprehend, BM25 over the
//! Markdown policy stands in for the knowledge base, and a rules evaluator stands in for the LLM.

#[cfg(feature = "whisper")]
pub mod audio;
#[cfg(feature = "whisper")]
pub mod ct2;
pub mod detector;
#[cfg(feature = "semantic")]
pub mod embedding;
pub mod head;
pub mod images;
#[cfg(feature = "nsfw")]
pub mod nsfw;
pub mod openai;
pub mod policy;
pub mod profanity;
#[cfg(feature = "semantic")]
pub mod semantic;
pub mod speech_samples;
pub mod store;
pub mod transcription;
#[cfg(feature = "whisper")]
pub mod whisper;

pub use detector::OfflineDetector;
pub use images::{offline_classifier, NoImageClassifier, TesseractText};
pub use policy::{PolicyIndex, RulesJudge};
pub use store::FolderStore;
pub use transcription::LocalTranscription;

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
    #[error("detector training set line {line}: {reason}")]
    TrainingSet { line: usize, reason: String },
    #[error("detector head JSON could not be parsed")]
    HeadParse(#[source] serde_json::Error),
    #[error("detector head is inconsistent: {0}")]
    HeadShape(String),
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
    #[error("image classifier model {path}: {source}")]
    ImageModel {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("LLM_ENDPOINT {endpoint}: {reason}")]
    LlmEndpoint { endpoint: String, reason: String },
    #[error("policy {path}: {reason}")]
    Policy { path: String, reason: String },
    #[error("audio ({format}) is not usable: {reason}")]
    AudioFormat { format: String, reason: String },
    #[error("audio ({format}) cannot be decoded: {source}")]
    AudioDecode {
        format: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("CTranslate2 model {path}, byte {offset}: {reason}")]
    Ct2Format {
        path: String,
        offset: usize,
        reason: String,
    },
    #[error("speech model file {path}: {source}")]
    SpeechModelFile {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("speech recognition failed while {what}: {source}")]
    Transcription {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A model library's error as the `source` of [`Error`]'s model variants.
#[cfg(any(feature = "semantic", feature = "whisper"))]
pub(crate) fn boxed<E: std::error::Error + Send + Sync + 'static>(
    e: E,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

impl From<Error> for moderation_core::Error {
    fn from(e: Error) -> Self {
        moderation_core::Error::Config(e.to_string())
    }
}
