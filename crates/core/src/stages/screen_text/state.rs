//! What the chunks of one upload share: the translation budget and the scores of short texts
//! already seen. A leaf: the chunk, language and scoring steps all read it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::ports::ToxicityScore;

/// Texts up to this many bytes are remembered with their scores for the rest of the upload:
/// chat repeats itself ("gg", "lol", "ok"), and a repeated line costs no second call.
const CACHED_TEXT_BYTES: usize = 64;
/// Scores remembered per upload: enough for the lines a chat repeats, and under a MiB.
const CACHED_SCORES: usize = 2_000;

/// What the chunks of one upload share: the translation budget, and scores of short texts
/// already seen.
pub struct UploadState {
    translate_left: AtomicU64,
    scores: Mutex<HashMap<String, ToxicityScore>>,
}

impl UploadState {
    pub fn new(translate_budget: u64) -> Self {
        UploadState {
            translate_left: AtomicU64::new(translate_budget),
            scores: Mutex::new(HashMap::new()),
        }
    }

    /// Take `chars` of the translation budget; false when they are not left.
    pub(super) fn take_translation(&self, chars: u64) -> bool {
        self.translate_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(chars)
            })
            .is_ok()
    }

    pub(super) fn cached(&self, text: &str) -> Option<ToxicityScore> {
        if text.len() > CACHED_TEXT_BYTES {
            return None;
        }
        self.scores.lock().ok()?.get(text).cloned()
    }

    pub(super) fn remember(&self, text: &str, score: &ToxicityScore) {
        if text.len() > CACHED_TEXT_BYTES {
            return;
        }
        if let Ok(mut scores) = self.scores.lock() {
            if scores.len() >= CACHED_SCORES {
                // Forgetting all at once keeps this O(1); the chat's common lines return soon.
                scores.clear();
            }
            scores.insert(text.to_string(), score.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_translation_budget_is_shared_and_never_overdrawn() {
        let state = UploadState::new(10);
        assert!(state.take_translation(6));
        assert!(!state.take_translation(5), "only 4 left");
        assert!(state.take_translation(4));
        assert!(!state.take_translation(1));
    }

    #[test]
    fn only_short_texts_are_remembered() {
        let state = UploadState::new(0);
        let score = ToxicityScore {
            toxicity: 0.3,
            ..ToxicityScore::default()
        };
        state.remember("gg", &score);
        let long = "x".repeat(CACHED_TEXT_BYTES + 1);
        state.remember(&long, &score);
        assert!(state
            .cached("gg")
            .is_some_and(|s| (s.toxicity - 0.3).abs() < 1e-9));
        assert!(state.cached(&long).is_none());
        assert!(state.cached("lol").is_none());
    }
}
