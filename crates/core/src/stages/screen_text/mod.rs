//! screen-text: parse a chat log, identify each message's language (translating what is not
//! English), run the rule filter and the toxicity detector, apply the threshold gate, and write
//! `screened/<id>.json`.

use std::collections::HashMap;
use std::future::Future as _;
use std::sync::atomic::Ordering;

use futures::stream::{self, StreamExt};
use tracing::{info, warn};

use crate::chain::config::Thresholds;
use crate::chain::delivery::{
    dead_letter, now_rfc3339, put_json, put_spooled, read_document, Outcome,
};
use crate::chain::event::sequencer_is_newer;
use crate::chain::keys::{self, Stage};
use crate::chain::spool::{ErrorLog, ItemSpool, ItemsSlot, SkippedItems, SpooledItems};
use crate::error::{Error, Result};
use crate::model::ObjectRef;
use crate::model::{
    ErrorEntry, Item, SourceKind, StageDocument, Status, Trigger, Usage, Verdict, SCREENED_SCHEMA,
};
use crate::ports::Segment;
use crate::ports::{Answer, Identified};
use crate::ports::{LanguageIdentifier, ObjectStore, ToxicityDetector, ToxicityScore, Translator};
use crate::text::language::{guess, Guess};
use crate::text::parse::{parse_messages_noting, ParseOptions, ParsedMessage, TextFormat};
use crate::text::rules::RuleFilter;
use crate::text::segment::{batch_segments, chunk_text};

const JSON: &str = "application/json";

const STAGE: &str = "screen-text";

/// Uploads larger than this (100 MiB) get a failed report unless `MAX_OBJECT_BYTES` says more.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 100 * 1024 * 1024;

/// The gate in front of the LLM: at or above the threshold, or any rule hit.
pub fn over_threshold(item: &Item, threshold: f64) -> bool {
    item.toxicity >= threshold || !item.rule_hits.is_empty()
}

#[derive(Debug, Clone)]
pub struct ScreenConfig {
    pub thresholds: Thresholds,
    /// Larger uploads get a failed report instead of being read.
    pub max_object_bytes: u64,
    /// Detector calls in flight at once.
    pub max_concurrency: usize,
    pub parse: ParseOptions,
    /// `MAX_TRANSLATED_CHARS_PER_OBJECT`: Translate bills by the character; past this many a
    /// message in another language is `needs_review` untranslated.
    pub max_translated_chars: u64,
    /// `MAX_LISTED_BELOW_THRESHOLD`: below-threshold items listed in full; the rest of a huge
    /// upload's clean lines are counted in the document's `unlisted`.
    pub max_listed_below: u64,
}

/// The default translation budget per upload: a million characters (about 15 USD).
pub const DEFAULT_MAX_TRANSLATED_CHARS: u64 = 1_000_000;

pub struct ScreenDeps<'a> {
    pub store: &'a dyn ObjectStore,
    pub detector: &'a dyn ToxicityDetector,
    pub rules: &'a RuleFilter,
    pub languages: &'a dyn LanguageIdentifier,
    /// `None` offline: a message in another language is then `needs_review` unless a rule
    /// catches it.
    pub translator: Option<&'a dyn Translator>,
    /// The language every message is in, when the source says (a transcript whose language
    /// Transcribe identified): nothing is identified per message.
    pub known_language: Option<Identified>,
    /// Told of each chunk of messages screened.
    pub progress: Option<&'a dyn crate::ports::Progress>,
    /// The invocation's time ([`crate::chain::delivery::TimeLimit`]): no new chunk of an upload starts
    /// after its `new_work` and detector calls are abandoned at its `calls`; the messages
    /// screened by then are written with status `failed` and a reason naming the last one,
    /// instead of the function timing out with nothing written. `None`: no limit (modctl).
    pub time_limit: Option<crate::chain::delivery::TimeLimit>,
}

/// One identifier call's answer per text.
type IdentifyResult = Result<Vec<Answer>>;

/// What became of one message's language.
#[derive(Debug, Default)]
struct LanguageOf {
    /// `None` for English (or a line the identifier could not place offline).
    language: Option<Identified>,
    translation: Option<String>,
    /// Why a person must look: no translator, a failed call, the budget spent.
    problem: Option<String>,
}

