//! The image model behind `/v1/generate`: a Bedrock image model on AWS
//! (`IMAGE_GENERATION_MODEL_ID`), an OpenAI-compatible server offline (`IMAGE_GENERATION_URL`),
//! or none — then `/v1/generate` answers 503 naming the variable.

use std::sync::Arc;
use std::time::Duration;

use moderation_core::chain::config::{Backend, Vars};
use moderation_core::ports::ImageGenerator;
use moderation_core::{Error, Result};

/// What `/v1/generate` answers when no image model is configured.
pub const NO_IMAGE_MODEL: &str = "no image model is configured: set IMAGE_GENERATION_URL (an \
     OpenAI-compatible /v1/images/generations server) offline, or IMAGE_GENERATION_MODEL_ID (a \
     Bedrock image model such as amazon.nova-canvas-v1:0) on AWS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationConfig {
    /// `IMAGE_GENERATION_MODEL_ID`: a Bedrock image model (AWS backend).
    pub model_id: Option<String>,
    /// `IMAGE_GENERATION_URL`: an OpenAI-compatible API base (offline backend).
    pub url: Option<String>,
    /// `IMAGE_GENERATION_MODEL`: the model name sent to that server.
    pub model: String,
    /// `IMAGE_GENERATION_TIMEOUT_MS` (default 60,000).
    pub timeout: Duration,
}

impl GenerationConfig {
    pub fn from_vars(v: &Vars) -> Result<Self> {
        if let Some(endpoint) = v.get("IMAGE_GENERATION_ENDPOINT") {
            // Said at start-up rather than ignored: a user who set it expects it to be used.
            return Err(Error::InvalidVar {
                var: "IMAGE_GENERATION_ENDPOINT".into(),
                value: endpoint,
                reason: "SageMaker endpoints are not supported yet; use \
                         IMAGE_GENERATION_MODEL_ID (Bedrock)"
                    .into(),
            });
        }
        Ok(GenerationConfig {
            model_id: v.get("IMAGE_GENERATION_MODEL_ID"),
            url: v.get("IMAGE_GENERATION_URL"),
            model: v.or("IMAGE_GENERATION_MODEL", "stable-diffusion"),
            timeout: Duration::from_millis(v.count("IMAGE_GENERATION_TIMEOUT_MS", 60_000)? as u64),
        })
    }
}

/// The generator for the backend, or why there is none.
pub async fn build(
    config: &GenerationConfig,
    text: &screen_text::Config,
) -> Result<std::result::Result<Arc<dyn ImageGenerator>, String>> {
    match &text.backend {
        Backend::Offline { .. } => offline(config),
        Backend::Aws => aws(config, text).await,
    }
}

pub fn offline(
    config: &GenerationConfig,
) -> Result<std::result::Result<Arc<dyn ImageGenerator>, String>> {
    let Some(url) = &config.url else {
        return Ok(Err(NO_IMAGE_MODEL.into()));
    };
    let model = moderation_offline::OpenAiImages::new(url, &config.model, config.timeout)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(Ok(Arc::new(model)))
}

#[cfg(feature = "aws")]
async fn aws(
    config: &GenerationConfig,
    text: &screen_text::Config,
) -> Result<std::result::Result<Arc<dyn ImageGenerator>, String>> {
    let Some(model_id) = &config.model_id else {
        return Ok(Err(NO_IMAGE_MODEL.into()));
    };
    let sdk = moderation_aws::load_sdk_config(&text.sdk).await;
    Ok(Ok(Arc::new(
        moderation_aws::BedrockImages::from_sdk_config(&sdk, model_id),
    )))
}

#[cfg(not(feature = "aws"))]
async fn aws(
    _: &GenerationConfig,
    _: &screen_text::Config,
) -> Result<std::result::Result<Arc<dyn ImageGenerator>, String>> {
    Err(moderation_core::chain::config::aws_not_built())
}
