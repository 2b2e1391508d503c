//! What the stage is given: its settings, and the ports it reads, retrieves and judges with.

use super::image_check::ImageJudge;
use crate::ports::{ObjectStore, PolicyJudge, PolicyRetriever};

/// The stage's name in error entries and logs.
pub(crate) const STAGE: &str = "evaluate-policy";

#[derive(Debug, Clone)]
pub struct EvaluateConfig {
    pub top_k: usize,
    pub max_concurrency: usize,
    /// Earlier messages of the same conversation sent as context (0 = none).
    pub context_messages: usize,
    /// Judge calls allowed per source object; the rest are `needs_review`.
    pub max_calls: usize,
}

pub struct EvaluateDeps<'a> {
    pub store: &'a dyn ObjectStore,
    pub retriever: &'a dyn PolicyRetriever,
    pub judge: &'a dyn PolicyJudge,
    /// A multimodal model with the image checklist; without one a picture's labels are
    /// judged as text by `judge`.
    pub images: Option<&'a ImageJudge>,
}
