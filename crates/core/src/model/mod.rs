//! The moderation domain: items, their signals, verdicts, and the documents stages exchange.
//!
//! `Report` and everything it contains is the `moderation.report/v1` contract (README, "Report JSON"):
//! field names here are relied on by users' automation, so change them only with the contract.

use serde::{Deserialize, Serialize};

pub const REPORT_SCHEMA: &str = "moderation.report/v1";
pub const SCREENED_SCHEMA: &str = "moderation.screened/v1";
pub const EVALUATED_SCHEMA: &str = "moderation.evaluated/v1";

/// What kind of content a source object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Audio,
    Text,
    Image,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Audio => "audio",
            SourceKind::Text => "text",
            SourceKind::Image => "image",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub uri: String,
    pub kind: SourceKind,
    /// A recording's spoken language as the speech service gave it (`es-US`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl Source {
    pub fn new(uri: impl Into<String>, kind: SourceKind) -> Self {
        Source {
            uri: uri.into(),
            kind,
            language: None,
        }
    }
}

/// The seven toxicity categories Comprehend and Transcribe share, in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Profanity,
    HateSpeech,
    Sexual,
    Insult,
    ViolenceOrThreat,
    Graphic,
    HarassmentOrAbuse,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Profanity,
        Category::HateSpeech,
        Category::Sexual,
        Category::Insult,
        Category::ViolenceOrThreat,
        Category::Graphic,
        Category::HarassmentOrAbuse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Profanity => "profanity",
            Category::HateSpeech => "hate_speech",
            Category::Sexual => "sexual",
            Category::Insult => "insult",
            Category::ViolenceOrThreat => "violence_or_threat",
            Category::Graphic => "graphic",
            Category::HarassmentOrAbuse => "harassment_or_abuse",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Words a policy passage about this category is likely to use; feeds retrieval queries.
    pub fn describe(self) -> &'static str {
        match self {
            Category::Profanity => "profanity swearing obscene language",
            Category::HateSpeech => "hate speech identity slurs",
            Category::Sexual => "sexual content",
            Category::Insult => "insults name-calling demeaning",
            Category::ViolenceOrThreat => "threats violence harm",
            Category::Graphic => "graphic violence gore",
            Category::HarassmentOrAbuse => "harassment bullying abuse self-harm",
        }
    }
}

/// Per-category scores in [0, 1].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CategoryScores {
    pub profanity: f64,
    pub hate_speech: f64,
    pub sexual: f64,
    pub insult: f64,
    pub violence_or_threat: f64,
    pub graphic: f64,
    pub harassment_or_abuse: f64,
}

impl CategoryScores {
    pub fn get(&self, c: Category) -> f64 {
        match c {
            Category::Profanity => self.profanity,
            Category::HateSpeech => self.hate_speech,
            Category::Sexual => self.sexual,
            Category::Insult => self.insult,
            Category::ViolenceOrThreat => self.violence_or_threat,
            Category::Graphic => self.graphic,
            Category::HarassmentOrAbuse => self.harassment_or_abuse,
        }
    }

    pub fn set(&mut self, c: Category, v: f64) {
        let slot = match c {
            Category::Profanity => &mut self.profanity,
            Category::HateSpeech => &mut self.hate_speech,
            Category::Sexual => &mut self.sexual,
            Category::Insult => &mut self.insult,
            Category::ViolenceOrThreat => &mut self.violence_or_threat,
            Category::Graphic => &mut self.graphic,
            Category::HarassmentOrAbuse => &mut self.harassment_or_abuse,
        };
        *slot = v;
    }

    /// Raise a category to at least `v`.
    pub fn raise(&mut self, c: Category, v: f64) {
        if v > self.get(c) {
            self.set(c, v);
        }
    }

    pub fn max(&self) -> f64 {
        Category::ALL
            .iter()
            .map(|c| self.get(*c))
            .fold(0.0, f64::max)
    }

    /// Categories sorted by descending score.
    pub fn ranked(&self) -> Vec<(Category, f64)> {
        let mut v: Vec<_> = Category::ALL.iter().map(|c| (*c, self.get(*c))).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }
}

/// A forbidden-term match from the rule filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleHit {
    /// `<category>:<term>`, e.g. `violence_or_threat:kill yourself`.
    pub rule: String,
    /// The text as written in the message that matched.
    pub matched: String,
}

impl RuleHit {
    /// The category part of `rule`.
    pub fn category(&self) -> &str {
        self.rule.split_once(':').map_or(&*self.rule, |(c, _)| c)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Violation,
    NoViolation,
    NeedsReview,
    BelowThreshold,
}

impl Verdict {
    /// A trusted answer of a judge: it violates the policy, or it does not.
    pub fn of_answer(violates: bool) -> Self {
        if violates {
            Verdict::Violation
        } else {
            Verdict::NoViolation
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Violation => "violation",
            Verdict::NoViolation => "no_violation",
            Verdict::NeedsReview => "needs_review",
            Verdict::BelowThreshold => "below_threshold",
        }
    }
}

/// A policy passage the evaluator consulted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub text: String,
    pub uri: String,
}

/// What the policy evaluator said about one item.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Evaluation {
    /// `Y`, `N`, or null when the answer could not be trusted.
    #[serde(default)]
    pub answer: Option<String>,
    pub analysis: String,
    pub references: Vec<Reference>,
    pub model: String,
    /// Ids of the earlier messages sent to the judge as context, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// Pictures: the category the model named for an unsafe image (one of the checklist's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Pictures: the model's yes/no answer to each checklist question, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklist: Vec<ChecklistAnswer>,
}

/// One checklist question about a picture and the model's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistAnswer {
    pub category: String,
    pub question: String,
    /// `yes` or `no`.
    pub answer: String,
}

/// One moderated unit: a chat line or an audio segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    pub toxicity: f64,
    pub categories: CategoryScores,
    pub rule_hits: Vec<RuleHit>,
    /// The text as a reader sees it when it was written to evade scoring (symbols between
    /// letters, reversed under a bidi override, look-alike letters…); scored and rule-scanned
    /// beside `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revealed: Option<crate::text::evasion::Revealed>,
    /// The message's language (ISO 639-1) when it is not English; `text` stays the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The English translation that was scored and rule-scanned beside the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<String>,
    /// `None` until a stage decides; screening sets `below_threshold`, evaluation the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// Why a person must look whatever the scores say: content cut or unparseable, scores
    /// unavailable. Such an item is never passed as clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    /// Where a line of text read from an image sits on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounding_box: Option<BoundingBox>,
}

impl Item {
    /// An item with no scores, hits or verdict yet.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Item {
            id: id.into(),
            text: text.into(),
            user: None,
            timestamp: None,
            conversation: None,
            start_time: None,
            end_time: None,
            toxicity: 0.0,
            categories: CategoryScores::default(),
            rule_hits: Vec::new(),
            revealed: None,
            language: None,
            translation: None,
            verdict: None,
            evaluation: None,
            review_reason: None,
            bounding_box: None,
        }
    }
}

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

/// The user-report event detail (README, "How it works"), carried into the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserReport {
    pub report_id: String,
    pub reporter_id: String,
    pub reported_user_id: String,
    pub conversation_id: String,
    pub reason: String,
    pub reported_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: TriggerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_report: Option<UserReport>,
}

impl Trigger {
    pub fn upload() -> Self {
        Trigger {
            kind: TriggerKind::Upload,
            user_report: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Upload,
    UserReport,
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