/// Each text's language: the pre-filter, then the identifier in its batch size for the lines
/// the pre-filter cannot settle.
async fn identify_each(
    texts: &[&str],
    ids: &[&str],
    deps: &ScreenDeps<'_>,
    max_concurrency: usize,
    usage: &mut Usage,
    errors: &mut Vec<ErrorEntry>,
) -> Vec<LanguageOf> {
    let mut out: Vec<LanguageOf> = Vec::with_capacity(texts.len());
    let mut unsure: Vec<usize> = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let mut l = LanguageOf::default();
        match guess(t) {
            Guess::English => {}
            // With a translator (AWS) the service names the source language: the trigram
            // model confuses related languages on short lines (ru/uk/bg, kanji-only ja/zh).
            Guess::Other(_) if deps.translator.is_some() => unsure.push(i),
            Guess::Other(id) => l.language = Some(id),
            Guess::Unsure => unsure.push(i),
        }
        out.push(l);
    }
    let batch = deps.languages.batch_size().max(1);
    let calls: Vec<Vec<usize>> = unsure.chunks(batch).map(<[usize]>::to_vec).collect();
    let results: Vec<(Vec<usize>, IdentifyResult)> = stream::iter(calls)
        .map(|idx| async move {
            let docs: Vec<String> = idx.iter().map(|i| texts[*i].to_string()).collect();
            let r = deps.languages.identify(&docs).await;
            (idx, r)
        })
        .buffer_unordered(max_concurrency.max(1))
        .collect()
        .await;
    let mut unknown = |out: &mut [LanguageOf], i: usize, why: String| {
        errors.push(ErrorEntry::new(STAGE, Some(ids[i]), why.clone()));
        out[i].problem = Some(why);
    };
    for (idx, r) in results {
        match r {
            Ok(found) if found.len() == idx.len() => {
                usage.language_units += idx
                    .iter()
                    .map(|i| deps.languages.billing_units(texts[*i]))
                    .sum::<u64>();
                for (i, answer) in idx.into_iter().zip(found) {
                    match answer {
                        Answer::English => {}
                        Answer::Other(id) => out[i].language = Some(id),
                        Answer::Unknown(why) => unknown(
                            &mut out,
                            i,
                            format!("language not identified ({why}); scored as English"),
                        ),
                    }
                }
            }
            Ok(found) => {
                let why = format!(
                    "language not identified: {} returned {} answers for {} texts",
                    deps.languages.name(),
                    found.len(),
                    idx.len()
                );
                for i in idx {
                    unknown(&mut out, i, why.clone());
                }
            }
            Err(e) => {
                warn!(error = %e, texts = idx.len(), "language identification failed");
                for i in idx {
                    let why = format!("language not identified ({e}); scored as English");
                    unknown(&mut out, i, why);
                }
            }
        }
    }
    out
}

/// Languages for `texts` (the source's known language, or [`identify_each`]), then Translate
/// for the ones not in English, while `budget` characters last.
async fn languages_of(
    texts: &[&str],
    ids: &[&str],
    deps: &ScreenDeps<'_>,
    max_concurrency: usize,
    budget: &UploadState,
    usage: &mut Usage,
    errors: &mut Vec<ErrorEntry>,
) -> Vec<LanguageOf> {
    let mut out = match &deps.known_language {
        Some(known) => texts
            .iter()
            .map(|_| LanguageOf {
                language: (!known.is_english()).then(|| known.clone()),
                ..LanguageOf::default()
            })
            .collect(),
        None => identify_each(texts, ids, deps, max_concurrency, usage, errors).await,
    };
    let foreign: Vec<(usize, String)> = out
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i, l.language.as_ref()?.code.clone())))
        .collect();
    let Some(translator) = deps.translator else {
        for (i, code) in foreign {
            out[i].problem = Some(format!("language {code}: no offline toxicity model"));
        }
        return out;
    };
    // Translate bills by the character: past the upload's budget a person reads the rest.
    let mut within = Vec::new();
    for (i, code) in foreign {
        let chars = texts[i].chars().count() as u64;
        if budget.take_translation(chars) {
            within.push((i, code));
        } else {
            let why = format!(
                "language {code}: not translated, the upload's translation budget \
                 (MAX_TRANSLATED_CHARS_PER_OBJECT) is spent"
            );
            errors.push(ErrorEntry::new(STAGE, Some(ids[i]), why.clone()));
            out[i].problem = Some(why);
        }
    }
    let done: Vec<(usize, String, u64, Result<String>)> = stream::iter(within)
        .map(|(i, code)| async move {
            // Long messages go in pieces under the service's limit, split between words.
            let mut english = Vec::new();
            let mut billed = 0u64;
            for piece in chunk_text(texts[i], translator.max_bytes()) {
                match translator.to_english(&piece, &code).await {
                    Ok(t) => {
                        billed += piece.chars().count() as u64;
                        english.push(t);
                    }
                    Err(e) => return (i, code, billed, Err(e)),
                }
            }
            (i, code, billed, Ok(english.join(" ")))
        })
        .buffer_unordered(max_concurrency.max(1))
        .collect()
        .await;
    for (i, code, billed, r) in done {
        usage.translated_characters += billed;
        match r {
            Ok(english) => out[i].translation = Some(english),
            Err(e) => {
                warn!(error = %e, "translation failed");
                let why = format!("language {code}: translation failed ({e}); scored untranslated");
                errors.push(ErrorEntry::new(STAGE, Some(ids[i]), why.clone()));
                out[i].problem = Some(why);
            }
        }
    }
    out
}

