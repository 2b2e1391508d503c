//! A scripted checker and request helpers shared by the API's tests.
#![allow(dead_code)] // each test file uses its own share

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use moderation_core::model::{Item, Usage, Verdict};
use moderation_core::stages::check::generate::{Generation, ModelFailed};
use moderation_core::stages::check::image::{ImageCheck, ImageRefusal};
use moderation_core::stages::check::text::{TextCheck, TextDecision, TextRequest};
use moderation_core::stages::check::{Decision, PromptCheck};
use moderation_http::{router, Checker, Settings};
use serde_json::Value;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// A PNG signature and then `tail`: enough for the route, which checks the signature; the
/// scripted checker reads `tail`.
pub fn png(tail: &[u8]) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(tail);
    b
}

fn text_check(text: &str, bad: bool) -> TextCheck {
    let mut item = Item::new("message-0", text);
    item.toxicity = if bad { 0.97 } else { 0.02 };
    item.verdict = Some(if bad {
        Verdict::Violation
    } else {
        Verdict::BelowThreshold
    });
    TextCheck {
        decision: if bad {
            TextDecision::Block
        } else {
            TextDecision::Allow
        },
        reasons: if bad {
            vec!["toxicity 0.97".into()]
        } else {
            vec![]
        },
        item,
    }
}

/// Blocks what says "kill", allows the rest; `gate` (when set) holds every check until a
/// permit is added, to fill the server.
pub struct Scripted {
    pub gate: Option<Arc<Semaphore>>,
    /// How long each text check takes.
    pub delay: Duration,
    pub negative: Vec<String>,
}

impl Scripted {
    pub fn new() -> Self {
        Scripted {
            gate: None,
            delay: Duration::ZERO,
            negative: vec!["nudity".into(), "gore".into()],
        }
    }
}

#[async_trait]
impl Checker for Scripted {
    async fn check_texts(&self, requests: &[TextRequest]) -> Vec<TextCheck> {
        if let Some(gate) = &self.gate {
            let _held = gate.acquire().await;
        }
        tokio::time::sleep(self.delay).await;
        requests
            .iter()
            .map(|r| text_check(&r.text, r.text.contains("kill")))
            .collect()
    }

    async fn check_prompt(&self, prompt: &str) -> PromptCheck {
        PromptCheck {
            decision: if prompt.contains("gore") {
                Decision::Warn
            } else {
                Decision::Allow
            },
            reasons: vec![],
            item: Item::new("prompt", prompt),
            usage: Usage::default(),
        }
    }

    fn negative_prompts(&self) -> &[String] {
        &self.negative
    }

    /// Blocks a picture whose bytes end in "unsafe"; refuses "huge" as too large.
    async fn check_image(&self, bytes: Vec<u8>) -> Result<ImageCheck, ImageRefusal> {
        if bytes.ends_with(b"huge") {
            return Err(ImageRefusal::TooLarge {
                bytes: bytes.len(),
                limit: 4,
            });
        }
        let bad = bytes.ends_with(b"unsafe");
        let mut item = text_check("[image]", bad);
        item.item.id = "image".into();
        Ok(ImageCheck {
            decision: item.decision,
            reasons: item.reasons.iter().map(|r| format!("image: {r}")).collect(),
            items: vec![item],
            findings: None,
        })
    }

    /// "offline" in the prompt: no model; "kill": the prompt is blocked; "gore": the picture is.
    async fn generate(&self, prompt: &str, _negative: &str) -> Result<Generation, ModelFailed> {
        if prompt.contains("offline") {
            return Err(ModelFailed(
                "no image model: set IMAGE_GENERATION_URL".into(),
            ));
        }
        let prompt_check = self.check_prompt(prompt).await;
        if prompt.contains("kill") {
            return Ok(Generation {
                decision: TextDecision::Block,
                image: None,
                warnings: vec!["prompt: toxicity 0.97".into()],
                prompt: prompt_check,
                check: None,
            });
        }
        let picture = png(if prompt.contains("gore") {
            b"unsafe"
        } else {
            b"fine"
        });
        let check = self.check_image(picture.clone()).await.expect("checked");
        Ok(Generation {
            decision: check.decision,
            image: (check.decision != TextDecision::Block).then_some(picture),
            warnings: check.reasons.clone(),
            prompt: prompt_check,
            check: Some(check),
        })
    }
}

pub fn settings() -> Settings {
    Settings {
        max_body_bytes: 4096,
        max_in_flight: 4,
        timeout: Duration::from_secs(5),
        max_image_bytes: 64,
    }
}

pub fn app() -> axum::Router {
    router(Arc::new(Scripted::new()), settings(), None)
}

pub async fn call(
    app: axum::Router,
    req: Request<Body>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let response = app.oneshot(req).await.expect("answered");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{status}: not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, body, headers)
}

pub fn post(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}
