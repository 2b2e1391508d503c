//! Languages on AWS: Comprehend `BatchDetectDominantLanguage` identifies them (25 documents a
//! call, each under 5,000 bytes), Amazon Translate `TranslateText` turns the ones that are not
//! English into English for the English-only toxicity services (10,000 bytes a request; core
//! splits longer messages).

use async_trait::async_trait;
use aws_sdk_comprehend::Client as Comprehend;
use aws_sdk_translate::Client as Translate;
use moderation_core::ports::{Answer, Identified};
use moderation_core::ports::{LanguageIdentifier, Translator};
use moderation_core::Result as CoreResult;

use crate::errors::classify;

/// Documents per `BatchDetectDominantLanguage` call.
pub const BATCH_DOCUMENTS: usize = 25;
/// A document must be under 5,000 bytes; the first 4,900 tell its language well enough.
pub const MAX_DOCUMENT_BYTES: usize = 4_900;
/// `TranslateText` takes up to 10,000 bytes of text.
pub const MAX_TRANSLATE_BYTES: usize = 10_000;

/// `text` cut to at most `max` bytes at a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[derive(Debug, Clone)]
pub struct ComprehendLanguages {
    client: Comprehend,
}

impl ComprehendLanguages {
    pub fn new(client: Comprehend) -> Self {
        ComprehendLanguages { client }
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Comprehend::new(config))
    }
}

#[async_trait]
impl LanguageIdentifier for ComprehendLanguages {
    fn name(&self) -> &str {
        "comprehend"
    }

    fn batch_size(&self) -> usize {
        BATCH_DOCUMENTS
    }

    /// One unit per 100 characters, three at least, per document.
    fn billing_units(&self, text: &str) -> u64 {
        let chars = prefix(text, MAX_DOCUMENT_BYTES).chars().count();
        (chars.div_ceil(100) as u64).max(3)
    }

    async fn identify(&self, texts: &[String]) -> CoreResult<Vec<Answer>> {
        let docs: Vec<String> = texts
            .iter()
            .map(|t| prefix(t, MAX_DOCUMENT_BYTES).to_string())
            .collect();
        let out = self
            .client
            .batch_detect_dominant_language()
            .set_text_list(Some(docs))
            .send()
            .await
            .map_err(|e| classify("comprehend", e))?;
        // Results and errors carry their document's index; a document with neither is unknown,
        // never English.
        let mut found =
            vec![Answer::Unknown("comprehend returned no result for it".into()); texts.len()];
        let slot = |i: Option<i32>| i.and_then(|i| usize::try_from(i).ok());
        for r in out.result_list() {
            let best = r
                .languages()
                .iter()
                .filter_map(|l| Some((l.language_code()?, l.score()?)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some(answer) = slot(r.index()).and_then(|i| found.get_mut(i)) {
                *answer = match best {
                    Some((code, score)) => Answer::from_identified(Identified {
                        code: code.to_string(),
                        confidence: f64::from(score),
                    }),
                    None => Answer::Unknown("comprehend named no language".into()),
                };
            }
        }
        for e in out.error_list() {
            if let Some(answer) = slot(e.index()).and_then(|i| found.get_mut(i)) {
                *answer = Answer::Unknown(format!(
                    "comprehend item error {}: {}",
                    e.error_code().unwrap_or("unknown"),
                    e.error_message().unwrap_or("no message")
                ));
            }
        }
        Ok(found)
    }
}

#[derive(Debug, Clone)]
pub struct TranslateToEnglish {
    client: Translate,
}

impl TranslateToEnglish {
    pub fn new(client: Translate) -> Self {
        TranslateToEnglish { client }
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Translate::new(config))
    }
}

#[async_trait]
impl Translator for TranslateToEnglish {
    fn name(&self) -> &str {
        "translate"
    }

    fn max_bytes(&self) -> usize {
        MAX_TRANSLATE_BYTES
    }