/// One hit per rule: a term found in both readings of a message, or a detector's rule
/// category found in several chunks, is listed once.
fn add_rule_hit(hits: &mut Vec<crate::model::RuleHit>, hit: crate::model::RuleHit) {
    if !hits.iter().any(|h| h.rule == hit.rule) {
        hits.push(hit);
    }
}

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
    translate_left: std::sync::atomic::AtomicU64,
    scores: std::sync::Mutex<HashMap<String, ToxicityScore>>,
}

impl UploadState {
    pub fn new(translate_budget: u64) -> Self {
        UploadState {
            translate_left: std::sync::atomic::AtomicU64::new(translate_budget),
            scores: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Take `chars` of the translation budget; false when they are not left.
    fn take_translation(&self, chars: u64) -> bool {
        use std::sync::atomic::Ordering;
        self.translate_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(chars)
            })
            .is_ok()
    }

    fn cached(&self, text: &str) -> Option<ToxicityScore> {
        if text.len() > CACHED_TEXT_BYTES {
            return None;
        }
        self.scores.lock().ok()?.get(text).cloned()
    }

    fn remember(&self, text: &str, score: &ToxicityScore) {
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

/// The messages as the split-message join reads them: their (revealed) readings.
fn split_lines<'a>(
    messages: &'a [ParsedMessage],
    texts: &[&'a str],
) -> Vec<crate::text::split_runs::Line<'a>> {
    messages
        .iter()
        .zip(texts)
        .map(|(m, text)| crate::text::split_runs::Line {
            id: &m.id,
            text,
            user: m.user.as_deref(),
            conversation: m.conversation.as_deref(),
        })
        .collect()
}

/// A message's revealed reading, replaced by the joined reading of the split message it ends
/// (which holds its own reading), keeping the evasions found in it.
fn with_joined(
    revealed: Option<crate::model::Revealed>,
    joined: Option<crate::text::split_runs::Joined>,
) -> Option<crate::model::Revealed> {
    let Some(j) = joined else {
        return revealed;
    };
    let mut evasions = revealed.map(|r| r.evasions).unwrap_or_default();
    evasions.push(crate::text::split_runs::SPLIT.to_string());
    Some(crate::model::Revealed {
        text: j.text,
        evasions,
        lines: j.lines,
    })
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
    // Language is told from the revealed reading when there is one: English written with
    // look-alike Cyrillic letters is still English.
    let revealed: Vec<Option<crate::model::Revealed>> = messages
        .iter()
        .map(|m| crate::text::evasion::reveal(&m.text))
        .collect();
    let texts: Vec<&str> = messages
        .iter()
        .zip(&revealed)
        .map(|(m, r)| r.as_ref().map_or(m.text.as_str(), |r| r.text.as_str()))
        .collect();
    let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    let joined = crate::text::split_runs::joined_runs(&split_lines(&messages, &texts));
    let languages = languages_of(
        &texts,
        &ids,
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
        .map(|(r, j)| with_joined(r, j));
    let mut items: Vec<Item> = Vec::with_capacity(messages.len());
    let mut segments = Vec::new();
    for (((idx, m), lang), revealed) in messages
        .into_iter()
        .enumerate()
        .zip(languages)
        .zip(revealed)
    {
        // The revealed reading and the English translation are scored beside the original;
        // the most toxic chunk wins. With a translation the original is rule-scanned only:
        // the detector reads English, and would only be billed for noise.
        let translated = lang.translation.is_some();
        let readings = std::iter::once((m.text.as_str(), !translated))
            .chain(revealed.as_ref().map(|r| (r.text.as_str(), !translated)))
            .chain(lang.translation.as_deref().map(|t| (t, true)));
        let mut rule_hits = Vec::new();
        for (reading, score) in readings {
            // Empty text (a short CSV row) has nothing to score and would fail a whole batch.
            for chunk in chunk_text(reading, limits.max_segment_bytes)
                .into_iter()
                .filter(|c| score && !c.trim().is_empty())
            {
                segments.push(Segment {
                    item: idx,
                    text: chunk,
                });
            }
            for hit in deps.rules.scan(reading) {
                add_rule_hit(&mut rule_hits, hit);
            }
        }
        let mut review: Vec<String> = lang.problem.into_iter().collect();
        for issue in &m.issues {
            errors.push(ErrorEntry::new("parse", Some(&m.id), issue.message.clone()));
            if issue.needs_review {
                review.push(issue.message.clone());
            }
        }
        items.push(Item {
            rule_hits,
            revealed,
            language: lang.language.map(|l| l.code),
            translation: lang.translation,
            id: m.id,
            text: m.text,
            user: m.user,
            timestamp: m.timestamp,
            conversation: m.conversation,
            start_time: None,
            end_time: None,
            toxicity: 0.0,
            categories: Default::default(),
            verdict: None,
            evaluation: None,
            review_reason: (!review.is_empty()).then(|| review.join("; ")),
            bounding_box: None,
        });
    }

    // A text scored earlier in the upload, or twice in this chunk, is sent once; sent segments
    // are tagged with their position in `segments` so every copy finds its score.
    let mut outcome: Vec<Option<Scored>> = vec![None; segments.len()];
    let mut copies: Vec<(usize, usize)> = Vec::new();
    let mut to_send: Vec<Segment> = Vec::with_capacity(segments.len());
    {
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        for (n, seg) in segments.iter().enumerate() {
            if let Some(score) = state.cached(&seg.text) {
                outcome[n] = Some(Scored::Ok(score));
            } else if let Some(&first) = first_of.get(seg.text.as_str()) {
                copies.push((n, first));
            } else {
                first_of.insert(&seg.text, n);
                to_send.push(Segment {
                    item: n,
                    text: seg.text.clone(),
                });
            }
        }
    }
    let batches = batch_segments(to_send, limits);
    let units: u64 = batches.iter().map(|b| deps.detector.billing_units(b)).sum();
    let results: Vec<(Vec<Segment>, Result<Vec<ToxicityScore>>)> = stream::iter(batches)
        .map(|batch| async move {
            let texts: Vec<String> = batch.iter().map(|s| s.text.clone()).collect();
            let r = deps.detector.detect(&texts).await;
            (batch, r)
        })
        .buffer_unordered(max_concurrency.max(1))
        .collect()
        .await;
    for (batch, result) in results {
        match result {
            Ok(scores) if scores.len() == batch.len() => {
                for (seg, score) in batch.iter().zip(scores) {
                    state.remember(&seg.text, &score);
                    outcome[seg.item] = Some(Scored::Ok(score));
                }
            }
            Ok(scores) => {
                let msg = format!(
                    "{} returned {} results for {} segments",
                    deps.detector.name(),
                    scores.len(),
                    batch.len()
                );
                warn!(error = %msg, "detector result count mismatch");
                errors.push(ErrorEntry::new(STAGE, None, msg));
                for seg in &batch {
                    outcome[seg.item] = Some(Scored::Failed(None));
                }
            }
            Err(e) => {
                warn!(error = %e, segments = batch.len(), "toxicity detection failed");
                let msg = format!("toxicity detection failed: {e}");
                for seg in &batch {
                    outcome[seg.item] = Some(Scored::Failed(Some(msg.clone())));
                }
            }
        }
    }
    for (n, first) in copies {
        outcome[n] = outcome[first].clone();
    }

    let mut scored = vec![false; items.len()];
    let mut failed = vec![false; items.len()];
    for (seg, result) in segments.iter().zip(outcome) {
        let i = seg.item;
        match result {
            Some(Scored::Ok(score)) => {
                let item = &mut items[i];
                if !scored[i] || score.toxicity > item.toxicity {
                    item.toxicity = score.toxicity;
                    item.categories = score.categories;
                }
                for hit in score.rule_hits {
                    add_rule_hit(&mut item.rule_hits, hit);
                }
                scored[i] = true;
            }
            Some(Scored::Failed(msg)) => {
                if let Some(msg) = msg.filter(|_| !failed[i]) {
                    errors.push(ErrorEntry::new(STAGE, Some(&items[i].id), msg));
                }
                failed[i] = true;
            }
            // Every segment was cached, sent or copied; an unscored one is still a failure.
            None => failed[i] = true,
        }
    }

    for (i, item) in items.iter_mut().enumerate() {
        if failed[i] {
            // Partial scores would understate the item; a human must look.
            let why = format!("toxicity scores unavailable from {}", deps.detector.name());
            item.review_reason = Some(match item.review_reason.take() {
                Some(r) => format!("{r}; {why}"),
                None => why,
            });
        }
        if !over_threshold(item, threshold) {
            item.verdict = Some(if item.review_reason.is_some() {
                Verdict::NeedsReview
            } else {
                Verdict::BelowThreshold
            });
        }
    }
    usage.comprehend_units = units;
    (items, errors, usage)
}

/// What became of one segment sent to the detector.
#[derive(Debug, Clone)]
enum Scored {
    Ok(ToxicityScore),
    /// With the error to record against the item (none when it was recorded for the batch).
    Failed(Option<String>),
}

/// The whole stage for one uploaded object.
pub async fn screen_text_object(
    obj: &ObjectRef,
    trigger: Trigger,
    deps: &ScreenDeps<'_>,
    cfg: &ScreenConfig,
) -> Result<Outcome> {
    let id = keys::source_id(&obj.bucket, &obj.key);
    screen_text_object_as(obj, &id, trigger, deps, cfg).await
}

/// Like [`screen_text_object`], writing `screened/<id>.json` under a given id (a user report
/// names recordings that get a report of their own, per report).
pub async fn screen_text_object_as(
    obj: &ObjectRef,
    id: &str,
    trigger: Trigger,
    deps: &ScreenDeps<'_>,
    cfg: &ScreenConfig,
) -> Result<Outcome> {
    let ext = keys::extension(&obj.key).unwrap_or_default();
    let Some(format) = TextFormat::from_extension(&ext) else {
        let reason = format!(
            "unsupported text file type {:?}; expected one of .txt, .csv, .jsonl",
            ext
        );
        return dead_letter(deps.store, Stage::ScreenText, obj, id, &reason).await;
    };
    if let Some(size) = obj.size.filter(|s| *s > cfg.max_object_bytes) {
        return write_failed_screening(
            obj,
            id,
            trigger,
            deps,
            cfg,
            format!(
                "{}: the object is {size} bytes, over the {} byte limit (MAX_OBJECT_BYTES)",
                obj.key, cfg.max_object_bytes
            ),
        )
        .await;
    }
    if let Some(why) = superseded(deps.store, &obj.bucket, id, obj.sequencer.as_deref()).await {
        return Ok(Outcome::Ignored(why));
    }
    if deps.time_limit.is_some_and(|t| t.past_new_work()) {
        return Err(Error::OutOfTime(format!(
            "no time left in this invocation to start {}",
            obj.uri()
        )));
    }
    let fresh = deps.time_limit.is_none_or(|t| t.fresh());
    let opened = match deps.store.open(obj).await {
        Ok(o) => o,
        Err(Error::NotFound { uri }) => {
            let reason = format!("object {uri} no longer exists (deleted before it was read)");
            return dead_letter(deps.store, Stage::ScreenText, obj, id, &reason).await;
        }
        Err(e) => return Err(e),
    };
    let version = opened.version.clone().or_else(|| obj.version());
    let doc = screened_doc(obj, id, trigger, cfg, version);
    if let Some(size) = opened.size.filter(|s| *s > cfg.max_object_bytes) {
        // The event may not carry the size (EventBridge replays); the store does.
        let reason = format!(
            "{}: the object is {size} bytes, over the {} byte limit (MAX_OBJECT_BYTES)",
            obj.key, cfg.max_object_bytes
        );
        return write_failed_doc(deps.store, &obj.bucket, doc, reason).await;
    }
    let mut out = ScreenedWriter::new(cfg.max_listed_below)?;
    let state = UploadState::new(cfg.max_translated_chars);
    let clock = CallClock {
        until: deps.time_limit.map(|t| t.calls),
        abandoned: std::sync::atomic::AtomicBool::new(false),
    };
    let limited = Limited::new(deps.detector, cfg.max_concurrency, &clock);
    let languages = TimedLanguages {
        inner: deps.languages,
        clock: &clock,
    };
    let translator = deps.translator.map(|inner| TimedTranslator {
        inner,
        clock: &clock,
    });
    let chunk_deps = ScreenDeps {
        store: deps.store,
        detector: &limited,
        rules: deps.rules,
        languages: &languages,
        translator: translator.as_ref().map(|t| t as &dyn Translator),
        known_language: deps.known_language.clone(),
        progress: None,
        time_limit: None,
    };
    let threshold = cfg.thresholds.for_kind(SourceKind::Text);
    // The parser runs on a blocking thread and hands over chunks of messages; several chunks
    // are scored at once, enough to keep `max_concurrency` calls busy and to hide each chunk's
    // slowest call, while the semaphore holds the calls in flight to `max_concurrency`.
    let in_flight = chunks_in_flight(cfg.max_concurrency);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ParsedMessage>>(in_flight);
    let parse_opts = cfg.parse.clone();
    let parser = tokio::task::spawn_blocking(move || {
        let mut chunk = Chunk::default();
        let mut notes = Vec::new();
        let parsed =
            parse_messages_noting(format, opened.reader, &parse_opts, &mut notes, &mut |m| {
                match chunk.add(m) {
                    Some(full) => tx
                        .blocking_send(full)
                        .map_err(|_| "screening stopped".to_string()),
                    None => Ok(()),
                }
            });
        if !chunk.messages.is_empty() {
            // Messages before a failure part-way through the file are screened too.
            let _ = tx.blocking_send(chunk.messages);
        }
        (notes, parsed)
    });
    // Past the time limit no chunk is taken from the parser: those in flight finish (their
    // service calls end by `calls` at the latest) and the rest of the file is not read. A
    // timer wakes the stream then, even while the parser is stalled on a slow read.
    let cut = std::sync::atomic::AtomicBool::new(false);
    let cut_ref = &cut;
    let mut stop = deps
        .time_limit
        .map(|t| Box::pin(tokio::time::sleep_until(t.new_work.into())));
    let chunks = stream::poll_fn(move |cx| {
        if let Some(stop) = stop.as_mut() {
            if stop.as_mut().poll(cx).is_ready() {
                // A parser that has finished and handed over everything left nothing unread.
                let finished = matches!(
                    rx.try_recv(),
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected)
                );
                cut_ref.store(!finished, Ordering::Relaxed);
                return std::task::Poll::Ready(None);
            }
        }
        rx.poll_recv(cx)
    });
    let mut screened = chunks
        .map(|chunk| screen_chunk(chunk, &chunk_deps, threshold, cfg.max_concurrency, &state))
        .buffered(in_flight);
    let mut done = Screened::default();
    while let Some((items, errors, usage)) = screened.next().await {
        let n = items.len() as u64;
        done.add(&items);
        out.add(items, errors, &usage)?;
        if let Some(p) = deps.progress {
            p.screened(n);
        }
    }
    // Dropping the stream drops the receiver, so a parser waiting to hand over a chunk stops.
    drop(screened);
    let (notes, parsed) = parser
        .await
        .map_err(|e| Error::Input(format!("parser task failed: {e}")))?;
    let cut = cut.load(Ordering::Relaxed);
    if cut && (done.messages == 0 || !fresh) {
        // Nothing to show, or an upload that started late in a delivery of several: a
        // redelivery gives it the whole time.
        return Err(Error::OutOfTime(format!(
            "{} was not screened to its end in this invocation",
            obj.uri()
        )));
    }
    let parsed = if cut {
        crate::chain::telemetry::cut_short(
            &obj.key,
            "the rest of the upload is not screened",
            Some(done.messages),
        );
        Err(done.out_of_time())
    } else {
        if clock.abandoned.load(Ordering::Relaxed) {
            crate::chain::telemetry::cut_short(
                &obj.key,
                "calls still waiting were abandoned; their messages need review",
                None,
            );
        }
        parsed
    };
    let failure = parsed.err().map(|reason| format!("{}: {reason}", obj.key));
    let doc = out.finish(doc, notes, failure)?;
    let key = keys::screened_key(&doc.id);
    info!(
        items = doc.items.len(),
        unlisted = doc.unlisted.as_ref().map_or(0, |u| u.below_threshold),
        errors = doc.errors.len(),
        status = ?doc.status,
        "screened"
    );
    let items = doc.items.clone();
    let head = doc.with_items(ItemsSlot);
    put_spooled(deps.store, &obj.bucket, &key, head, &items, JSON).await?;
    Ok(Outcome::Wrote(vec![key]))
}

/// Messages scored together: at most this many, or this many bytes of text. Small enough that
/// the chunks in flight cost a few MiB, large enough to fill the detector's batches.
const CHUNK_MESSAGES: usize = 500;
const CHUNK_BYTES: usize = 256 * 1024;

/// Chunks scored at once: a chunk of short messages makes about 50 detector calls, and a
/// chunk's last calls leave slots idle, so twice the calls allowed in flight are kept ready
/// (two chunks at least; 128 calls in flight need six).
fn chunks_in_flight(max_concurrency: usize) -> usize {
    (max_concurrency * 2).div_ceil(CHUNK_MESSAGES / 10).max(2)
}

/// What has been screened of an upload, to say where a cut-off one stopped.
#[derive(Default)]
struct Screened {
    messages: u64,
    last: Option<String>,
}

impl Screened {
    fn add(&mut self, chunk: &[Item]) {
        self.messages += chunk.len() as u64;
        if let Some(m) = chunk.last() {
            self.last = Some(m.id.clone());
        }
    }

