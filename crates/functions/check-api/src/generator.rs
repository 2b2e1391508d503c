//! The image model behind `/v1/generate`: on AWS a Bedrock image model
//! (`IMAGE_GENERATION_MODEL_ID`) or a SageMaker endpoint (`IMAGE_GENERATION_ENDPOINT`), offline
//! an OpenAI-compatible server (`IMAGE_GENERATION_URL`), or none — then `/v1/generate` answers
//! 503 naming the variable.

use std::sync::Arc;
use std::time::Duration;

use moderation_core::chain::config::{Backend, Vars};
use moderation_core::ports::{EndpointFormat, ImageGenerator};
use moderation_core::{Error, Result};

/// What `/v1/generate` answers when no image model is configured.
pub const NO_IMAGE_MODEL: &str = "no image model is configured: set IMAGE_GENERATION_URL (an \
     OpenAI-compatible /v1/images/generations server) offline, or IMAGE_GENERATION_MODEL_ID (a \
     Bedrock image model such as amazon.nova-canvas-v1:0) or IMAGE_GENERATION_ENDPOINT (a \
     SageMaker endpoint) on AWS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationConfig {
    /// `IMAGE_GENERATION_MODEL_ID`: a Bedrock image model (AWS backend).
    pub model_id: Option<String>,
    /// `IMAGE_GENERATION_ENDPOINT`: a SageMaker endpoint (AWS backend), and the request shape
    /// its container takes (`IMAGE_GENERATION_ENDPOINT_FORMAT`: stability or jumpstart).
    pub endpoint: Option<(String, EndpointFormat)>,
    /// `IMAGE_GENERATION_URL`: an OpenAI-compatible API base (offline backend).
    pub url: Option<String>,
    /// `IMAGE_GENERATION_MODEL`: the model name sent to that server.
    pub model: String,
    /// `IMAGE_GENERATION_TIMEOUT_MS` (default 60,000).
    pub timeout: Duration,
}

impl GenerationConfig {
    pub fn from_vars(v: &Vars) -> Result<Self> {
        let model_id = v.get("IMAGE_GENERATION_MODEL_ID");
        let endpoint = match v.get("IMAGE_GENERATION_ENDPOINT") {
            None => None,
            // Two models for one route is a mistake to say at start-up, not a silent choice.
            Some(endpoint) if model_id.is_some() => {
                return Err(Error::InvalidVar {
                    var: "IMAGE_GENERATION_ENDPOINT".into(),
                    value: endpoint,
                    reason: "IMAGE_GENERATION_MODEL_ID is set too; set one of them".into(),
                })
            }
            Some(endpoint) => Some((endpoint, endpoint_format(v)?)),
        };
        Ok(GenerationConfig {
            model_id,
            endpoint,
            url: v.get("IMAGE_GENERATION_URL"),
            model: v.or("IMAGE_GENERATION_MODEL", "stable-diffusion"),
            timeout: Duration::from_millis(v.count("IMAGE_GENERATION_TIMEOUT_MS", 60_000)? as u64),
        })
    }
}

fn endpoint_format(v: &Vars) -> Result<EndpointFormat> {
    let raw = v.or("IMAGE_GENERATION_ENDPOINT_FORMAT", "stability");
    EndpointFormat::parse(&raw).ok_or(Error::InvalidVar {
        var: "IMAGE_GENERATION_ENDPOINT_FORMAT".into(),
        value: raw,
        reason: "expected stability (text_prompts) or jumpstart (prompt / negative_prompt)".into(),
    })
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
    if config.model_id.is_none() && config.endpoint.is_none() {
        return Ok(Err(NO_IMAGE_MODEL.into()));
    }
    let sdk = moderation_aws::load_sdk_config(&text.sdk).await;
    let model: Arc<dyn ImageGenerator> = match (&config.model_id, &config.endpoint) {
        (Some(model_id), _) => Arc::new(moderation_aws::BedrockImages::from_sdk_config(
            &sdk, model_id,
        )),
        (None, Some((endpoint, format))) => Arc::new(
            moderation_aws::SageMakerImages::from_sdk_config(&sdk, endpoint, *format),
        ),
        (None, None) => return Ok(Err(NO_IMAGE_MODEL.into())),
    };
    Ok(Ok(Arc::new(WithinTime {
        model,
        limit: config.timeout,
    })))
}

