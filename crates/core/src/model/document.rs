//! The documents the stages exchange and the report: their schemas, summaries, error entries,
//! usage and dead letters.

use serde::{Deserialize, Serialize};

use super::*;

pub const REPORT_SCHEMA: &str = "moderation.report/v1";
pub const SCREENED_SCHEMA: &str = "moderation.screened/v1";
pub const EVALUATED_SCHEMA: &str = "moderation.evaluated/v1";

/// An error recorded against a stage and optionally one item, so nothing fails unseen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEntry {
    pub stage: String,
    /// The item the error concerns; null for errors about the whole source.
    #[serde(default)]
    pub item: Option<String>,
    pub message: String,
}

impl ErrorEntry {
    pub fn new(stage: &str, item: Option<&str>, message: impl Into<String>) -> Self {
        ErrorEntry {
            stage: stage.to_string(),
            item: item.map(str::to_string),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub comprehend_units: u64,
    pub transcribe_seconds: f64,
    pub llm_calls: u64,
    pub llm_input_tokens: u64,
    pub llm_output_tokens: u64,
    /// Characters sent to Translate (its billing unit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub translated_characters: u64,
    /// Comprehend language-detection units (one per 100 characters, 3 minimum, per document).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub language_units: u64,
    /// Images sent to the labelling and text services.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub images: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.translated_characters += other.translated_characters;
        self.language_units += other.language_units;
        self.images += other.images;
        self.comprehend_units += other.comprehend_units;
        self.transcribe_seconds += other.transcribe_seconds;
        self.llm_calls += other.llm_calls;
        self.llm_input_tokens += other.llm_input_tokens;
        self.llm_output_tokens += other.llm_output_tokens;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Complete,
    Partial,
    Failed,
}

/// The document a stage writes for the next one (`screened/<id>.json`, `evaluated/<id>.json`).
/// One shape for both so a stage only ever adds to what it was given. `I` is how the items are
/// held: in memory, or spooled to disk one at a time (`crate::chain::spool`) so a stage's memory does
/// not grow with the upload; both serialise to the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageDocument<I = Vec<Item>> {
    pub schema: String,
    pub id: String,
    pub created_at: String,
    pub source: Source,
    /// S3 version id or ETag of the source object when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// The S3 event sequencer of that write, so an older event never overwrites a newer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sequencer: Option<String>,
    pub trigger: Trigger,
    pub status: Status,
    /// The toxicity threshold screening applied to this source.
    pub threshold: f64,
    pub items: I,
    /// Below-threshold items of a huge upload counted instead of listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlisted: Option<Unlisted>,
    pub errors: Vec<ErrorEntry>,
    pub usage: Usage,
    /// For an image source: labels, conversions and models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageFindings>,
    /// Conversations whose risk passed the conversation gate, riskiest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversations: Vec<Conversation>,
    /// How many conversations were assessed and how many passed the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_count: Option<ConversationCount>,
}

/// Below-threshold items screening counted but did not list: past
/// `MAX_LISTED_BELOW_THRESHOLD` of them an upload's clean lines are summarised here, so a
/// million-line log makes documents a browser and the next stage can handle. Every item over
/// the threshold, or held for a person, is always listed in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unlisted {
    /// How many items were counted and not listed.
    pub below_threshold: u64,
    /// The highest toxicity among them (all are under the threshold).
    pub max_toxicity: f64,
    /// The first and last of their ids, in upload order.
    pub first: String,
    pub last: String,
}

impl Unlisted {
    /// Count one more below-threshold item.
    pub fn add(this: &mut Option<Unlisted>, item: &Item) {
        match this {
            Some(u) => {
                u.below_threshold += 1;
                u.max_toxicity = u.max_toxicity.max(item.toxicity);
                u.last.clone_from(&item.id);
            }
            None => {
                *this = Some(Unlisted {
                    below_threshold: 1,
                    max_toxicity: item.toxicity,
                    first: item.id.clone(),
                    last: item.id.clone(),
                })
            }
        }
    }
}

impl<I> StageDocument<I> {
    /// The same document holding `items` (in memory, or spooled) instead.
    pub fn with_items<J>(self, items: J) -> StageDocument<J> {
        StageDocument {
            schema: self.schema,
            id: self.id,
            created_at: self.created_at,
            source: self.source,
            source_version: self.source_version,
            source_sequencer: self.source_sequencer,
            trigger: self.trigger,
            status: self.status,
            threshold: self.threshold,
            items,
            unlisted: self.unlisted,
            errors: self.errors,
            usage: self.usage,
            image: self.image,
            conversations: self.conversations,
            conversation_count: self.conversation_count,
        }
    }

    /// Whether screening sent this item on to policy evaluation.
    pub fn is_over_threshold(&self, item: &Item) -> bool {
        item.toxicity >= self.threshold || !item.rule_hits.is_empty()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub items: u64,
    pub over_threshold: u64,
    pub evaluated: u64,
    pub violations: u64,
    pub needs_review: u64,
    pub max_toxicity: f64,
    /// Conversations assessed, over the conversation gate, violating, held for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<ConversationCount>,
}

/// `reports/<id>.json`, schema `moderation.report/v1`. `I` as in [`StageDocument`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report<I = Vec<Item>> {
    pub schema: String,
    pub report_id: String,
    pub created_at: String,
    pub source: Source,
    pub trigger: Trigger,
    pub status: Status,
    /// Counts every item, the unlisted ones too.
    pub summary: Summary,
    pub items: I,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlisted: Option<Unlisted>,
    pub errors: Vec<ErrorEntry>,
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageFindings>,
    /// Conversations whose risk passed the conversation gate, riskiest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversations: Vec<Conversation>,
}

impl<I> Report<I> {
    /// The same report holding `items` (in memory, or spooled) instead.
    pub fn with_items<J>(self, items: J) -> Report<J> {
        Report {
            schema: self.schema,
            report_id: self.report_id,
            created_at: self.created_at,
            source: self.source,
            trigger: self.trigger,
            status: self.status,
            summary: self.summary,
            items,
            unlisted: self.unlisted,
            errors: self.errors,
            usage: self.usage,
            image: self.image,
            conversations: self.conversations,
        }
    }
}

/// `failed/<id>.json`: work a stage could not do, with enough to find and replay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub schema: String,
    pub id: String,
    pub stage: String,
    pub reason: String,
    pub input_key: String,
    pub input_uri: String,
    pub failed_at: String,
    /// Deliveries made before giving up (SQS receive count), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

pub const DEAD_LETTER_SCHEMA: &str = "moderation.failed/v1";