    /// Why the rest of the file is not screened: the invocation's time is nearly up.
    fn out_of_time(&self) -> String {
        let through = match &self.last {
            Some(id) => format!(", through message {id}"),
            None => String::new(),
        };
        format!(
            "stopped at the function's time limit after screening {} messages{through}; the \
             rest of the file was not screened. Split the upload into smaller files, or raise \
             the Comprehend quota (COMPREHEND_TPS) so that it is screened in time",
            self.messages
        )
    }
}

/// The chunk the parser is filling.
#[derive(Default)]
struct Chunk {
    messages: Vec<ParsedMessage>,
    bytes: usize,
}

impl Chunk {
    /// Add a message; the chunk's messages when it is full.
    fn add(&mut self, m: ParsedMessage) -> Option<Vec<ParsedMessage>> {
        self.bytes += m.text.len();
        self.messages.push(m);
        if self.messages.len() < CHUNK_MESSAGES && self.bytes < CHUNK_BYTES {
            return None;
        }
        self.bytes = 0;
        Some(std::mem::take(&mut self.messages))
    }
}

/// When service calls of one upload must be given up (the invocation's time is then for
/// writing), and whether any was.
struct CallClock {
    until: Option<std::time::Instant>,
    abandoned: std::sync::atomic::AtomicBool,
}

impl CallClock {
    /// `call`, or [`Error::OutOfTime`] if it has not answered by `until`. The items of an
    /// abandoned call are held for a person, as for any failed call.
    async fn run<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(until) = self.until else {
            return call.await;
        };
        match tokio::time::timeout_at(until.into(), call).await {
            Ok(r) => r,
            Err(_) => {
                self.abandoned.store(true, Ordering::Relaxed);
                Err(Error::OutOfTime(format!(
                    "the invocation's time ran out before {what} answered"
                )))
            }
        }
    }
}

