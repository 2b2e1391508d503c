//! `InvokeEndpoint` on a SageMaker endpoint that serves a Stable Diffusion model. The two
//! request shapes in use: Stability's (`text_prompts` with weights, the negative prompt at
//! weight -1; SDXL on JumpStart and Stability's own containers) and the older JumpStart
//! text-to-image one (`prompt` / `negative_prompt`). Their answers carry the picture as
//! `artifacts[].base64`, `generated_images[]` or `images[]`; all three are read.

use async_trait::async_trait;
use aws_sdk_sagemakerruntime::primitives::Blob;
use base64::Engine;
use moderation_core::error::ServiceErrorKind;
use moderation_core::ports::{EndpointFormat, ImageGenerator};
use moderation_core::Result as CoreResult;
use serde_json::{json, Value};

use crate::errors::classify;

const SERVICE: &str = "sagemaker-runtime";

/// The `Accept` header: JumpStart's containers pick the picture's encoding from it.
fn accept(format: EndpointFormat) -> &'static str {
    match format {
        EndpointFormat::Stability => "application/json",
        EndpointFormat::JumpStart => "application/json;jpeg",
    }
}
pub fn request_body(format: EndpointFormat, prompt: &str, negative: &str) -> Value {
    match format {
        EndpointFormat::Stability => {
            let mut prompts = vec![json!({"text": prompt, "weight": 1.0})];
            if !negative.is_empty() {
                prompts.push(json!({"text": negative, "weight": -1.0}));
            }
            // No size: SDXL takes only its own list of sizes, and the container's default is one.
            json!({"text_prompts": prompts, "samples": 1})
        }
        EndpointFormat::JumpStart => {
            let mut body = json!({"prompt": prompt, "num_images_per_prompt": 1});
            if !negative.is_empty() {
                body["negative_prompt"] = json!(negative);
            }
            body
        }
    }
}

/// The first picture of the endpoint's answer, or what it said instead.
pub fn first_image(body: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    for key in ["error", "message"] {
        if let Some(e) = v[key].as_str().filter(|e| !e.is_empty()) {
            return Err(e.to_string());
        }
    }
    let (b64, field) = if let Some(artifact) = v["artifacts"].get(0) {
        // Stability marks a picture its own filter blurred or failed to make.
        match artifact["finishReason"].as_str() {
            None | Some("SUCCESS") => {}
            Some(reason) => return Err(format!("the model stopped: {reason}")),
        }
        (artifact["base64"].as_str(), "artifacts[0].base64")
    } else if v.get("generated_images").is_some() {
        (v["generated_images"][0].as_str(), "generated_images[0]")
    } else {
        (v["images"][0].as_str(), "images[0]")
    };
    let b64 = b64.ok_or(
        "the answer has no picture (artifacts[0].base64, generated_images[0] or images[0])",
    )?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("{field} is not base64: {e}"))
}

pub struct SageMakerImages {
    client: aws_sdk_sagemakerruntime::Client,
    endpoint: String,
    format: EndpointFormat,
}

impl SageMakerImages {
    pub fn new(
        client: aws_sdk_sagemakerruntime::Client,
        endpoint: &str,
        format: EndpointFormat,
    ) -> Self {
        SageMakerImages {
            client,
            endpoint: endpoint.to_string(),
            format,
        }
    }

    pub fn from_sdk_config(
        config: &aws_config::SdkConfig,
        endpoint: &str,
        format: EndpointFormat,
    ) -> Self {
        Self::new(
            aws_sdk_sagemakerruntime::Client::new(config),
            endpoint,
            format,
        )
    }
}

#[async_trait]
impl ImageGenerator for SageMakerImages {
    fn name(&self) -> &str {
        &self.endpoint
    }

