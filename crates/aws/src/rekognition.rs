//! Amazon Rekognition for images: `DetectModerationLabels` (all three taxonomy levels, content
//! types and the model version) and `DetectText` (lines with boxes), both sent the prepared
//! image's bytes.

use async_trait::async_trait;
use aws_sdk_rekognition::primitives::Blob;
use aws_sdk_rekognition::types::{Image, TextTypes};
use aws_sdk_rekognition::Client;
use moderation_core::model::{BoundingBox, ContentType, ImageLabel};
use moderation_core::ports::{
    ImageInput, ImageModerator, ImageTextReader, LabelsFound, TextLine, TextRead,
};
use moderation_core::Result as CoreResult;

use std::sync::Arc;

use moderation_core::chain::pace::Pacer;

use crate::errors::classify;

const SERVICE: &str = "rekognition";

#[derive(Debug, Clone)]
pub struct RekognitionImages {
    client: Client,
    pacer: Option<Arc<Pacer>>,
}

impl RekognitionImages {
    pub fn new(client: Client) -> Self {
        RekognitionImages {
            client,
            pacer: None,
        }
    }

    /// Pace `DetectModerationLabels` and `DetectText` together to `REKOGNITION_TPS`.
    pub fn with_pacer(mut self, pacer: Option<Arc<Pacer>>) -> Self {
        crate::pace::with_pacer!(self, pacer, Client)
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

/// Always the prepared bytes (at most 3.75 MB, under the 5 MB inline limit): an S3 reference
/// would need the bucket's version id (an ETag is not one) and could read a newer write than
/// the one this event is about.
fn image(input: &ImageInput<'_>) -> Image {
    Image::builder()
        .bytes(Blob::new(input.prepared.bytes.clone()))
        .build()
}

/// `DetectText` returns at most this many words an image.
const MAX_WORDS: usize = 100;

/// The top category of each label: its ancestor with no parent.
fn top_category(name: &str, parents: &[(String, String)]) -> String {
    let mut current = name.to_string();
    // Three levels at most; the bound also stops a cycle in a malformed reply.
    for _ in 0..4 {
        match parents.iter().find(|(n, _)| *n == current) {
            Some((_, parent)) if !parent.is_empty() => current = parent.clone(),
            _ => break,
        }
    }
    current
}

#[async_trait]
impl ImageModerator for RekognitionImages {
    fn name(&self) -> &str {
        "Amazon Rekognition"
    }

    async fn labels(&self, input: &ImageInput<'_>, min_confidence: f64) -> CoreResult<LabelsFound> {
        crate::pace::wait(self.pacer.as_ref()).await;
        let out = self
            .client
            .detect_moderation_labels()
            .image(image(input))
            .min_confidence(min_confidence as f32)
            .send()
            .await
            .map_err(|e| classify(SERVICE, e))?;
        let parents: Vec<(String, String)> = out
            .moderation_labels()
            .iter()
            .filter_map(|l| {
                Some((
                    l.name()?.to_string(),
                    l.parent_name().unwrap_or_default().to_string(),
                ))
            })
            .collect();
        let labels = out
            .moderation_labels()
            .iter()
            .filter_map(|l| {
                let name = l.name()?.to_string();
                Some(ImageLabel {
                    category: top_category(&name, &parents),
                    parent: l.parent_name().unwrap_or_default().to_string(),
                    level: l.taxonomy_level().unwrap_or(1).clamp(1, 3) as u8,
                    confidence: f64::from(l.confidence().unwrap_or(0.0)),
                    name,
                })
            })
            .collect();
        let content_types = out
            .content_types()
            .iter()
            .filter_map(|c| {
                Some(ContentType {
                    name: c.name()?.to_string(),
                    confidence: f64::from(c.confidence().unwrap_or(0.0)),
                })
            })
            .collect();
        Ok(LabelsFound {
            labels,
            content_types,
            model: format!(
                "Amazon Rekognition moderation model {}",
                out.moderation_model_version()
                    .unwrap_or("(version not given)")
            ),
            not_checked: Vec::new(),
        })
    }
}

#[async_trait]
impl ImageTextReader for RekognitionImages {
    fn name(&self) -> &str {
        "Amazon Rekognition DetectText"
    }

    async fn lines(&self, input: &ImageInput<'_>) -> CoreResult<TextRead> {
        crate::pace::wait(self.pacer.as_ref()).await;
        let out = self
            .client
            .detect_text()
            .image(image(input))
            .send()
            .await
            .map_err(|e| classify(SERVICE, e))?;
        let words = out
            .text_detections()
            .iter()
            .filter(|d| d.r#type() == Some(&TextTypes::Word))
            .count();
        let incomplete = (words >= MAX_WORDS).then(|| {
            format!(
                "Rekognition DetectText reads at most {MAX_WORDS} words an image and found \
                 {words}: text past them is unchecked"
            )
        });
        let lines = out
            .text_detections()
            .iter()
            .filter(|d| d.r#type() == Some(&TextTypes::Line))
            .filter_map(|d| {
                let b = d.geometry()?.bounding_box()?;
                Some(TextLine {
                    text: d.detected_text()?.to_string(),
                    confidence: f64::from(d.confidence().unwrap_or(0.0)),
                    bounding_box: BoundingBox {
                        left: f64::from(b.left().unwrap_or(0.0)),
                        top: f64::from(b.top().unwrap_or(0.0)),
                        width: f64::from(b.width().unwrap_or(0.0)),
                        height: f64::from(b.height().unwrap_or(0.0)),
                    },
                })
            })
            .collect();
        Ok(TextRead { lines, incomplete })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rekognition::operation::detect_moderation_labels::{
        DetectModerationLabelsError, DetectModerationLabelsOutput,
    };
    use aws_sdk_rekognition::operation::detect_text::DetectTextOutput;
    use aws_sdk_rekognition::types::error::ProvisionedThroughputExceededException;
    use aws_sdk_rekognition::types::{
        BoundingBox as SdkBox, ContentType as SdkContentType, Geometry, ModerationLabel,
        TextDetection,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use moderation_core::media::picture::prepare;
    use moderation_core::model::Prepared;

    fn png(w: u32, h: u32) -> Prepared {
        let mut out = Vec::new();
        image_for_tests(w, h, &mut out);
        prepare(&out, "png").expect("prepared")
    }

    fn image_for_tests(w: u32, h: u32, out: &mut Vec<u8>) {
        use std::io::Cursor;
        moderation_core::media::picture::blank_png(w, h, &mut Cursor::new(out));
    }

    fn input(p: &Prepared) -> ImageInput<'_> {
        ImageInput {
            prepared: p,
            bucket: "moderation-demo",
            key: "incoming/image/match-42/meme.png",
            version: Some("v1"),
        }
    }

    fn label(name: &str, parent: &str, level: i32, c: f32) -> ModerationLabel {
        ModerationLabel::builder()
            .name(name)
            .parent_name(parent)
            .taxonomy_level(level)
            .confidence(c)
            .build()
    }

    #[tokio::test]
    async fn labels_keep_three_levels_their_top_category_content_types_and_model_version() {
        let p = png(200, 120);
        assert!(p.unchanged);
        let rule = mock!(Client::detect_moderation_labels)
            .match_requests(|r| {
                r.image().and_then(|i| i.s3_object()).is_none()
                    && r.image()
                        .and_then(|i| i.bytes())
                        .is_some_and(|b| b.as_ref().starts_with(b"\x89PNG"))
                    && r.min_confidence() == Some(50.0)
            })
            .then_output(|| {
                DetectModerationLabelsOutput::builder()
                    .moderation_labels(label("Violence", "", 1, 92.5))
                    .moderation_labels(label("Weapons", "Violence", 2, 91.0))
                    .moderation_labels(label("Weapon Violence", "Weapons", 3, 90.0))
                    .content_types(
                        SdkContentType::builder()
                            .name("Animated")
                            .confidence(88.0)
                            .build(),
                    )
                    .moderation_model_version("7.0")
                    .build()
            });
        let client = mock_client!(aws_sdk_rekognition, [&rule]);
        let found = RekognitionImages::new(client)
            .labels(&input(&p), 50.0)
            .await
            .expect("labels");
        assert_eq!(found.labels.len(), 3);
        assert!(found.labels.iter().all(|l| l.category == "Violence"));
        assert_eq!(found.labels[2].level, 3);
        assert_eq!(found.labels[2].parent, "Weapons");
        assert_eq!(found.content_types[0].name, "Animated");
        assert_eq!(found.model, "Amazon Rekognition moderation model 7.0");
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let p = png(40, 40);
        let rule = mock!(Client::detect_moderation_labels)
            .match_requests(|r| {
                r.image().and_then(|i| i.s3_object()).is_none()
                    && r.image().and_then(|i| i.bytes()).is_some()
            })
            .then_error(|| {
                DetectModerationLabelsError::ProvisionedThroughputExceededException(
                    ProvisionedThroughputExceededException::builder()
                        .message("slow down")
                        .meta(
                            aws_smithy_types::error::ErrorMetadata::builder()
                                .code("ProvisionedThroughputExceededException")
                                .build(),
                        )
                        .build(),
                )
            });
        let client = mock_client!(aws_sdk_rekognition, RuleMode::MatchAny, [&rule]);
        let e = RekognitionImages::new(client)
            .labels(&input(&p), 50.0)
            .await
            .expect_err("throttled");
        assert!(e.is_retryable(), "{e}");
        // The SDK's own retries ran first.
        assert!(rule.num_calls() > 1);
    }

    #[tokio::test]
    async fn text_lines_come_with_their_boxes_and_words_are_skipped() {
        let p = png(200, 120);
        let detection = |text: &str, kind: TextTypes, top: f32| {
            TextDetection::builder()
                .detected_text(text)
                .r#type(kind)
                .confidence(97.0)
                .geometry(
                    Geometry::builder()
                        .bounding_box(
                            SdkBox::builder()
                                .left(0.1)
                                .top(top)
                                .width(0.8)
                                .height(0.1)
                                .build(),
                        )
                        .build(),
                )
                .build()
        };
        let rule = mock!(Client::detect_text).then_output(move || {
            DetectTextOutput::builder()
                .text_detections(detection("WHEN YOU LOSE", TextTypes::Line, 0.05))
                .text_detections(detection("GO KYS", TextTypes::Line, 0.85))
                .text_detections(detection("KYS", TextTypes::Word, 0.85))
                .build()
        });
        let client = mock_client!(aws_sdk_rekognition, [&rule]);
        let read = RekognitionImages::new(client)
            .lines(&input(&p))
            .await
            .expect("lines");
        assert_eq!(read.incomplete, None);
        let lines = read.lines;
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["WHEN YOU LOSE", "GO KYS"]);
        assert!((lines[1].bounding_box.top - 0.85).abs() < 1e-6);
    }

    #[tokio::test]
    async fn a_hundred_words_means_the_text_may_be_cut() {
        let p = png(200, 120);
        let rule = mock!(Client::detect_text).then_output(|| {
            let mut out = DetectTextOutput::builder();
            for n in 0..100 {
                out = out.text_detections(
                    TextDetection::builder()
                        .detected_text(format!("w{n}"))
                        .r#type(TextTypes::Word)
                        .build(),
                );
            }
            out.build()
        });
        let client = mock_client!(aws_sdk_rekognition, [&rule]);
        let read = RekognitionImages::new(client)
            .lines(&input(&p))
            .await
            .expect("read");
        assert!(read
            .incomplete
            .is_some_and(|w| w.contains("at most 100 words")));
    }
}
