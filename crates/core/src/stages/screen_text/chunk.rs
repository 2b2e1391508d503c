//! Screening a chunk of parsed messages: languages, items and their segments, the detector,
//! the gate. What the chunks of one upload share lives in [`UploadState`].

use crate::model::{ErrorEntry, Item, Revealed, Usage};
use crate::ports::Segment;
use crate::text::parse::ParsedMessage;
use crate::text::split_runs::{joined_runs, Joined};

use super::items::{
    language_texts, message_item, reveal_each, split_lines, with_joined, ItemRules,
};
use super::language::{languages_of, LanguageOf};
use super::scoring::{apply_gate, detect_batches, merge_scores, plan_sends, record_results};
use super::state::UploadState;
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
