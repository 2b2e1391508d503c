//! The crate's errors, and what kind of failure each is to the chain.

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

/// Offline errors by kind, so a stage retries what may pass on a second try and reports what
/// cannot: a model failing while it runs is a service that failed (retried, the error kept as
/// the source); undecodable audio or an unstorable key is bad input; a policy folder that cannot
/// be read is I/O; a missing or malformed model, lexicon, head or endpoint is configuration.
impl From<Error> for moderation_core::Error {
    fn from(e: Error) -> Self {
        use moderation_core::error::ServiceErrorKind as Kind;
        let service =
            |service: &'static str, kind: Kind, e: Error| moderation_core::Error::Service {
                service,
                kind,
                source: Box::new(e),
            };
        match e {
            Error::Embedding { .. } => service("embedding model", Kind::Unavailable, e),
            Error::Transcription { .. } => service("speech model", Kind::Unavailable, e),
            Error::AudioFormat { .. } | Error::AudioDecode { .. } => {
                service("audio decoder", Kind::InvalidInput, e)
            }
            Error::UnsafeKey { .. } => moderation_core::Error::Input(e.to_string()),
            Error::PolicyIo { path, source } => moderation_core::Error::Io { path, source },
            other => moderation_core::Error::Config(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn offline_errors_keep_their_kind_and_source() {
        let failed = |what: &str| Error::Embedding {
            what: what.into(),
            source: "tensor shape mismatch".into(),
        };
        let core = moderation_core::Error::from(failed("embedding a batch"));
        assert!(core.is_retryable(), "{core}");
        let source = std::error::Error::source(&core).expect("source kept");
        assert!(
            source.to_string().contains("tensor shape mismatch"),
            "{source}"
        );
        let bad = moderation_core::Error::from(Error::AudioFormat {
            format: "wav".into(),
            reason: "WAV format tag 0x0002".into(),
        });
        assert!(
            !bad.is_retryable() && bad.to_string().contains("0x0002"),
            "{bad}"
        );
        let io = moderation_core::Error::from(Error::PolicyIo {
            path: "infra/policies".into(),
            source: std::io::Error::other("disk gone"),
        });
        assert!(matches!(io, moderation_core::Error::Io { .. }), "{io}");
        let config =
            moderation_core::Error::from(Error::HeadShape("3 weights for 4 labels".into()));
        assert!(
            matches!(config, moderation_core::Error::Config(_)),
            "{config}"
        );
    }
}