    async fn generate(&self, prompt: &str, negative_prompt: &str) -> CoreResult<Vec<u8>> {
        let body = request_body(self.format, prompt, negative_prompt);
        let out = self
            .client
            .invoke_endpoint()
            .endpoint_name(&self.endpoint)
            .content_type("application/json")
            .accept(accept(self.format))
            .body(Blob::new(body.to_string()))
            .send()
            .await
            .map_err(|e| classify(SERVICE, e))?;
        let answer = out.body().map(|b| b.as_ref()).unwrap_or_default();
        first_image(answer)
            .map_err(|why| moderation_core::Error::service(SERVICE, ServiceErrorKind::Other, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sagemakerruntime::operation::invoke_endpoint::{
        InvokeEndpointError, InvokeEndpointOutput,
    };
    use aws_sdk_sagemakerruntime::types::error::ModelError;
    use aws_smithy_mocks::{mock, mock_client};

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn each_container_gets_its_own_body() {
        let sdxl = request_body(EndpointFormat::Stability, "a knight", "gore");
        assert_eq!(sdxl["text_prompts"][0]["text"], "a knight");
        assert_eq!(sdxl["text_prompts"][1]["weight"], -1.0);
        let bare = request_body(EndpointFormat::Stability, "a knight", "");
        assert_eq!(bare["text_prompts"].as_array().map(Vec::len), Some(1));
        let js = request_body(EndpointFormat::JumpStart, "a knight", "gore");
        assert_eq!(js["negative_prompt"], "gore");
        assert!(request_body(EndpointFormat::JumpStart, "a", "")
            .get("negative_prompt")
            .is_none());
        assert_eq!(
            EndpointFormat::parse(" JumpStart "),
            Some(EndpointFormat::JumpStart)
        );
        assert_eq!(EndpointFormat::parse("sd"), None);
    }

    #[test]
    fn the_picture_from_any_of_the_three_answers_or_why_there_is_none() {
        let png = b"\x89PNG";
        for answer in [
            format!(
                r#"{{"artifacts":[{{"base64":"{}","finishReason":"SUCCESS"}}]}}"#,
                b64(png)
            ),
            format!(r#"{{"generated_images":["{}"],"prompt":"a"}}"#, b64(png)),
            format!(r#"{{"images":["{}"]}}"#, b64(png)),
        ] {
            assert_eq!(first_image(answer.as_bytes()), Ok(png.to_vec()), "{answer}");
        }
        let filtered = br#"{"artifacts":[{"base64":"","finishReason":"CONTENT_FILTERED"}]}"#;
        assert!(first_image(filtered)
            .expect_err("filtered")
            .contains("CONTENT_FILTERED"));
        assert!(first_image(br#"{"message":"CUDA out of memory"}"#)
            .expect_err("said")
            .contains("CUDA"));
        assert!(first_image(br#"{"generated_images":[]}"#).is_err());
        assert!(first_image(br#"{"images":["%%%"]}"#)
            .expect_err("not base64")
            .contains("images[0]"));
        assert!(first_image(b"<html>").is_err());
    }

    #[tokio::test]
    async fn invokes_the_endpoint_with_the_negative_prompt_and_reads_its_picture() {
        let png = b"\x89PNG\r\n".to_vec();
        let answer = format!(r#"{{"artifacts":[{{"base64":"{}"}}]}}"#, b64(&png));
        let rule = mock!(aws_sdk_sagemakerruntime::Client::invoke_endpoint)
            .match_requests(|r| {
                let body: Value = r
                    .body()
                    .map(|b| serde_json::from_slice(b.as_ref()).unwrap_or_default())
                    .unwrap_or_default();
                r.endpoint_name() == Some("sdxl-1")
                    && r.content_type() == Some("application/json")
                    && body["text_prompts"][1]["text"] == "gore"
            })
            .then_output(move || {
                InvokeEndpointOutput::builder()
                    .body(Blob::new(answer.clone()))
                    .build()
            });
        let model = SageMakerImages::new(
            mock_client!(aws_sdk_sagemakerruntime, [&rule]),
            "sdxl-1",
            EndpointFormat::Stability,
        );
        assert_eq!(model.generate("a knight", "gore").await.ok(), Some(png));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_container_error_is_a_service_error_naming_sagemaker() {
        let rule = mock!(aws_sdk_sagemakerruntime::Client::invoke_endpoint).then_error(|| {
            InvokeEndpointError::ModelError(
                ModelError::builder()
                    .message("Received server error (500) from primary")
                    .build(),
            )
        });
        let model = SageMakerImages::new(
            mock_client!(aws_sdk_sagemakerruntime, [&rule]),
            "sd",
            EndpointFormat::JumpStart,
        );
        let err = model.generate("a", "").await.expect_err("fails");
        assert!(err.to_string().contains("sagemaker-runtime"), "{err}");
    }
}
