//! Comprehend `DetectToxicContent` as the toxicity detector. Core does the chunking and
//! batching (≤10 segments, ≤1 KB each, ≤10 KB per call); this maps one batch to one request.

use async_trait::async_trait;
use aws_sdk_comprehend::types::{LanguageCode, TextSegment, ToxicContentType, ToxicLabels};
use aws_sdk_comprehend::Client;
use moderation_core::model::{Category, CategoryScores};
use moderation_core::ports::Segment;
use moderation_core::ports::{SegmentLimits, ToxicityDetector, ToxicityScore};
use moderation_core::Result as CoreResult;

use std::sync::Arc;

use moderation_core::chain::pace::Pacer;

use crate::errors::classify;
use crate::Error;

const SERVICE: &str = "comprehend";

pub const LIMITS: SegmentLimits = SegmentLimits {
    max_segments: 10,
    max_segment_bytes: 1024,
    max_request_bytes: 10 * 1024,
};

#[derive(Debug, Clone)]
pub struct ComprehendDetector {
    client: Client,
    pacer: Option<Arc<Pacer>>,
}

impl ComprehendDetector {
    pub fn new(client: Client) -> Self {
        ComprehendDetector {
            client,
            pacer: None,
        }
    }

    /// Pace `DetectToxicContent` to `COMPREHEND_TPS` ([`crate::pace`]).
    pub fn with_pacer(mut self, pacer: Option<Arc<Pacer>>) -> Self {
        crate::pace::with_pacer!(self, pacer, Client)
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

pub fn category_of(t: &ToxicContentType) -> Option<Category> {
    Some(match t {
        ToxicContentType::Graphic => Category::Graphic,
        ToxicContentType::HarassmentOrAbuse => Category::HarassmentOrAbuse,
        ToxicContentType::HateSpeech => Category::HateSpeech,
        ToxicContentType::Insult => Category::Insult,
        ToxicContentType::Profanity => Category::Profanity,
        ToxicContentType::Sexual => Category::Sexual,
        ToxicContentType::ViolenceOrThreat => Category::ViolenceOrThreat,
        _ => return None,
    })
}

fn to_score(labels: &ToxicLabels) -> ToxicityScore {
    let mut categories = CategoryScores::default();
    for l in labels.labels() {
        if let (Some(c), Some(s)) = (l.name().and_then(category_of), l.score()) {
            categories.set(c, f64::from(s));
        }
    }
    ToxicityScore {
        toxicity: labels
            .toxicity()
            .map(f64::from)
            .unwrap_or_else(|| categories.max()),
        categories,
        rule_hits: Vec::new(),
        signals: Vec::new(),
    }
}

#[async_trait]
impl ToxicityDetector for ComprehendDetector {
    fn name(&self) -> &str {
        "comprehend"
    }

    fn limits(&self) -> SegmentLimits {
        LIMITS
    }

    /// Comprehend bills 100-character units with a 3-unit minimum per request.
    fn billing_units(&self, segments: &[Segment]) -> u64 {
        let chars: usize = segments.iter().map(|s| s.text.chars().count()).sum();
        (chars.div_ceil(100) as u64).max(3)
    }

    async fn detect(&self, segments: &[String]) -> CoreResult<Vec<ToxicityScore>> {
        let mut text_segments = Vec::with_capacity(segments.len());
        for s in segments {
            let seg = TextSegment::builder()
                .text(s)
                .build()
                .map_err(|source| Error::Build {
                    what: "DetectToxicContent",
                    source,
                })?;
            text_segments.push(seg);
        }
        crate::pace::wait(self.pacer.as_ref()).await;
        let out = self
            .client
            .detect_toxic_content()
            .set_text_segments(Some(text_segments))
            .language_code(LanguageCode::En)
            .send()
            .await
            .map_err(|e| classify(SERVICE, e))?;
        Ok(out.result_list().iter().map(to_score).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_comprehend::operation::detect_toxic_content::{
        DetectToxicContentError, DetectToxicContentOutput,
    };
    use aws_sdk_comprehend::types::error::TextSizeLimitExceededException;
    use aws_sdk_comprehend::types::ToxicContent;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use moderation_core::error::ServiceErrorKind;
    use moderation_core::stages::screen_text::{screen_messages, ScreenDeps};
    use moderation_core::text::parse::ParsedMessage;
    use moderation_core::text::rules::RuleFilter;
    use moderation_core::Error as CoreError;

    fn labels(toxicity: f32, insult: f32) -> ToxicLabels {
        ToxicLabels::builder()
            .toxicity(toxicity)
            .labels(
                ToxicContent::builder()
                    .name(ToxicContentType::Insult)
                    .score(insult)
                    .build(),
            )
            .labels(
                ToxicContent::builder()
                    .name(ToxicContentType::Profanity)
                    .score(0.1)
                    .build(),
            )
            .labels(
                ToxicContent::builder()
                    .name(ToxicContentType::ViolenceOrThreat)
                    .score(0.05)
                    .build(),
            )
            .build()
    }

    fn echo_output(n: usize) -> DetectToxicContentOutput {
        let mut b = DetectToxicContentOutput::builder();
        for i in 0..n {
            b = b.result_list(labels(0.1 + i as f32 * 0.01, 0.2));
        }
        b.build()
    }

    #[tokio::test]
    async fn maps_labels_to_snake_case_categories_in_order() {
        let rule = mock!(Client::detect_toxic_content)
            .match_requests(|r| {
                r.language_code() == Some(&LanguageCode::En)
                    && r.text_segments().len() == 2
                    && r.text_segments()[0].text() == "you idiot"
            })
            .then_output(|| {
                DetectToxicContentOutput::builder()
                    .result_list(labels(0.91, 0.88))
                    .result_list(labels(0.02, 0.01))
                    .build()
            });
        let d = ComprehendDetector::new(mock_client!(aws_sdk_comprehend, [&rule]));
        let scores = d
            .detect(&["you idiot".into(), "nice shot".into()])
            .await
            .expect("detects");
        assert_eq!(scores.len(), 2);
        assert!((scores[0].toxicity - 0.91).abs() < 1e-6);
        assert!((scores[0].categories.insult - 0.88).abs() < 1e-6);
        assert!((scores[0].categories.profanity - 0.1).abs() < 1e-6);
        assert!((scores[0].categories.violence_or_threat - 0.05).abs() < 1e-6);
        assert_eq!(scores[1].categories.hate_speech, 0.0);
    }

    #[tokio::test]
    async fn throttled_then_ok_succeeds_through_sdk_retry() {
        let rule = mock!(Client::detect_toxic_content)
            .sequence()
            // What Comprehend sends when throttling (awsJson1.1 error shape).
            .http_status(
                400,
                Some(r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#.into()),
            )
            .times(2)
            .output(|| echo_output(1))
            .build();
        let d = ComprehendDetector::new(mock_client!(aws_sdk_comprehend, [&rule]));
        let scores = d
            .detect(&["hello".into()])
            .await
            .expect("retried to success");
        assert_eq!(scores.len(), 1);
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn a_paced_client_tells_its_pacer_about_every_throttled_attempt() {
        let rule = mock!(Client::detect_toxic_content)
            .sequence()
            .http_status(
                400,
                Some(r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#.into()),
            )
            .times(2)
            .output(|| echo_output(1))
            .build();
        let pacer = Arc::new(Pacer::new("comprehend", 50.0));
        let d = ComprehendDetector::new(mock_client!(aws_sdk_comprehend, [&rule]))
            .with_pacer(Some(pacer.clone()));
        // A paced client retries in standard mode: adaptive retry would pace a second time.
        assert_eq!(
            d.client.config().retry_config().map(|r| r.mode()),
            Some(aws_smithy_types::retry::RetryMode::Standard)
        );
        d.detect(&["hello".into()])
            .await
            .expect("retried to success");
        assert_eq!(rule.num_calls(), 3);
        // Both throttled attempts were seen, and each (the SDK's backoff between them is
        // longer than one burst) slowed the pacer down.
        assert_eq!(pacer.throttles(), 2);
        assert!(pacer.rate() < 50.0, "{}", pacer.rate());
    }

    #[tokio::test]
    async fn text_size_limit_is_a_too_large_error_and_an_item_level_failure() {
        let rule = mock!(Client::detect_toxic_content).then_error(|| {
            DetectToxicContentError::TextSizeLimitExceededException(
                TextSizeLimitExceededException::builder()
                    .message("too big")
                    .meta(
                        ErrorMetadata::builder()
                            .code("TextSizeLimitExceededException")
                            .build(),
                    )
                    .build(),
            )
        });
        let d = ComprehendDetector::new(mock_client!(
            aws_sdk_comprehend,
            RuleMode::MatchAny,
            [&rule]
        ));
        let err = d.detect(&["x".into()]).await.expect_err("too large");
        assert!(
            matches!(
                err,
                CoreError::Service {
                    kind: ServiceErrorKind::TooLarge,
                    ..
                }
            ),
            "{err:?}"
        );
        // Through the stage: the item is kept, marked for review, and the error is recorded.
        let store = NoStore;
        let rules = RuleFilter::parse("").expect("empty list");
        let deps = ScreenDeps {
            store: &store,
            detector: &d,
            rules: &rules,
            languages: &moderation_core::text::language::OfflineIdentifier,
            translator: None,
            known_language: None,
            progress: None,
            time_limit: None,
        };
        let msg = ParsedMessage {
            id: "line-1".into(),
            text: "hello".into(),
            ..Default::default()
        };
        let (items, errors, _) = screen_messages(vec![msg], &deps, 0.5, 2).await;
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].verdict,
            Some(moderation_core::model::Verdict::NeedsReview)
        );
        assert!(errors[0].message.contains("TooLarge"), "{errors:?}");
    }

    #[tokio::test]
    async fn batches_respect_limits_through_the_stage() {
        // 25 messages, one 2.5 KB: every request must stay within 10 segments and 10 KB.
        let rule = mock!(Client::detect_toxic_content)
            .match_requests(|r| {
                let segs = r.text_segments();
                segs.len() <= 10
                    && segs.iter().all(|s| s.text().len() <= 1024)
                    && segs.iter().map(|s| s.text().len()).sum::<usize>() <= 10 * 1024
            })
            .then_compute_output(|r| echo_output(r.text_segments().len()));
        let d = ComprehendDetector::new(mock_client!(
            aws_sdk_comprehend,
            RuleMode::MatchAny,
            [&rule]
        ));
        let store = NoStore;
        let rules = RuleFilter::parse("").expect("empty list");
        let deps = ScreenDeps {
            store: &store,
            detector: &d,
            rules: &rules,
            languages: &moderation_core::text::language::OfflineIdentifier,
            translator: None,
            known_language: None,
            progress: None,
            time_limit: None,
        };
        let mut msgs: Vec<ParsedMessage> = (0..24)
            .map(|i| ParsedMessage {
                id: format!("line-{i}"),
                text: format!("msg {i}"),
                ..Default::default()
            })
            .collect();
        msgs.push(ParsedMessage {
            id: "line-99".into(),
            text: "long sentence. ".repeat(170),
            ..Default::default()
        });
        let (items, errors, usage) = screen_messages(msgs, &deps, 0.5, 3).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(items.len(), 25);
        assert!(items.iter().all(|i| i.verdict.is_some()));
        // 24 short + 3 chunks of the long one = 27 segments → 3 requests minimum.
        assert_eq!(rule.num_calls(), 3);
        assert!(usage.comprehend_units >= 9);
    }

    /// The screening function never touches storage; a store that refuses proves it.
    struct NoStore;

    #[async_trait]
    impl moderation_core::ports::ReadObjects for NoStore {
        async fn open(
            &self,
            _: &moderation_core::model::ObjectRef,
        ) -> CoreResult<moderation_core::ports::OpenedObject> {
            Err(CoreError::Input("no store in this test".into()))
        }
        async fn get_bytes(&self, _: &str, _: &str) -> CoreResult<Option<Vec<u8>>> {
            Err(CoreError::Input("no store in this test".into()))
        }
    }

    #[async_trait]
    impl moderation_core::ports::WriteObjects for NoStore {
        async fn put(&self, _: &str, _: &str, _: Vec<u8>, _: &str) -> CoreResult<()> {
            Err(CoreError::Input("no store in this test".into()))
        }
        async fn put_file(&self, _: &str, _: &str, _: &std::path::Path, _: &str) -> CoreResult<()> {
            Err(CoreError::Input("no store in this test".into()))
        }
    }

    #[async_trait]
    impl moderation_core::ports::ListObjects for NoStore {
        async fn list(&self, _: &str, _: &str) -> CoreResult<Vec<String>> {
            Err(CoreError::Input("no store in this test".into()))
        }
    }

    #[async_trait]
    impl moderation_core::ports::SwapObjects for NoStore {
        async fn get_tagged(
            &self,
            _: &str,
            _: &str,
        ) -> CoreResult<Option<moderation_core::ports::Tagged>> {
            Err(CoreError::Input("no store in this test".into()))
        }
        async fn put_if(
            &self,
            _: &str,
            _: &str,
            _: Vec<u8>,
            _: &str,
            _: Option<&str>,
        ) -> CoreResult<Option<String>> {
            Err(CoreError::Input("no store in this test".into()))
        }
    }
}