/// A detector that lets at most `n` calls be in flight, whatever number of chunks call it,
/// and gives up on calls still waiting when the clock says.
struct Limited<'a> {
    inner: &'a dyn ToxicityDetector,
    permits: tokio::sync::Semaphore,
    clock: &'a CallClock,
}

impl<'a> Limited<'a> {
    fn new(inner: &'a dyn ToxicityDetector, n: usize, clock: &'a CallClock) -> Self {
        Limited {
            inner,
            permits: tokio::sync::Semaphore::new(n.max(1)),
            clock,
        }
    }
}

/// The language identifier, giving up on calls still waiting when the clock says.
struct TimedLanguages<'a> {
    inner: &'a dyn LanguageIdentifier,
    clock: &'a CallClock,
}

#[async_trait::async_trait]
impl LanguageIdentifier for TimedLanguages<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }

    fn billing_units(&self, text: &str) -> u64 {
        self.inner.billing_units(text)
    }

    async fn identify(&self, texts: &[String]) -> Result<Vec<Answer>> {
        self.clock
            .run(self.inner.name(), self.inner.identify(texts))
            .await
    }
}

/// The translator, giving up on calls still waiting when the clock says.
struct TimedTranslator<'a> {
    inner: &'a dyn Translator,
    clock: &'a CallClock,
}

