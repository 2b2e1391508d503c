//! The picture routes over the scripted checker: `/v1/check/image` (types, signatures, sizes)
//! and `/v1/generate` (a picture returned, withheld, or no model).

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;

mod common;
use common::{app, call, png, post};

fn image(content_type: &str, bytes: Vec<u8>) -> Request<Body> {
    Request::post("/v1/check/image")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .expect("request")
}

#[tokio::test]
async fn a_picture_is_allowed_or_blocked_with_its_items() {
    let (status, body, _) = call(app(), image("image/png", png(b"fine"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"], "allow");
    assert_eq!(body["items"][0]["id"], "image");
    assert!(body["labels"].is_array() && body["not_checked"].is_array());
    assert!(body["elapsed_ms"].is_u64());
    let (status, body, _) = call(app(), image("image/png", png(b"unsafe"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["decision"], "block");
    assert_eq!(body["reasons"][0], "image: toxicity 0.97");
}

#[tokio::test]
async fn what_is_not_a_picture_of_the_type_it_says_is_refused_by_name() {
    let (status, body, _) = call(app(), image("text/plain", png(b"fine"))).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let (status, body, _) = call(app(), image("image/png", b"<svg xmlns='x'/>".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("SVG"),
        "{body}"
    );
    let (status, body, _) = call(app(), image("image/jpeg", png(b"fine"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "Content-Type says jpeg but the bytes are png"
    );
    let (status, body, _) = call(app(), image("image/png", Vec::new())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn an_image_over_the_limit_is_413_from_the_route_or_the_check() {
    // The route's limit (64 bytes in these settings)...
    let (status, body, _) = call(app(), image("image/png", png(&[0u8; 100]))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    // ...and the check's own.
    let (status, _, _) = call(app(), image("image/png", png(b"huge"))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn generate_returns_the_picture_withholds_a_blocked_one_and_names_a_missing_model() {
    let (status, body, _) = call(app(), post("/v1/generate", r#"{"prompt":"a knight"}"#)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"], "allow");
    let picture = base64::engine::general_purpose::STANDARD
        .decode(body["image"].as_str().expect("image"))
        .expect("base64");
    assert_eq!(picture, png(b"fine"));
    assert_eq!(body["format"], "png");
    assert_eq!(body["negative_prompt"], "nudity, gore");

    let (_, body, _) = call(
        app(),
        post(
            "/v1/generate",
            r#"{"prompt":"a knight, gore","negative_prompt":"blood"}"#,
        ),
    )
    .await;
    assert_eq!(body["decision"], "block");
    assert!(body.get("image").is_none(), "{body}");
    assert_eq!(body["prompt"]["decision"], "warn");
    assert_eq!(body["negative_prompt"], "nudity, gore, blood");

    let (_, body, _) = call(app(), post("/v1/generate", r#"{"prompt":"kill them"}"#)).await;
    assert_eq!(body["decision"], "block");
    assert!(
        body.get("check").is_none(),
        "a blocked prompt is never drawn: {body}"
    );

    let (status, body, _) = call(app(), post("/v1/generate", r#"{"prompt":"offline"}"#)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("IMAGE_GENERATION_URL"));
}
