//! Sorting SDK failures into the domain's error kinds, keeping the SDK error as the source.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use moderation_core::error::ServiceErrorKind;
use moderation_core::Error as CoreError;

/// The kind of a modeled or unmodeled service error code.
pub fn kind_of_code(code: &str) -> ServiceErrorKind {
    match code {
        "ThrottlingException"
        | "TooManyRequestsException"
        | "SlowDown"
        | "RequestLimitExceeded"
        | "ServiceQuotaExceededException"
        // Transcribe's throttling error.
        | "LimitExceededException"
        // Rekognition's.
        | "ProvisionedThroughputExceededException" => ServiceErrorKind::Throttled,
        "TextSizeLimitExceededException" | "EntityTooLarge" | "ImageTooLargeException" => {
            ServiceErrorKind::TooLarge
        }
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "InvalidAccessKeyId" => ServiceErrorKind::Permission,
        "ValidationException"
        | "InvalidRequestException"
        | "UnsupportedLanguageException"
        // Translate: no model for the pair, or it could not tell the source language.
        | "UnsupportedLanguagePairException"
        | "DetectedLanguageLowConfidenceException"
        // Rekognition: not a PNG/JPEG it can read, an unreadable S3 object, a bad parameter.
        | "InvalidImageFormatException"
        | "InvalidS3ObjectException"
        | "InvalidParameterException"
        | "BadRequestException" => ServiceErrorKind::InvalidInput,
        "InternalServerException"
        | "InternalFailure"
        | "ServiceUnavailableException"
        | "ModelNotReadyException"
        | "InternalError"
        | "InternalFailureException"
        | "DependencyFailedException" => ServiceErrorKind::Unavailable,
        "ModelTimeoutException" | "RequestTimeout" => ServiceErrorKind::Timeout,
        _ => ServiceErrorKind::Other,
    }
}

/// Transcribe answers `LimitExceededException` both for too many requests and for an input
/// file that is too long; only the first is worth retrying.
fn kind_of_message(kind: ServiceErrorKind, message: Option<&str>) -> ServiceErrorKind {
    let too_long = message.is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("too long") || m.contains("duration") || m.contains("exceeds the maximum")
    });
    if kind == ServiceErrorKind::Throttled && too_long {
        ServiceErrorKind::TooLarge
    } else {
        kind
    }
}

/// Map an SDK error to the domain error (after the SDK's own retries are spent).
pub fn classify<E, R>(service: &'static str, err: SdkError<E, R>) -> CoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let kind = match &err {
        SdkError::TimeoutError(_) => ServiceErrorKind::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => ServiceErrorKind::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => ServiceErrorKind::Unavailable,
        SdkError::ConstructionFailure(_) => ServiceErrorKind::InvalidInput,
        SdkError::ServiceError(_) => match err.code() {
            Some(code) => kind_of_message(kind_of_code(code), err.message()),
            None => ServiceErrorKind::Other,
        },
        _ => ServiceErrorKind::Other,
    };
    // An SdkError displays as "service error": reports and logs need the code and message.
    let text = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => DisplayErrorContext(&err).to_string(),
    };
    CoreError::service(
        service,
        kind,
        Described {
            text,
            source: Box::new(err),
        },
    )
}

/// The SDK error under a readable text, still reachable as the source.
#[derive(Debug)]
struct Described {
    text: String,
    source: Box<dyn StdError + Send + Sync>,
}

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for Described {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.source.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_actionable_kinds() {
        assert_eq!(
            kind_of_code("ThrottlingException"),
            ServiceErrorKind::Throttled
        );
        assert_eq!(
            kind_of_code("TextSizeLimitExceededException"),
            ServiceErrorKind::TooLarge
        );
        assert_eq!(
            kind_of_code("AccessDeniedException"),
            ServiceErrorKind::Permission
        );
        assert_eq!(
            kind_of_code("ModelTimeoutException"),
            ServiceErrorKind::Timeout
        );
        assert!(kind_of_code("ServiceUnavailableException").is_retryable());
        let limit = kind_of_code("LimitExceededException");
        assert_eq!(
            kind_of_message(limit, Some("Rate exceeded")),
            ServiceErrorKind::Throttled
        );
        let long = kind_of_message(limit, Some("Your input file is too long."));
        assert_eq!(long, ServiceErrorKind::TooLarge);
        assert!(!long.is_retryable());
        assert!(!kind_of_code("ValidationException").is_retryable());
    }
}
