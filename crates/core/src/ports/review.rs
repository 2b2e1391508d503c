//! The review loop's outside world: where decisions are published for the game to enforce,
//! and which version of the written policy a decision was made under.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::ReviewRecord;

/// Publishes each recorded decision and undo for the game to enforce or lift (EventBridge
/// events `moderation.decision` / `moderation.decision-undone` on AWS, JSON lines in
/// `decisions/events.jsonl` offline).
#[async_trait]
pub trait DecisionEvents: Send + Sync {
    async fn publish(&self, record: &ReviewRecord) -> Result<()>;
}

/// The event's `detail-type` for a record.
pub fn detail_type(record: &ReviewRecord) -> &'static str {
    match record {
        ReviewRecord::Decision(_) => "moderation.decision",
        ReviewRecord::Undo(_) => "moderation.decision-undone",
        ReviewRecord::Appeal(_) => "moderation.appeal",
    }
}

/// The written policy's version: a hash of its files as they are now.
#[async_trait]
pub trait PolicyVersion: Send + Sync {
    async fn policy_version(&self) -> Result<String>;
}
