//! The AWS backend: S3 for the documents and presigned links for the media players. Without
//! the `aws` feature, a configuration error.

use moderation_core::Result;

use crate::{App, Config};

#[cfg(feature = "aws")]
pub(crate) async fn build(config: &Config) -> Result<App> {
    let sdk = moderation_aws::load_sdk_config(&config.sdk).await;
    let s3 = std::sync::Arc::new(
        moderation_aws::S3Store::from_sdk_config(&sdk).with_presign_expiry(config.presign_expiry),
    );
    Ok(App::from_parts(s3.clone(), config).with_media(s3))
}

#[cfg(not(feature = "aws"))]
pub(crate) async fn build(_: &Config) -> Result<App> {
    Err(moderation_core::chain::config::aws_not_built())
}
