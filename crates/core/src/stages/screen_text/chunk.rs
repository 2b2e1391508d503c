//! Screening a chunk of parsed messages: languages, items and their segments, the detector,
//! the gate. What the chunks of one upload share lives in [`UploadState`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::model::{ErrorEntry, Item, Revealed, Usage};
use crate::ports::{Segment, ToxicityScore};
use crate::text::parse::ParsedMessage;
use crate::text::split_runs::{joined_runs, Joined};

use super::items::{
    language_texts, message_item, reveal_each, split_lines, with_joined, ItemRules,
};
use super::language::{languages_of, LanguageOf};
use super::scoring::{apply_gate, detect_batches, merge_scores, plan_sends, record_results};
use super::ScreenDeps;

/// Score parsed messages: rule hits, detector scores (the most toxic chunk wins), the gate.
/// Items whose scores could not be obtained are `needs_review`, never `below_threshold`.
pub async fn screen_messages(
    messages: Vec<ParsedMessage>,
    deps: &ScreenDeps<'_>,
    threshold: f64,
    max_concurrency: usize,
) -> (Vec<Item>, Vec<ErrorEntry>, Usage) {
    screen_messages_within(messages, deps, threshold, max_concurrency, u64::MAX).await
}

/// [`screen_messages`] translating at most `translate_budget` characters.
pub async fn screen_messages_within(
    messages: Vec<ParsedMessage>,
    deps: &ScreenDeps<'_>,
    threshold: f64,
    max_concurrency: usize,
    translate_budget: u64,
) -> (Vec<Item>, Vec<ErrorEntry>, Usage) {
    let state = UploadState::new(translate_budget);
    screen_chunk(messages, deps, threshold, max_concurrency, &state).await
}

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

/// Each message's language and, for a message ending a split one, the joined reading.
async fn languages_and_joins(
    messages: &[ParsedMessage],
    revealed: &[Option<Revealed>],
    deps: &ScreenDeps<'_>,
    max_concurrency: usize,
    state: &UploadState,
    usage: &mut Usage,
    errors: &mut Vec<ErrorEntry>,
) -> (Vec<LanguageOf>, Vec<Option<Joined>>) {
    let texts = language_texts(messages, revealed);
    let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    let joined = joined_runs(&split_lines(messages, &texts));
    let languages = languages_of(&texts, &ids, deps, max_concurrency, state, usage, errors).await;
    (languages, joined)
}

/// The chunk's items, unscored, and the segments the detector scores them by.
fn build_items(
    messages: Vec<ParsedMessage>,
    languages: Vec<LanguageOf>,
    revealed: Vec<Option<Revealed>>,
    with: &ItemRules<'_>,
    errors: &mut Vec<ErrorEntry>,
) -> (Vec<Item>, Vec<Segment>) {
    let mut items: Vec<Item> = Vec::with_capacity(messages.len());
    let mut segments = Vec::new();
    for (((idx, m), lang), revealed) in messages
        .into_iter()
        .enumerate()
        .zip(languages)
        .zip(revealed)
    {
        items.push(message_item(
            idx,
            m,
            lang,
            revealed,
            with,
            &mut segments,
            errors,
        ));
    }
    (items, segments)
}

/// Score one chunk of an upload's messages, sharing `state` with the other chunks.
pub async fn screen_chunk(
    messages: Vec<ParsedMessage>,
    deps: &ScreenDeps<'_>,
    threshold: f64,
    max_concurrency: usize,
    state: &UploadState,
) -> (Vec<Item>, Vec<ErrorEntry>, Usage) {
    let limits = deps.detector.limits();
    let mut errors = Vec::new();
    let mut usage = Usage::default();
    let revealed = reveal_each(&messages);
    let (languages, joined) = languages_and_joins(
        &messages,
        &revealed,
        deps,
        max_concurrency,
        state,
        &mut usage,
        &mut errors,
    )
    .await;
    let revealed = revealed
        .into_iter()
        .zip(joined)
        .map(|(r, j)| with_joined(r, j))
        .collect();
    let with = ItemRules {
        rules: deps.rules,
        max_segment_bytes: limits.max_segment_bytes,
    };
    let (mut items, segments) = build_items(messages, languages, revealed, &with, &mut errors);
    let mut plan = plan_sends(&segments, |text| state.cached(text));
    let to_send = std::mem::take(&mut plan.to_send);
    let (units, results) = detect_batches(to_send, deps.detector, limits, max_concurrency).await;
    let detector = deps.detector.name();
    record_results(&mut plan, results, detector, state, &mut errors);
    let failed = merge_scores(&mut items, &segments, plan.outcome, &mut errors);
    apply_gate(&mut items, &failed, detector, threshold);
    usage.comprehend_units = units;
    (items, errors, usage)
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
