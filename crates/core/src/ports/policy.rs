//! Judging items against the customer's policy: knowledge-base search, judges and chat models.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Conversation, Evaluation, Item, Usage, Verdict};

/// A passage of the customer's policy returned by a knowledge-base search.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyPassage {
    pub text: String,
    pub uri: String,
    pub score: f64,
}

#[async_trait]
pub trait PolicyRetriever: Send + Sync {
    async fn retrieve(&self, query: &str, top_k: usize) -> Result<Vec<PolicyPassage>>;
}

/// The search index a knowledge base keeps over the written policy (a Bedrock data source on
/// AWS). Offline there is none: the local search reads the policy folder at each check.
#[async_trait]
pub trait PolicyIndex: Send + Sync {
    /// Start re-indexing the policy files as they are now; `why` is recorded with the job.
    async fn start_sync(&self, why: &str) -> Result<SyncStart>;
}

/// What asking for a re-index came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStart {
    Started {
        job_id: String,
    },
    /// A job is already running. It may have listed the files before this change, so the
    /// caller asks again later rather than counting on it.
    Busy {
        job_id: Option<String>,
    },
}

/// One item to judge against retrieved passages.
pub struct JudgeRequest<'a> {
    pub item: &'a Item,
    pub passages: &'a [PolicyPassage],
    /// Categories at or above the threshold, and rule hits: why the item is being judged.
    pub signals: &'a str,
    /// The threshold screening applied, so a judge knows which categories flagged the item.
    pub threshold: f64,
    /// Earlier messages of the same conversation, oldest first: context only.
    pub context: &'a [&'a Item],
    /// A conversation judged as a whole (its thread, ages and signals); `item` then stands
    /// for its evidence lines.
    pub conversation: Option<&'a Conversation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub evaluation: Evaluation,
    pub usage: Usage,
    /// Why the verdict is `needs_review`, when the judge could not be trusted.
    pub problem: Option<String>,
}

/// Decides whether an item violates the policy (an LLM behind a prompt, or offline rules).
#[async_trait]
pub trait PolicyJudge: Send + Sync {
    fn model(&self) -> &str;
    /// True for a judge that searches the knowledge base itself (RetrieveAndGenerate): it is
    /// called without passages and returns the ones it cited.
    fn retrieves(&self) -> bool {
        false
    }
    /// False for a judge no text can talk round (the offline rules evaluator); a language
    /// model's "no violation" on content addressed to it is held for a person.
    fn reads_instructions(&self) -> bool {
        true
    }
    async fn judge(&self, req: &JudgeRequest<'_>) -> Result<Judgement>;
}

/// A reply from a chat model, with token usage for the report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatReply {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A picture sent with a prompt: PNG or JPEG bytes already within the model's limits.
#[derive(Debug, Clone, Copy)]
pub struct Picture<'a> {
    /// `png` or `jpeg`.
    pub format: &'a str,
    pub bytes: &'a [u8],
}

impl ChatReply {
    /// One model call and its tokens, for the report's usage.
    pub fn usage(&self) -> crate::model::Usage {
        crate::model::Usage {
            llm_calls: 1,
            llm_input_tokens: self.input_tokens,
            llm_output_tokens: self.output_tokens,
            ..Default::default()
        }
    }
}

/// A chat LLM: instructions in `system`, untrusted content in `user`.
#[async_trait]
pub trait ChatModel: Send + Sync {
    fn model(&self) -> &str;
    async fn complete(&self, system: &str, user: &str) -> Result<ChatReply>;
    /// The same with a picture in the user turn (a multimodal model). Models that cannot
    /// see say so, and the picture waits for a person.
    async fn complete_with_image(
        &self,
        _system: &str,
        _user: &str,
        _image: Picture<'_>,
    ) -> Result<ChatReply> {
        Err(crate::Error::service(
            "chat-model",
            crate::error::ServiceErrorKind::InvalidInput,
            format!("{} does not take images", self.model()),
        ))
    }
}
