//! `InvokeModel` on a Bedrock image model: Amazon Nova Canvas / Titan Image Generator
//! (`TEXT_IMAGE` task) or Stability (SD3.5, Stable Image). Each family has its own body; the
//! answer is base64 pictures in `images`.

use async_trait::async_trait;
use aws_sdk_bedrockruntime::primitives::Blob;
use base64::Engine;
use moderation_core::error::ServiceErrorKind;
use moderation_core::ports::ImageGenerator;
use moderation_core::Result as CoreResult;
use serde_json::{json, Value};

use crate::errors::classify;

const SERVICE: &str = "bedrock-runtime";

/// The request body for `model_id`: Stability's models take `prompt` / `negative_prompt`,
/// Amazon's a `TEXT_IMAGE` task. Nova Canvas refuses an empty `negativeText`.
pub fn request_body(model_id: &str, prompt: &str, negative: &str) -> Value {
    if model_id.contains("stability.") {
        let mut body = json!({"prompt": prompt, "mode": "text-to-image", "output_format": "png"});
        if !negative.is_empty() {
            body["negative_prompt"] = json!(negative);
        }
        return body;
    }
    let mut params = json!({"text": prompt});
    if !negative.is_empty() {
        // Nova Canvas and Titan cap the negative text at 1,024 characters.
        params["negativeText"] = json!(negative.chars().take(1024).collect::<String>());
    }
    json!({
        "taskType": "TEXT_IMAGE",
        "textToImageParams": params,
        "imageGenerationConfig": {"numberOfImages": 1, "width": 512, "height": 512},
    })
}

/// The first picture of a model's answer, or what the model said instead.
pub fn first_image(body: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(e) = v["error"].as_str().filter(|e| !e.is_empty()) {
        return Err(e.to_string());
    }
    if let Some(reason) = v["finish_reasons"][0].as_str() {
        // Stability's own filter: the picture is blank or missing.
        return Err(format!("the model stopped: {reason}"));
    }
    let b64 = v["images"][0]
        .as_str()
        .ok_or("the answer has no images[0]")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("images[0] is not base64: {e}"))
}

pub struct BedrockImages {
    client: aws_sdk_bedrockruntime::Client,
    model_id: String,
}

impl BedrockImages {
    pub fn from_sdk_config(config: &aws_config::SdkConfig, model_id: &str) -> Self {
        BedrockImages {
            client: aws_sdk_bedrockruntime::Client::new(config),
            model_id: model_id.to_string(),
        }
    }
}

#[async_trait]
impl ImageGenerator for BedrockImages {
    fn name(&self) -> &str {
        &self.model_id
    }

    async fn generate(&self, prompt: &str, negative_prompt: &str) -> CoreResult<Vec<u8>> {
        let body = request_body(&self.model_id, prompt, negative_prompt);
        let out = self
            .client
            .invoke_model()
            .model_id(&self.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body.to_string()))
            .send()
            .await
            .map_err(|e| classify(SERVICE, e))?;
        first_image(out.body().as_ref())
            .map_err(|why| moderation_core::Error::service(SERVICE, ServiceErrorKind::Other, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_gets_its_own_body() {
        let nova = request_body("amazon.nova-canvas-v1:0", "a knight", "gore, nudity");
        assert_eq!(nova["taskType"], "TEXT_IMAGE");
        assert_eq!(nova["textToImageParams"]["negativeText"], "gore, nudity");
        let bare = request_body("amazon.nova-canvas-v1:0", "a knight", "");
        assert!(bare["textToImageParams"].get("negativeText").is_none());
        let sd = request_body("stability.sd3-5-large-v1:0", "a knight", "gore");
        assert_eq!(sd["negative_prompt"], "gore");
        assert_eq!(sd["mode"], "text-to-image");
    }

    #[test]
    fn the_first_picture_or_the_model_refusal() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG");
        let ok = format!(r#"{{"images":["{png}"]}}"#);
        assert_eq!(first_image(ok.as_bytes()), Ok(b"\x89PNG".to_vec()));
        let refused =
            br#"{"images":[],"error":"This request has been blocked by our content filters."}"#;
        assert!(first_image(refused)
            .expect_err("refused")
            .contains("content filters"));
        let filtered = br#"{"images":[""],"finish_reasons":["Filter reason: prompt"]}"#;
        assert!(first_image(filtered).is_err());
        assert!(first_image(b"{}").is_err());
    }
}
