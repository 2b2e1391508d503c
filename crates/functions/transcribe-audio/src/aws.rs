//! The AWS backend's speech adapter: Amazon Transcribe. Without the `aws` feature, a
//! configuration error.

use std::sync::Arc;

use moderation_core::ports::TranscriptionJobs;
use moderation_core::Result;

use crate::Config;

#[cfg(feature = "aws")]
pub(crate) async fn transcribe_jobs(config: &Config) -> Result<Arc<dyn TranscriptionJobs>> {
    // A language Transcribe cannot identify stops start-up, not every job.
    moderation_aws::transcribe::check_languages(&config.languages)?;
    let sdk = moderation_aws::load_sdk_config(&config.text.sdk).await;
    Ok(Arc::new(moderation_aws::TranscribeJobs::from_sdk_config(
        &sdk,
    )))
}

#[cfg(not(feature = "aws"))]
pub(crate) async fn transcribe_jobs(_: &Config) -> Result<Arc<dyn TranscriptionJobs>> {
    Err(moderation_core::chain::config::aws_not_built())
}
