//! The crate's one error type. Port implementations in other crates map their failures into it,
//! keeping the cause, and sort service failures into kinds a caller can act on.

use std::error::Error as StdError;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// How a service call failed, in terms a stage can decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceErrorKind {
    /// Rate limited after the SDK's own retries.
    Throttled,
    Timeout,
    /// The service refused the request as too large (e.g. Comprehend TextSizeLimitExceeded).
    TooLarge,
    InvalidInput,
    Permission,
    Unavailable,
    Other,
}

impl ServiceErrorKind {
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ServiceErrorKind::Throttled | ServiceErrorKind::Timeout | ServiceErrorKind::Unavailable
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("event payload has an unexpected shape: {0}")]
    EventShape(#[source] serde_json::Error),
    #[error("unsupported event: {0}")]
    UnsupportedEvent(String),
    #[error("S3 key {key:?} is not valid UTF-8 after URL decoding")]
    KeyNotUtf8 {
        key: String,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("environment variable {var} is not set")]
    MissingVar { var: String },
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    InvalidVar {
        var: String,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A setting that names something unusable (a folder, a model), with why.
    #[error("invalid configuration: {what}: {source}")]
    ConfigSource {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("object {uri} does not exist")]
    NotFound { uri: String },
    #[error("{service} call failed ({kind:?}): {source}")]
    Service {
        service: &'static str,
        kind: ServiceErrorKind,
        #[source]
        source: BoxError,
    },
    #[error("document {key} is not valid: {source}")]
    Document {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
    /// A request names a report or item that does not exist (the review API's 404).
    #[error("no {what} {id:?}")]
    Unknown { what: &'static str, id: String },
    /// A request that cannot be carried out as asked (the review API's 400), with why.
    #[error("{0}")]
    Invalid(String),
    /// The invocation's time ran out (an earlier record of the same delivery used it, or a
    /// call was still waiting at the end): a redelivery can do it.
    #[error("out of time: {0}")]
    OutOfTime(String),
}

impl Error {
    /// Whether running the same work again could succeed; decides SQS redelivery.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Service { kind, .. } => kind.is_retryable(),
            Error::Io { .. } | Error::OutOfTime(_) => true,
            _ => false,
        }
    }

    /// The Lambda error type and message: whether a retry can help, for SQS redrive and alarms.
    pub fn diagnostic(&self) -> (String, String) {
        let kind = if self.is_retryable() {
            "Retryable"
        } else {
            "NonRetryable"
        };
        // Display already includes the cause for every variant that has one.
        (kind.to_string(), self.to_string())
    }

    pub fn service(
        service: &'static str,
        kind: ServiceErrorKind,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Service {
            service,
            kind,
            source: source.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
