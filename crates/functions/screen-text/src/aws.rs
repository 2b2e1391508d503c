//! The AWS backend's adapters: S3, Comprehend (toxicity and languages) and Translate. Without
//! the `aws` feature (modctl's offline build) asking for them is a configuration error.

use std::sync::Arc;

use moderation_core::ports::ObjectStore;
use moderation_core::Result;

use crate::{Adapters, Config};

#[cfg(feature = "aws")]
pub(crate) async fn adapters(
    store: Option<Arc<dyn ObjectStore>>,
    config: &Config,
) -> Result<Adapters> {
    use moderation_aws::{
        load_sdk_config, ComprehendDetector, ComprehendLanguages, Rates, S3Store,
        TranslateToEnglish,
    };
    let sdk = load_sdk_config(&config.sdk).await;
    let comprehend = Rates::pacer(config.sdk.rates.comprehend, "comprehend");
    Ok(Adapters {
        store: store.unwrap_or_else(|| Arc::new(S3Store::from_sdk_config(&sdk))),
        detector: Arc::new(ComprehendDetector::from_sdk_config(&sdk).with_pacer(comprehend)),
        languages: Some((
            Arc::new(ComprehendLanguages::from_sdk_config(&sdk)),
            Arc::new(TranslateToEnglish::from_sdk_config(&sdk)),
        )),
    })
}

#[cfg(not(feature = "aws"))]
pub(crate) async fn adapters(_: Option<Arc<dyn ObjectStore>>, _: &Config) -> Result<Adapters> {
    Err(moderation_core::chain::config::aws_not_built())
}
