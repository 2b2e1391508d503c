//! Offline image checks: text in the image by Tesseract OCR ([`ocr`]; Debian `tesseract-ocr`,
//! run as a program: it is never in a Lambda binary), the choice of labelling model (open_nsfw
//! with feature `nsfw`), and what stands in for one when none is built in or loads, which says
//! that nothing looked at the picture.

#[cfg(feature = "nsfw")]
pub mod nsfw;
pub mod ocr;

pub use ocr::TesseractText;

use std::sync::Arc;

use async_trait::async_trait;
use moderation_core::ports::{ImageInput, ImageModerator, LabelsFound};
use moderation_core::stages::screen_image::TOP_CATEGORIES;
use moderation_core::Result as CoreResult;

/// No offline classifier: every category unchecked, so the picture is held for a person.
pub struct NoImageClassifier {
    why: String,
}

impl Default for NoImageClassifier {
    fn default() -> Self {
        NoImageClassifier {
            why: "no offline image classifier in this build (feature nsfw)".into(),
        }
    }
}

impl NoImageClassifier {
    /// No classifier, and why: the reason reaches every report it leaves unchecked.
    pub fn because(why: impl Into<String>) -> Self {
        NoImageClassifier { why: why.into() }
    }
}

#[async_trait]
impl ImageModerator for NoImageClassifier {
    fn name(&self) -> &str {
        "no offline image classifier"
    }

    async fn labels(&self, _image: &ImageInput<'_>, _min: f64) -> CoreResult<LabelsFound> {
        Ok(LabelsFound {
            labels: Vec::new(),
            content_types: Vec::new(),
            model: format!("none ({})", self.why),
            not_checked: TOP_CATEGORIES.iter().map(|c| c.to_string()).collect(),
        })
    }
}

/// The offline image classifier: open_nsfw when this build has feature `nsfw` and the model at
/// `model` loads; otherwise none, so pictures wait for a person and reports say why.
pub fn offline_classifier(model: Option<&std::path::Path>) -> Arc<dyn ImageModerator> {
    #[cfg(feature = "nsfw")]
    {
        let path = model.unwrap_or(std::path::Path::new(
            moderation_core::stages::screen_image::DEFAULT_NSFW_MODEL,
        ));
        match nsfw::OpenNsfw::load(path) {
            Ok(m) => Arc::new(m),
            Err(e) => {
                tracing::warn!(error = %e, "offline image classifier unavailable");
                Arc::new(NoImageClassifier::because(format!(
                    "open_nsfw not loaded: {e}"
                )))
            }
        }
    }
    #[cfg(not(feature = "nsfw"))]
    {
        let _ = model;
        Arc::new(NoImageClassifier::default())
    }
}
