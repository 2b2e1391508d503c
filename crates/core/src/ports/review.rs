//! The review loop's outside world: where decisions are published for the game to enforce,
//! and which version of the written policy a decision was made under.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::Decision;

/// Publishes each recorded decision (an EventBridge event `moderation.decision` on AWS, a JSON
/// line in `decisions/events.jsonl` offline).
#[async_trait]
pub trait DecisionEvents: Send + Sync {
    async fn publish(&self, decision: &Decision) -> Result<()>;
}

/// The written policy's version: a hash of its files as they are now.
#[async_trait]
pub trait PolicyVersion: Send + Sync {
    async fn policy_version(&self) -> Result<String>;
}
