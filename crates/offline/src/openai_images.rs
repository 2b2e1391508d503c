//! An OpenAI-compatible `/v1/images/generations` client (a local Stable Diffusion server such
//! as LocalAI or stable-diffusion.cpp's server) for `/v1/generate` without AWS. The negative
//! prompt travels as `negative_prompt`, the extension those servers read.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use moderation_core::error::ServiceErrorKind;
use moderation_core::ports::ImageGenerator;
use moderation_core::{Error as CoreError, Result as CoreResult};

use crate::openai::post_json;
use serde_json::{json, Value};

const SERVICE: &str = "local-image-model";

pub struct OpenAiImages {
    url: String,
    model: String,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl OpenAiImages {
    /// `base` is the API base (`http://127.0.0.1:7860/v1`) or the full
    /// `.../images/generations` URL.
    pub fn new(base: &str, model: &str, timeout: Duration) -> Result<Self, crate::error::Error> {
        if !base.starts_with("http://") {
            return Err(crate::error::Error::LlmEndpoint {
                endpoint: base.to_string(),
                reason: "IMAGE_GENERATION_URL: only http:// endpoints (a local server)".into(),
            });
        }
        let base = base.trim_end_matches('/');
        let url = if base.ends_with("/images/generations") {
            base.to_string()
        } else {
            format!("{base}/images/generations")
        };
        Ok(OpenAiImages {
            url,
            model: model.to_string(),
            timeout,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }
}

fn fail(kind: ServiceErrorKind, msg: impl Into<String>) -> CoreError {
    CoreError::service(SERVICE, kind, msg.into())
}

/// The first picture of an answer (`data[0].b64_json`).
pub fn first_picture(body: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let b64 = v["data"][0]["b64_json"]
        .as_str()
        .ok_or("the answer has no data[0].b64_json")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("data[0].b64_json is not base64: {e}"))
}

#[async_trait]
impl ImageGenerator for OpenAiImages {
    fn name(&self) -> &str {
        &self.model
    }

    async fn generate(&self, prompt: &str, negative_prompt: &str) -> CoreResult<Vec<u8>> {
        let body = json!({
            "model": self.model, "prompt": prompt, "negative_prompt": negative_prompt,
            "n": 1, "size": "512x512", "response_format": "b64_json",
        });
        let bytes = post_json(&self.client, &self.url, None, &body, self.timeout, SERVICE).await?;
        first_picture(&bytes).map_err(|why| fail(ServiceErrorKind::Other, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_the_base_or_the_route_and_only_plain_http() {
        let a = OpenAiImages::new("http://127.0.0.1:7860/v1/", "sd", Duration::from_secs(1))
            .expect("ok");
        assert_eq!(a.url, "http://127.0.0.1:7860/v1/images/generations");
        let b = OpenAiImages::new(
            "http://h:1/v1/images/generations",
            "sd",
            Duration::from_secs(1),
        )
        .expect("ok");
        assert_eq!(b.url, "http://h:1/v1/images/generations");
        assert!(OpenAiImages::new("https://x", "sd", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn the_answer_must_hold_a_picture() {
        assert_eq!(
            first_picture(br#"{"data":[{"b64_json":"iVBORw=="}]}"#),
            Ok(vec![0x89, 0x50, 0x4e, 0x47])
        );
        assert!(first_picture(br#"{"data":[]}"#).is_err());
        assert!(first_picture(b"<html>").is_err());
    }
}
