//! Scoring text: toxicity detection, language identification and translation.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::CategoryScores;

/// Per-call limits of a toxicity service (Comprehend: 10 segments, 1 KB each, 10 KB total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLimits {
    pub max_segments: usize,
    pub max_segment_bytes: usize,
    pub max_request_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToxicityScore {
    pub toxicity: f64,
    pub categories: CategoryScores,
    /// Rule-only categories a detector recognised (a trained head's `scam`); they join the
    /// item's rule hits, so the gate and the policy evaluator see them.
    pub rule_hits: Vec<crate::model::RuleHit>,
    /// Conversation signals a detector recognised in the text (an exemplar scorer's).
    pub signals: Vec<crate::model::SignalKind>,
}

#[async_trait]
pub trait ToxicityDetector: Send + Sync {
    fn name(&self) -> &str;
    fn limits(&self) -> SegmentLimits;
    /// Billing units one request of these segments costs (Comprehend units); 0 when free.
    fn billing_units(&self, _segments: &[Segment]) -> u64 {
        0
    }
    /// Scores for `segments`, in the same order. Callers respect [`Self::limits`].
    async fn detect(&self, segments: &[String]) -> Result<Vec<ToxicityScore>>;
}

/// Identifies the dominant language of texts (Comprehend `BatchDetectDominantLanguage`, or an
/// offline trigram model). Callers send at most [`Self::batch_size`] texts a call.
#[async_trait]
pub trait LanguageIdentifier: Send + Sync {
    fn name(&self) -> &str;
    fn batch_size(&self) -> usize;
    /// Billing units identifying one text costs (Comprehend: one per 100 characters, at least
    /// three); 0 when free.
    fn billing_units(&self, _text: &str) -> u64 {
        0
    }
    /// One answer per text, in order.
    async fn identify(&self, texts: &[String]) -> Result<Vec<Answer>>;
}

/// Translates a text into English (Amazon Translate). There is none offline.
#[async_trait]
pub trait Translator: Send + Sync {
    fn name(&self) -> &str;
    /// The longest text (UTF-8 bytes) one call takes; callers split longer messages.
    fn max_bytes(&self) -> usize;
    /// The English text; `source` is the ISO 639-1 code the identifier gave.
    async fn to_english(&self, text: &str, source: &str) -> Result<String>;
}

/// A segment to score, remembering which item it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub item: usize,
    pub text: String,
}

/// A language and how sure the identifier is, as an ISO 639-1 code where there is one
/// (`es`, `pt`, `zh`), the form Comprehend and Translate use.
#[derive(Debug, Clone, PartialEq)]
pub struct Identified {
    pub code: String,
    pub confidence: f64,
}

impl Identified {
    pub fn is_english(&self) -> bool {
        self.code == "en" || self.code.starts_with("en-")
    }
}

impl Identified {
    /// A speech service's language (Transcribe's `es-US`, `fr-CA`) as the identifiers and
    /// Translate name it: the language alone, but the regional variants Translate translates
    /// differently keep their region.
    pub fn from_speech(code: &str, confidence: f64) -> Identified {
        const REGIONAL: &[&str] = &["fr-CA", "pt-PT", "zh-TW", "es-MX"];
        let code = if REGIONAL.contains(&code) {
            code
        } else {
            code.split('-').next().unwrap_or(code)
        };
        Identified {
            code: code.to_string(),
            confidence,
        }
    }
}

/// An identifier's answer for one text.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    English,
    Other(Identified),
    /// The service could not tell (an item error): the message must not pass as English.
    Unknown(String),
}

impl Answer {
    /// English for an English code, otherwise the language.
    pub fn from_identified(id: Identified) -> Answer {
        if id.is_english() {
            Answer::English
        } else {
            Answer::Other(id)
        }
    }
}
