//! Pictures: moderation labels and the text in an image.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::Prepared;

/// An image to check: the prepared pixels and bytes, and where the upload lives.
pub struct ImageInput<'a> {
    pub prepared: &'a Prepared,
    pub bucket: &'a str,
    pub key: &'a str,
    pub version: Option<&'a str>,
}

/// What a labelling model said about an image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelsFound {
    pub labels: Vec<crate::model::ImageLabel>,
    pub content_types: Vec<crate::model::ContentType>,
    /// Model and version, for the audit trail.
    pub model: String,
    /// Top categories this model does not look for.
    pub not_checked: Vec<String>,
}

/// Moderation labels for an image (Rekognition `DetectModerationLabels`, or an offline
/// classifier).
#[async_trait]
pub trait ImageModerator: Send + Sync {
    fn name(&self) -> &str;
    /// Labels at or above `min_confidence` (0–100).
    async fn labels(&self, image: &ImageInput<'_>, min_confidence: f64) -> Result<LabelsFound>;
}

/// A line of text read from an image.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    pub text: String,
    /// 0–100.
    pub confidence: f64,
    pub bounding_box: crate::model::BoundingBox,
}

/// The text read from an image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextRead {
    /// Line by line in reading order.
    pub lines: Vec<TextLine>,
    /// Why some text may be missing (Rekognition reads at most 100 words an image).
    pub incomplete: Option<String>,
}

/// Text in an image (Rekognition `DetectText`, or offline OCR).
#[async_trait]
pub trait ImageTextReader: Send + Sync {
    fn name(&self) -> &str;
    async fn lines(&self, image: &ImageInput<'_>) -> Result<TextRead>;
}

/// An image model: a picture from a prompt, steered away from the negative prompt (Bedrock
/// image models, or an OpenAI-compatible `/v1/images/generations` server offline).
#[async_trait]
pub trait ImageGenerator: Send + Sync {
    fn name(&self) -> &str;
    /// The picture's bytes (PNG or JPEG).
    async fn generate(&self, prompt: &str, negative_prompt: &str) -> Result<Vec<u8>>;
}

/// The request a Stable Diffusion server takes (`IMAGE_GENERATION_ENDPOINT_FORMAT`): Stability's
/// weighted `text_prompts`, or the `prompt` / `negative_prompt` pair of JumpStart's older
/// containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointFormat {
    Stability,
    JumpStart,
}

impl EndpointFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stability" => Some(EndpointFormat::Stability),
            "jumpstart" => Some(EndpointFormat::JumpStart),
            _ => None,
        }
    }
}