/// An AWS image model held to `IMAGE_GENERATION_TIMEOUT_MS`: the SDK's timeouts are per
/// attempt, and a picture later than that is not worth waiting (or paying) for again.
#[cfg(feature = "aws")]
struct WithinTime {
    model: Arc<dyn ImageGenerator>,
    limit: Duration,
}

#[cfg(feature = "aws")]
#[async_trait::async_trait]
impl ImageGenerator for WithinTime {
    fn name(&self) -> &str {
        self.model.name()
    }

    async fn generate(&self, prompt: &str, negative_prompt: &str) -> Result<Vec<u8>> {
        let limit = self.limit;
        tokio::time::timeout(limit, self.model.generate(prompt, negative_prompt))
            .await
            .unwrap_or_else(|_| {
                Err(Error::service(
                    "image model",
                    moderation_core::error::ServiceErrorKind::Timeout,
                    format!(
                        "no picture within {} ms (IMAGE_GENERATION_TIMEOUT_MS)",
                        limit.as_millis()
                    ),
                ))
            })
    }
}

#[cfg(not(feature = "aws"))]
async fn aws(
    _: &GenerationConfig,
    _: &screen_text::Config,
) -> Result<std::result::Result<Arc<dyn ImageGenerator>, String>> {
    Err(moderation_core::chain::config::aws_not_built())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<GenerationConfig> {
        GenerationConfig::from_vars(&Vars::from_pairs(pairs))
    }

    #[test]
    fn a_sagemaker_endpoint_with_its_request_shape() {
        let c = config(&[("IMAGE_GENERATION_ENDPOINT", "sdxl-1")]).expect("valid");
        assert_eq!(
            c.endpoint,
            Some(("sdxl-1".into(), EndpointFormat::Stability))
        );
        let c = config(&[
            ("IMAGE_GENERATION_ENDPOINT", "sd-21"),
            ("IMAGE_GENERATION_ENDPOINT_FORMAT", "jumpstart"),
        ])
        .expect("valid");
        assert_eq!(c.endpoint.map(|e| e.1), Some(EndpointFormat::JumpStart));
    }

    #[cfg(feature = "aws")]
    #[tokio::test]
    async fn an_aws_model_slower_than_its_time_is_a_timeout_naming_the_setting() {
        struct Slow;
        #[async_trait::async_trait]
        impl ImageGenerator for Slow {
            fn name(&self) -> &str {
                "slow"
            }
            async fn generate(&self, _: &str, _: &str) -> Result<Vec<u8>> {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(b"late".to_vec())
            }
        }
        let model = WithinTime {
            model: Arc::new(Slow),
            limit: Duration::from_millis(20),
        };
        let e = model.generate("a", "b").await.expect_err("too slow");
        assert!(e.to_string().contains("IMAGE_GENERATION_TIMEOUT_MS"), "{e}");
    }

    #[test]
    fn two_models_or_an_unknown_shape_stop_start_up_by_name() {
        let both = config(&[
            ("IMAGE_GENERATION_ENDPOINT", "sdxl-1"),
            ("IMAGE_GENERATION_MODEL_ID", "amazon.nova-canvas-v1:0"),
        ])
        .expect_err("ambiguous");
        assert!(
            both.to_string().contains("IMAGE_GENERATION_MODEL_ID"),
            "{both}"
        );
        let shape = config(&[
            ("IMAGE_GENERATION_ENDPOINT", "sdxl-1"),
            ("IMAGE_GENERATION_ENDPOINT_FORMAT", "diffusers"),
        ])
        .expect_err("unknown");
        assert!(
            shape
                .to_string()
                .contains("IMAGE_GENERATION_ENDPOINT_FORMAT"),
            "{shape}"
        );
    }
}