    async fn to_english(&self, text: &str, source: &str) -> CoreResult<String> {
        let out = self
            .client
            .translate_text()
            .text(text)
            .source_language_code(source)
            .target_language_code("en")
            .send()
            .await
            .map_err(|e| classify("translate", e))?;
        Ok(out.translated_text().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_comprehend::operation::batch_detect_dominant_language::{
        BatchDetectDominantLanguageError, BatchDetectDominantLanguageOutput,
    };
    use aws_sdk_comprehend::types::{
        BatchDetectDominantLanguageItemResult, BatchItemError, DominantLanguage,
    };
    use aws_sdk_translate::operation::translate_text::{TranslateTextError, TranslateTextOutput};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use moderation_core::error::ServiceErrorKind;
    use moderation_core::Error as CoreError;

    fn result(index: i32, langs: &[(&str, f32)]) -> BatchDetectDominantLanguageItemResult {
        let mut r = BatchDetectDominantLanguageItemResult::builder().index(index);
        for (code, score) in langs {
            r = r.languages(
                DominantLanguage::builder()
                    .language_code(*code)
                    .score(*score)
                    .build(),
            );
        }
        r.build()
    }

    #[tokio::test]
    async fn results_are_placed_by_index_and_item_errors_are_unknown_not_english() {
        let rule = mock!(Comprehend::batch_detect_dominant_language)
            .match_requests(|r| {
                r.text_list().len() == 3 && r.text_list().iter().all(|t| t.len() <= 4_900)
            })
            .then_output(|| {
                BatchDetectDominantLanguageOutput::builder()
                    .result_list(result(2, &[("en", 0.4), ("es", 0.55)]))
                    .result_list(result(0, &[("pt", 0.99)]))
                    .error_list(
                        BatchItemError::builder()
                            .index(1)
                            .error_code("INTERNAL_SERVER_ERROR")
                            .build(),
                    )
                    .build()
                    .expect("output")
            });
        let client = mock_client!(aws_sdk_comprehend, RuleMode::Sequential, &[&rule]);
        let ids = ComprehendLanguages::new(client);
        let long = "é".repeat(4_000); // 8,000 bytes: cut under the 5,000-byte limit
        let got = ids
            .identify(&["olá pessoal".into(), long, "hola amigos".into()])
            .await
            .expect("identified");
        assert!(
            matches!(&got[0], Answer::Other(i) if i.code == "pt"),
            "{got:?}"
        );
        assert!(
            matches!(&got[1], Answer::Unknown(why) if why.contains("INTERNAL_SERVER_ERROR")),
            "{got:?}"
        );
        assert!(
            matches!(&got[2], Answer::Other(i) if i.code == "es"),
            "{got:?}"
        );
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(ids.billing_units("hi"), 3);
        assert_eq!(ids.billing_units(&"a".repeat(450)), 5);
    }

    #[tokio::test]
    async fn throttling_is_a_throttled_error() {
        let rule = mock!(Comprehend::batch_detect_dominant_language).then_error(|| {
            BatchDetectDominantLanguageError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_comprehend, RuleMode::Sequential, &[&rule]);
        let e = ComprehendLanguages::new(client)
            .identify(&["hola".into()])
            .await
            .expect_err("throttled");
        assert!(
            matches!(
                e,
                CoreError::Service {
                    kind: ServiceErrorKind::Throttled,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[tokio::test]
    async fn translate_asks_for_english_from_the_identified_source() {
        let rule = mock!(Translate::translate_text)
            .match_requests(|r| {
                r.source_language_code() == Some("es") && r.target_language_code() == Some("en")
            })
            .then_output(|| {
                TranslateTextOutput::builder()
                    .translated_text("I will find you")
                    .source_language_code("es")
                    .target_language_code("en")
                    .build()
                    .expect("output")
            });
        let client = mock_client!(aws_sdk_translate, RuleMode::Sequential, &[&rule]);
        let t = TranslateToEnglish::new(client);
        assert_eq!(
            t.to_english("te voy a encontrar", "es").await.expect("ok"),
            "I will find you"
        );
        assert_eq!(t.max_bytes(), 10_000);
    }

    #[tokio::test]
    async fn translate_throttling_and_bad_pairs_are_classified() {
        let throttled = mock!(Translate::translate_text).then_error(|| {
            TranslateTextError::generic(
                ErrorMetadata::builder()
                    .code("TooManyRequestsException")
                    .build(),
            )
        });
        let pair = mock!(Translate::translate_text).then_error(|| {
            TranslateTextError::generic(
                ErrorMetadata::builder()
                    .code("UnsupportedLanguagePairException")
                    .build(),
            )
        });
        let client = mock_client!(
            aws_sdk_translate,
            RuleMode::Sequential,
            &[&throttled, &pair]
        );
        let t = TranslateToEnglish::new(client);
        let e = t.to_english("x", "xx").await.expect_err("throttled");
        assert!(
            matches!(
                e,
                CoreError::Service {
                    kind: ServiceErrorKind::Throttled,
                    ..
                }
            ),
            "{e}"
        );
        let e = t.to_english("x", "xx").await.expect_err("pair");
        assert!(
            matches!(
                e,
                CoreError::Service {
                    kind: ServiceErrorKind::InvalidInput,
                    ..
                }
            ),
            "{e}"
        );
    }
}
