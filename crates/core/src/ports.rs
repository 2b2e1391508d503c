//! Ports: the narrow interfaces stages need from the outside world. Adapters live in
//! `moderation-aws` (SDK) and `moderation-offline` (embedded defaults); tests use fakes.

use std::io::Read;

use async_trait::async_trait;

use crate::error::Result;
use crate::event::ObjectRef;
use crate::model::{CategoryScores, Evaluation, Item, Usage, Verdict};

/// A source object opened for streaming; large bodies are spooled to disk, never held whole.
pub struct OpenedObject {
    pub reader: Box<dyn Read + Send>,
    pub size: Option<u64>,
    /// Version id or ETag of what was actually read.
    pub version: Option<String>,
}

#[async_trait]
pub trait ReadObjects: Send + Sync {
    async fn open(&self, obj: &ObjectRef) -> Result<OpenedObject>;
    /// A small document, `None` when it does not exist.
    async fn get_bytes(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>>;
}

#[async_trait]
pub trait WriteObjects: Send + Sync {
    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<()>;
}

#[async_trait]
pub trait ListObjects: Send + Sync {
    /// Keys under `prefix`, in no particular order.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>>;
}

/// Everything the chain needs from a bucket.
pub trait ObjectStore: ReadObjects + WriteObjects + ListObjects {}
impl<T: ReadObjects + WriteObjects + ListObjects> ObjectStore for T {}

/// Per-call limits of a toxicity service (Comprehend: 10 segments, 1 KB each, 10 KB total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLimits {
    pub max_segments: usize,
    pub max_segment_bytes: usize,
    pub max_request_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ToxicityScore {
    pub toxicity: f64,
    pub categories: CategoryScores,
}

#[async_trait]
pub trait ToxicityDetector: Send + Sync {
    fn name(&self) -> &str;
    fn limits(&self) -> SegmentLimits;
    /// Billing units one request of these segments costs (Comprehend units); 0 when free.
    fn billing_units(&self, _segments: &[crate::segment::Segment]) -> u64 {
        0
    }
    /// Scores for `segments`, in the same order. Callers respect [`Self::limits`].
    async fn detect(&self, segments: &[String]) -> Result<Vec<ToxicityScore>>;
}

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
    async fn judge(&self, req: &JudgeRequest<'_>) -> Result<Judgement>;
}

/// A reply from a chat model, with token usage for the report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatReply {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A chat LLM: instructions in `system`, untrusted content in `user`.
#[async_trait]
pub trait ChatModel: Send + Sync {
    fn model(&self) -> &str;
    async fn complete(&self, system: &str, user: &str) -> Result<ChatReply>;
}
