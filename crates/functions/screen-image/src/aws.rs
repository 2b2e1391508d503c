//! The AWS backend's image adapters: Rekognition labels and text (transcribe-audio uses them
//! for a user report's screenshots too). Without the `aws` feature, a configuration error.

use std::sync::Arc;

use moderation_core::ports::{ImageModerator, ImageTextReader};
use moderation_core::Result;

/// Rekognition's `DetectModerationLabels` and `DetectText`, paced together.
#[cfg(feature = "aws")]
pub async fn rekognition(
    text: &screen_text::Config,
) -> Result<(Arc<dyn ImageModerator>, Arc<dyn ImageTextReader>)> {
    use moderation_aws::{load_sdk_config, Rates, RekognitionImages};
    let sdk = load_sdk_config(&text.sdk).await;
    let pacer = Rates::pacer(text.sdk.rates.rekognition, "rekognition");
    let images = Arc::new(RekognitionImages::from_sdk_config(&sdk).with_pacer(pacer));
    Ok((images.clone(), images))
}

#[cfg(not(feature = "aws"))]
pub async fn rekognition(
    _: &screen_text::Config,
) -> Result<(Arc<dyn ImageModerator>, Arc<dyn ImageTextReader>)> {
    Err(moderation_core::chain::config::aws_not_built())
}
