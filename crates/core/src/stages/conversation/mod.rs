//! Conversation-level risk: grooming and other harm that no single message shows. Each
//! message's signals (word patterns, the detector's sexual score and, offline, an exemplar
//! scorer) are gathered per conversation over a window of its last messages; a user's signals
//! are weighted by who they are talking to (an adult and a 13-year-old is not two
//! 13-year-olds); conversations at or over `CONVERSATION_THRESHOLD` are listed for the policy
//! check and the report, the others counted.
//!
//! Steps: `risk` (pure scoring), `tracker` (the upload's conversations streamed in bounded
//! memory), `context` (the user-context file).

use std::sync::Arc;

use crate::model::{Item, RuleHit, SignalKind};

mod context;
mod risk;
mod tracker;

pub use context::UserContexts;
pub use risk::{age_factor, history_factor, risk, weight, WEAK_ONLY_CAP};
pub use tracker::Tracker;

/// The default conversation gate (`CONVERSATION_THRESHOLD`).
pub const DEFAULT_CONVERSATION_THRESHOLD: f64 = 0.5;
/// The default window (`CONVERSATION_WINDOW`): a conversation's risk is that of its riskiest
/// run of this many messages.
pub const DEFAULT_CONVERSATION_WINDOW: usize = 50;

#[derive(Debug, Clone)]
pub struct ConversationConfig {
    pub threshold: f64,
    pub window: usize,
    /// The game's user context (`USER_CONTEXT_URI`); empty when none is set.
    pub users: Arc<UserContexts>,
}

impl Default for ConversationConfig {
    fn default() -> Self {
        ConversationConfig {
            threshold: DEFAULT_CONVERSATION_THRESHOLD,
            window: DEFAULT_CONVERSATION_WINDOW,
            users: Arc::default(),
        }
    }
}

/// Sexual content the detector or a rule found is a conversation signal too.
pub fn add_detected_signals(item: &mut Item, threshold: f64) {
    let sexual_rule = |h: &RuleHit| {
        let c = h.category();
        c == "sexual" || c.starts_with("minor_sexual") || c.starts_with("child_safety")
    };
    let sexual = item.categories.sexual >= threshold || item.rule_hits.iter().any(sexual_rule);
    if sexual && !item.signals.contains(&SignalKind::Sexual) {
        item.signals.push(SignalKind::Sexual);
        item.signals.sort();
    }
}

#[cfg(test)]
mod tests;
