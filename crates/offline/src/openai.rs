//! An OpenAI-compatible chat-completions client (llama.cpp server, Ollama, vLLM) so offline
//! users can put a local LLM behind the same prompt and strict parser as Bedrock Converse.
//! Plain HTTP only: these servers listen on localhost; put TLS in front if it must travel.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use moderation_core::error::ServiceErrorKind;
use moderation_core::ports::{ChatModel, ChatReply, Picture};
use moderation_core::{Error as CoreError, Result as CoreResult};
use serde_json::{json, Value};

const SERVICE: &str = "local-llm";

#[derive(Clone)]
pub struct OpenAiChatModel {
    endpoint: String,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl OpenAiChatModel {
    /// `endpoint` is the API base, e.g. `http://127.0.0.1:8080/v1`.
    pub fn new(
        endpoint: &str,
        model: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, crate::error::Error> {
        if !endpoint.starts_with("http://") {
            return Err(crate::error::Error::LlmEndpoint {
                endpoint: endpoint.to_string(),
                reason: "only http:// endpoints are supported (a local server)".into(),
            });
        }
        Ok(OpenAiChatModel {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
            timeout,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }
}

fn fail(kind: ServiceErrorKind, msg: impl Into<String>) -> CoreError {
    CoreError::service(SERVICE, kind, msg.into())
}

/// POST `body` as JSON to a local server and read the whole answer within `timeout`; an HTTP
/// error becomes a service error of its kind (429 throttled, 5xx unavailable, 401/403 denied)
/// carrying the start of what the server said.
pub(crate) async fn post_json(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    api_key: Option<&str>,
    body: &Value,
    timeout: Duration,
    service: &'static str,
) -> CoreResult<Bytes> {
    let fail = |kind, msg: String| CoreError::service(service, kind, msg);
    let mut req = hyper::Request::post(url).header("content-type", "application/json");
    if let Some(key) = api_key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| fail(ServiceErrorKind::InvalidInput, e.to_string()))?;
    let call = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| fail(ServiceErrorKind::Unavailable, e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(ServiceErrorKind::Unavailable, e.to_string()))?
            .to_bytes();
        Ok::<_, CoreError>((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(timeout, call).await.map_err(|_| {
        fail(
            ServiceErrorKind::Timeout,
            format!("no answer in {timeout:?}"),
        )
    })??;
    if !status.is_success() {
        let kind = match status.as_u16() {
            429 => ServiceErrorKind::Throttled,
            500..=599 => ServiceErrorKind::Unavailable,
            401 | 403 => ServiceErrorKind::Permission,
            _ => ServiceErrorKind::InvalidInput,
        };
        let shown: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
        return Err(fail(kind, format!("HTTP {status}: {shown}")));
    }
    Ok(bytes)
}

#[async_trait]
impl ChatModel for OpenAiChatModel {
    fn model(&self) -> &str {
        &self.model
    }

    async fn complete(&self, system: &str, user: &str) -> CoreResult<ChatReply> {
        self.chat(system, json!(user)).await
    }

    /// The picture as a `data:` URL in an `image_url` part, as multimodal OpenAI-compatible
    /// servers (llama.cpp with a vision projector, Ollama, vLLM) take it.
    async fn complete_with_image(
        &self,
        system: &str,
        user: &str,
        image: Picture<'_>,
    ) -> CoreResult<ChatReply> {
        let url = format!(
            "data:image/{};base64,{}",
            image.format,
            base64::engine::general_purpose::STANDARD.encode(image.bytes)
        );
        self.chat(
            system,
            json!([
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": user},
            ]),
        )
        .await
    }
}

impl OpenAiChatModel {
    async fn chat(&self, system: &str, user: Value) -> CoreResult<ChatReply> {
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "max_tokens": 512,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
        });
        let url = format!("{}/chat/completions", self.endpoint);
        let key = self.api_key.as_deref();
        let bytes = post_json(&self.client, &url, key, &body, self.timeout, SERVICE).await?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(ServiceErrorKind::Other, format!("not JSON: {e}")))?;
        let text = v["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| fail(ServiceErrorKind::Other, "no choices[0].message.content"))?;
        Ok(ChatReply {
            text: text.to_string(),
            input_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            output_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        })
    }
}
