//! Pictures: the formats accepted, a picture prepared for the services, and what was seen of
//! it (boxes, moderation labels, content types, the findings a report shows).

use image::DynamicImage;
use serde::{Deserialize, Serialize};

/// A box on an image as fractions of its width and height (Rekognition's `BoundingBox`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// A moderation label on an image, in Rekognition's taxonomy (level 1 is a top category).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageLabel {
    pub name: String,
    /// The label one level up; empty for a top category.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    pub level: u8,
    /// 0–100, as Rekognition gives it.
    pub confidence: f64,
    /// The top category the label belongs to.
    pub category: String,
}

/// Whether an image is animated or illustrated (Rekognition `ContentTypes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentType {
    pub name: String,
    pub confidence: f64,
}

/// What was seen of an image: the upload, what was done to it before checking, the labels and
/// which models gave them, and what no detector looked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFindings {
    /// The uploaded format and size.
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// Conversions before checking: "WebP converted to PNG", "upscaled from 40×40…".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prepared: Vec<String>,
    pub labels: Vec<ImageLabel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_types: Vec<ContentType>,
    /// The labelling model and its version (`ModerationModelVersion` on AWS): audit.
    pub label_model: String,
    /// The text reader, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_model: Option<String>,
    /// Top categories no detector checked (offline: violence, drugs, hate symbols…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_checked: Vec<String>,
    /// Key of the prepared picture (`pictures/<id>.png|jpeg`) the policy check sends to a
    /// multimodal model: what the labeller saw, within the model's limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
}

/// An image format we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Gif => "gif",
            Format::Webp => "webp",
        }
    }

    /// The `image` crate's codec for it.
    pub(crate) fn codec(self) -> image::ImageFormat {
        match self {
            Format::Png => image::ImageFormat::Png,
            Format::Jpeg => image::ImageFormat::Jpeg,
            Format::Gif => image::ImageFormat::Gif,
            Format::Webp => image::ImageFormat::WebP,
        }
    }

    /// The format a file extension names.
    pub fn from_extension(ext: &str) -> Option<Format> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "png" => Format::Png,
            "jpg" | "jpeg" => Format::Jpeg,
            "gif" => Format::Gif,
            "webp" => Format::Webp,
            _ => return None,
        })
    }
}

/// An image ready for the services, with what was done to it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The uploaded format and size.
    pub original_format: Format,
    pub original_width: u32,
    pub original_height: u32,
    /// PNG or JPEG bytes of `width` × `height`.
    pub format: Format,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The decoded pixels, after rotation and scaling (the offline detectors read these).
    pub pixels: DynamicImage,
    /// True when `bytes` are the upload itself, byte for byte.
    pub unchanged: bool,
    /// What was done, in words: "first frame of the GIF", "rotated as its EXIF says"…
    pub changes: Vec<String>,
    /// More than one frame (GIF, APNG, animated WebP): only the first was checked.
    pub animated: bool,
}
