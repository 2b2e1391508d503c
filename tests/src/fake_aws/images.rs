//! The fake's image models: Bedrock Runtime `InvokeModel` (Nova Canvas / Titan `TEXT_IMAGE`
//! and Stability bodies) and the OpenAI-compatible `/v1/images/generations`. Each draws a
//! 256×256 PNG: mostly red (which the fake Rekognition labels "Graphic Violence") when the
//! prompt mentions blood, blue otherwise. A request without a negative prompt is refused, so a
//! test shows the negative prompts reach the model.

use base64::Engine;
use serde_json::{json, Value};

use super::{error, ok, Response};

/// The PNG for `prompt`.
pub fn draw(prompt: &str) -> Vec<u8> {
    let colour = if prompt.to_lowercase().contains("blood") {
        image::Rgb([200u8, 20, 20])
    } else {
        image::Rgb([40u8, 80, 200])
    };
    let img = image::RgbImage::from_pixel(256, 256, colour);
    let mut out = std::io::Cursor::new(Vec::new());
    // Encoding a plain in-memory RGB picture cannot fail.
    let _ = img.write_to(&mut out, image::ImageFormat::Png);
    out.into_inner()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `POST /model/<id>/invoke`.
pub fn invoke_model(path: &str, body: &Value) -> Response {
    let stability = path.contains("stability.");
    let (prompt, negative) = if stability {
        (&body["prompt"], &body["negative_prompt"])
    } else {
        if body["taskType"] != "TEXT_IMAGE" {
            return error(
                400,
                false,
                "ValidationException",
                "taskType must be TEXT_IMAGE",
            );
        }
        let p = &body["textToImageParams"];
        (&p["text"], &p["negativeText"])
    };
    let (Some(prompt), Some(_)) = (prompt.as_str(), negative.as_str()) else {
        return error(
            400,
            false,
            "ValidationException",
            "the fake image model wants a prompt and a negative prompt",
        );
    };
    ok("application/json", json!({"images": [b64(&draw(prompt))]}))
}

/// SageMaker `InvokeEndpoint` on a Stable Diffusion container: Stability's `text_prompts`
/// (the negative one at weight -1) answered as `artifacts`, or JumpStart's `prompt` /
/// `negative_prompt` answered as `generated_images`.
pub fn invoke_endpoint(body: &Value) -> Response {
    if let Some(prompts) = body["text_prompts"].as_array() {
        let weighted = |positive: bool| {
            prompts
                .iter()
                .find(|p| (p["weight"].as_f64().unwrap_or(1.0) > 0.0) == positive)
                .and_then(|p| p["text"].as_str())
        };
        return match (weighted(true), weighted(false)) {
            (Some(prompt), Some(_)) => ok(
                "application/json",
                json!({"artifacts": [{"base64": b64(&draw(prompt)), "finishReason": "SUCCESS", "seed": 7}]}),
            ),
            _ => model_error("the fake endpoint wants a prompt and a negative text_prompt"),
        };
    }
    match (body["prompt"].as_str(), body["negative_prompt"].as_str()) {
        (Some(prompt), Some(_)) => ok(
            "application/json",
            json!({"generated_images": [b64(&draw(prompt))], "prompt": prompt}),
        ),
        _ => model_error("the fake endpoint wants text_prompts, or prompt and negative_prompt"),
    }
}

/// What SageMaker answers when the container fails: `ModelError` with the container's words.
fn model_error(why: &str) -> Response {
    error(424, false, "ModelError", why)
}

/// `POST /v1/images/generations`.
pub fn generations(body: &Value) -> Response {
    let (Some(prompt), Some(_)) = (body["prompt"].as_str(), body["negative_prompt"].as_str())
    else {
        return error(
            400,
            false,
            "BadRequest",
            "prompt and negative_prompt are required",
        );
    };
    ok(
        "application/json",
        json!({"created": 1, "data": [{"b64_json": b64(&draw(prompt))}]}),
    )
}