#[async_trait::async_trait]
impl Translator for TimedTranslator<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn max_bytes(&self) -> usize {
        self.inner.max_bytes()
    }

    async fn to_english(&self, text: &str, source: &str) -> Result<String> {
        self.clock
            .run(self.inner.name(), self.inner.to_english(text, source))
            .await
    }
}

#[async_trait::async_trait]
impl ToxicityDetector for Limited<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn limits(&self) -> crate::ports::SegmentLimits {
        self.inner.limits()
    }

    fn billing_units(&self, segments: &[Segment]) -> u64 {
        self.inner.billing_units(segments)
    }

    async fn detect(&self, segments: &[String]) -> Result<Vec<ToxicityScore>> {
        let call = async {
            // The semaphore is never closed, so acquiring cannot fail; if it did, call anyway.
            let _permit = self.permits.acquire().await.ok();
            self.inner.detect(segments).await
        };
        self.clock.run(self.inner.name(), call).await
    }
}

/// The default number of below-threshold items a screened document lists in full
/// (`MAX_LISTED_BELOW_THRESHOLD`); past it they are counted (`unlisted`).
pub const DEFAULT_MAX_LISTED_BELOW: u64 = 100_000;

/// Builds a screened document's items on disk as chunks arrive, in upload order: every item
/// over the threshold or held for a person in full, below-threshold ones in full up to the
/// limit and counted after it.
pub struct ScreenedWriter {
    items: ItemSpool,
    unlisted: Option<crate::model::Unlisted>,
    listed_below: u64,
    max_listed_below: u64,
    errors: ErrorLog,
    usage: Usage,
    over_threshold: u64,
    held: bool,
}

