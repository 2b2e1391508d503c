//! One moderated unit and what was found about it: scores per category, rule hits, the
//! revealed reading, the policy evaluation and the verdict.

use serde::{Deserialize, Serialize};

use super::*;

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
    /// The writer's age band (`13-15`, `18+`), from the upload or the user context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_band: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    pub toxicity: f64,
    pub categories: CategoryScores,
    pub rule_hits: Vec<RuleHit>,
    /// Conversation signals found in this message (`secrecy`, `age_probe`…): not a verdict on
    /// the line, but what the conversation's risk is made of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<SignalKind>,
    /// The text as a reader sees it when it was written to evade scoring (symbols between
    /// letters, reversed under a bidi override, look-alike letters…); scored and rule-scanned
    /// beside `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revealed: Option<Revealed>,
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
    /// The latest moderator decision standing on this item (the review loop); it outranks
    /// `verdict`, which is never changed by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionView>,
    /// The latest appeal against the decision on this item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appeal: Option<AppealView>,
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
            age_band: None,
            start_time: None,
            end_time: None,
            toxicity: 0.0,
            categories: CategoryScores::default(),
            rule_hits: Vec::new(),
            signals: Vec::new(),
            revealed: None,
            language: None,
            translation: None,
            verdict: None,
            evaluation: None,
            review_reason: None,
            bounding_box: None,
            decision: None,
            appeal: None,
        }
    }
}

/// The message as it reads once evasions are undone, and which evasions were found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revealed {
    pub text: String,
    pub evasions: Vec<String>,
    /// The lines read together when a message was split over several (the text module's split runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<String>,
}
