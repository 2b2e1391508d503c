//! moderation-aws: adapters over the official AWS SDK crates. SDK ↔ domain mapping and SDK
//! error classification live here and nowhere else.

pub mod bedrock;
pub mod comprehend;
pub mod errors;
pub mod eventbridge;
pub mod language;
pub mod pace;
pub mod rekognition;
pub mod s3;
pub mod sagemaker;
pub mod transcribe;

pub use bedrock::{BedrockImages, ConverseModel, KnowledgeBaseRetriever, KnowledgeBaseSync};
pub use comprehend::ComprehendDetector;
pub use eventbridge::EventBridgeDecisions;
pub use language::{ComprehendLanguages, TranslateToEnglish};
pub use moderation_core::chain::config::{Rates, SdkSettings};
pub use rekognition::RekognitionImages;
pub use s3::S3Store;
pub use sagemaker::SageMakerImages;
pub use transcribe::TranscribeJobs;

/// Default model for policy checks: a current Claude Haiku through the US cross-region
/// inference profile. Override with `MODEL_ID` for other regions or models.
pub const DEFAULT_MODEL_ID: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not build the {what} request: {source}")]
    Build {
        what: &'static str,
        #[source]
        source: aws_smithy_types::error::operation::BuildError,
    },
    #[error("{service} returned no {field}")]
    MissingField {
        service: &'static str,
        field: &'static str,
    },
}

impl From<Error> for moderation_core::Error {
    fn from(e: Error) -> Self {
        let kind = moderation_core::error::ServiceErrorKind::Other;
        let service = match &e {
            Error::Build { what, .. } => *what,
            Error::MissingField { service, .. } => *service,
        };
        moderation_core::Error::service(service, kind, e)
    }
}

/// Load the shared SDK configuration once per cold start, with adaptive retry so throttled
/// calls back off client-side instead of burning attempts (a paced client switches to standard
/// retry: [`pace`]), and a per-attempt timeout so a hung call is retried instead of eating the
/// function's whole time budget.
pub async fn load_sdk_config(settings: &SdkSettings) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::adaptive().with_max_attempts(settings.max_attempts),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(settings.attempt_timeout)
                .build(),
        )
        .load()
        .await
}