impl ScreenedWriter {
    pub fn new(max_listed_below: u64) -> Result<Self> {
        Ok(ScreenedWriter {
            items: ItemSpool::new()?,
            unlisted: None,
            listed_below: 0,
            max_listed_below,
            errors: ErrorLog::new(STAGE),
            usage: Usage::default(),
            over_threshold: 0,
            held: false,
        })
    }

    pub fn add(&mut self, items: Vec<Item>, errors: Vec<ErrorEntry>, usage: &Usage) -> Result<()> {
        self.errors.extend(errors);
        self.usage.add(usage);
        for item in items {
            self.held |= item.review_reason.is_some();
            match item.verdict {
                None => self.over_threshold += 1,
                Some(Verdict::BelowThreshold) if self.listed_below >= self.max_listed_below => {
                    crate::model::Unlisted::add(&mut self.unlisted, &item);
                    continue;
                }
                Some(Verdict::BelowThreshold) => self.listed_below += 1,
                Some(_) => {}
            }
            self.items.push(&item)?;
        }
        Ok(())
    }

    /// The document: `doc`'s header with the items, file notes first among the errors, and the
    /// status: failed when the file could not be read to its end, partial when a detector
    /// failed or any item waits for a person.
    pub fn finish(
        self,
        doc: StageDocument,
        notes: Vec<String>,
        failure: Option<String>,
    ) -> Result<StageDocument<SpooledItems>> {
        let status = if failure.is_some() {
            Status::Failed
        } else if self.errors.any_from(STAGE) || self.held {
            Status::Partial
        } else {
            Status::Complete
        };
        // Notes about the file and why it failed come first: the cap on the stage's own
        // entries must never hide them.
        let mut errors: Vec<ErrorEntry> = notes
            .into_iter()
            .map(|n| ErrorEntry::new("parse", None, n))
            .collect();
        errors.extend(failure.map(|f| ErrorEntry::new(STAGE, None, f)));
        errors.extend(self.errors.into_entries());
        let mut doc = doc.with_items(self.items.finish()?);
        doc.usage.add(&self.usage);
        doc.status = status;
        doc.unlisted = self.unlisted;
        doc.errors = errors;
        Ok(doc)
    }
}

