//! The check API on the AWS adapters against the loopback fake: Comprehend, Rekognition, the
//! knowledge base and Converse, and an image model that returns a PNG: Bedrock (`InvokeModel`)
//! or a SageMaker endpoint (`InvokeEndpoint`, in both request shapes).
//! The same composition the check-api Lambda builds, asked through its router in-process.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request};
use base64::Engine;
use http_body_util::BodyExt;
use moderation_core::ports::{EndpointFormat, ImageGenerator};
use moderation_tests::check_api::check_api_on_fake_aws;
use moderation_tests::fake_aws::{sdk_config, FakeAws, Faults};
use serde_json::Value;
use tower::ServiceExt;

struct Api {
    router: axum::Router,
    fake: FakeAws,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    api_with(|sdk| {
        Arc::new(moderation_aws::BedrockImages::from_sdk_config(
            sdk,
            "amazon.nova-canvas-v1:0",
        ))
    })
    .await
}

async fn api_with(model: impl FnOnce(&aws_config::SdkConfig) -> Arc<dyn ImageGenerator>) -> Api {
    let fake = FakeAws::start(Faults::default(), 11).await;
    let sdk = sdk_config(&fake.url(), Duration::from_secs(5)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let router = check_api_on_fake_aws(dir.path(), &sdk, model(&sdk)).await;
    Api {
        router,
        fake,
        _dir: dir,
    }
}

async fn ask(api: &Api, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("request");
    let resp = api.router.clone().oneshot(req).await.expect("answered");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

async fn generate(api: &Api, prompt: &str) -> (u16, Value) {
    let body = serde_json::json!({ "prompt": prompt }).to_string();
    ask(api, "/v1/generate", "application/json", body.into_bytes()).await
}

#[tokio::test]
async fn a_generated_picture_is_checked_and_withheld_or_returned() {
    let api = api().await;
    let (status, answer) = generate(&api, "a knight at dawn, oil painting").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "allow", "{answer}");
    let picture = base64::engine::general_purpose::STANDARD
        .decode(answer["image"].as_str().expect("the picture"))
        .expect("base64");
    assert!(picture.starts_with(b"\x89PNG"));
    assert_eq!(
        answer["check"]["label_model"],
        "Amazon Rekognition moderation model 7.0"
    );

    // The fake model draws blood red; Rekognition (the fake) labels it Graphic Violence.
    let (status, answer) = generate(&api, "a knight covered in blood").await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["decision"], "allow", "{answer}");
    let labels = answer["check"]["labels"].to_string();
    assert!(labels.contains("Graphic Violence"), "{answer}");
    if answer["decision"] == "block" {
        assert!(answer.get("image").is_none(), "{answer}");
    }
    assert_eq!(api.fake.ok_calls("InvokeModel"), 2);
}

#[tokio::test]
async fn a_sagemaker_endpoint_generates_in_either_request_shape() {
    for format in [EndpointFormat::Stability, EndpointFormat::JumpStart] {
        let api = api_with(|sdk| {
            Arc::new(moderation_aws::SageMakerImages::from_sdk_config(
                sdk,
                "sdxl-1-0-jumpstart",
                format,
            ))
        })
        .await;
        let (status, answer) = generate(&api, "a knight at dawn, oil painting").await;
        assert_eq!(
            (status, answer["decision"].as_str()),
            (200, Some("allow")),
            "{answer}"
        );
        assert!(
            answer["image"].as_str().is_some_and(|i| !i.is_empty()),
            "{answer}"
        );
        let (status, answer) = generate(&api, "a knight covered in blood").await;
        assert_eq!(status, 200, "{answer}");
        assert_ne!(answer["decision"], "allow", "{format:?}: {answer}");
        assert_eq!(api.fake.ok_calls("InvokeEndpoint"), 2, "{format:?}");
        let (_, answer) = generate(&api, "draw a naked child").await;
        assert_eq!(answer["decision"], "block", "{answer}");
        assert_eq!(
            api.fake.ok_calls("InvokeEndpoint"),
            2,
            "a blocked prompt costs nothing"
        );
    }
}

#[tokio::test]
async fn a_blocked_prompt_never_reaches_the_image_model() {
    let api = api().await;
    let (status, answer) = generate(&api, "draw a naked child").await;
    assert_eq!(
        (status, answer["decision"].as_str()),
        (200, Some("block")),
        "{answer}"
    );
    assert!(answer.get("image").is_none() && answer.get("check").is_none());
    assert_eq!(api.fake.ok_calls("InvokeModel"), 0);
}

#[tokio::test]
async fn pictures_and_text_are_checked_through_the_aws_adapters() {
    let api = api().await;
    let red = moderation_tests::fake_aws::draw_picture("blood");
    let (status, answer) = ask(&api, "/v1/check/image", "image/png", red).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["decision"], "allow", "{answer}");
    let blue = moderation_tests::fake_aws::draw_picture("sky");
    let (status, answer) = ask(&api, "/v1/check/image", "image/png", blue).await;
    assert_eq!(
        (status, answer["decision"].as_str()),
        (200, Some("allow")),
        "{answer}"
    );
    // The fake's DetectText reads "gg wp" in every picture: screened as a chat line.
    assert!(answer["items"].to_string().contains("gg wp"), "{answer}");
    let (status, answer) = ask(
        &api,
        "/v1/check/text",
        "application/json",
        br#"{"text":"i know where you live and i will hurt you"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["decision"], "allow", "{answer}");
    assert!(api.fake.ok_calls("DetectToxicContent") >= 1);
}