/// Write `screened/<id>.json` and log what it holds: every screening stage ends here.
pub(crate) async fn write_screened(
    store: &dyn ObjectStore,
    bucket: &str,
    doc: &StageDocument,
) -> Result<Outcome> {
    let key = keys::screened_key(&doc.id);
    info!(
        items = doc.items.len(),
        over_threshold = doc.items.iter().filter(|i| i.verdict.is_none()).count(),
        errors = doc.errors.len(),
        status = ?doc.status,
        "screened"
    );
    put_json(store, bucket, &key, doc).await?;
    Ok(Outcome::Wrote(vec![key]))
}

fn screened_doc(
    obj: &ObjectRef,
    id: &str,
    trigger: Trigger,
    cfg: &ScreenConfig,
    version: Option<String>,
) -> StageDocument {
    StageDocument {
        schema: SCREENED_SCHEMA.into(),
        id: id.to_string(),
        created_at: now_rfc3339(),
        source: crate::model::Source::new(obj.uri(), SourceKind::Text),
        source_version: version,
        source_sequencer: obj.sequencer.clone(),
        trigger,
        status: Status::Complete,
        threshold: cfg.thresholds.for_kind(SourceKind::Text),
        items: Vec::new(),
        unlisted: None,
        errors: Vec::new(),
        usage: Usage::default(),
        image: None,
    }
}

/// A screened document with status `failed` and the reason, so the report says why.
async fn write_failed_screening(
    obj: &ObjectRef,
    id: &str,
    trigger: Trigger,
    deps: &ScreenDeps<'_>,
    cfg: &ScreenConfig,
    reason: String,
) -> Result<Outcome> {
    let doc = screened_doc(obj, id, trigger, cfg, obj.version());
    write_failed_doc(deps.store, &obj.bucket, doc, reason).await
}

/// `doc` with status `failed` and the reason, so the report says why nothing was screened.
async fn write_failed_doc(
    store: &dyn ObjectStore,
    bucket: &str,
    mut doc: StageDocument,
    reason: String,
) -> Result<Outcome> {
    doc.status = Status::Failed;
    doc.errors.push(ErrorEntry::new(STAGE, None, reason));
    let key = keys::screened_key(&doc.id);
    put_json(store, bucket, &key, &doc).await?;
    Ok(Outcome::Wrote(vec![key]))
}

/// Why an event for `sequencer` must not overwrite `screened/<id>.json`: a newer write of the
/// same source was already screened (an older event arriving late). `None` to go ahead.
pub async fn superseded(
    store: &dyn ObjectStore,
    bucket: &str,
    id: &str,
    sequencer: Option<&str>,
) -> Option<String> {
    let seq = sequencer?;
    // Only the header is wanted: the items of a huge document are counted, never held.
    let existing: Option<StageDocument<SkippedItems>> =
        read_document(store, bucket, &keys::screened_key(id))
            .await
            .unwrap_or(None);
    let newer = existing
        .and_then(|d| d.source_sequencer)
        .filter(|s| sequencer_is_newer(s, seq))?;
    Some(format!(
        "a newer write (sequencer {newer}) was already screened; this event is {seq}"
    ))
}
