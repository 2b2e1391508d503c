//! screen-text: parse a chat log, identify each message's language (translating what is not
//! English), run the rule filter and the toxicity detector, apply the threshold gate, and write
//! `screened/<id>.json`.
//!
//! The steps live beside this file: `preflight` (what the event and the store settle before
//! the log is read, shared with screen-image), `upload` (the parser's chunks under the time
//! limit), `chunk` (one chunk: `language`, `items`, `scoring`), `timed` (the services as the
//! chunks call them) and `document` (the screened document and writing it).

use std::ops::ControlFlow;

use crate::chain::config::Thresholds;
use crate::chain::delivery::Outcome;
use crate::chain::keys;
use crate::error::Result;
use crate::model::{Item, ObjectRef, Trigger};
use crate::ports::{Identified, LanguageIdentifier, ObjectStore, ToxicityDetector, Translator};
use crate::text::parse::ParseOptions;
use crate::text::rules::RuleFilter;

mod chunk;
mod document;
mod items;
mod language;
pub(crate) mod preflight;
mod scoring;
mod state;
mod timed;
mod upload;

pub use chunk::{screen_chunk, screen_messages, screen_messages_within};
pub(crate) use document::write_screened;
pub use document::ScreenedWriter;
pub use preflight::superseded;
pub use state::UploadState;

use document::write_spooled_screened;
use preflight::{check_text_event, object_limit, open_or_dead_letter};
use preflight::{screened_doc, write_failed_doc};

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
    /// The conversation gate, window and user context.
    pub conversation: crate::stages::conversation::ConversationConfig,
}

/// The default translation budget per upload: a million characters (about 15 USD).
pub const DEFAULT_MAX_TRANSLATED_CHARS: u64 = 1_000_000;

/// The default number of below-threshold items a screened document lists in full
/// (`MAX_LISTED_BELOW_THRESHOLD`); past it they are counted (`unlisted`).
pub const DEFAULT_MAX_LISTED_BELOW: u64 = 100_000;

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
    let format = match check_text_event(obj, id, &trigger, deps, cfg).await? {
        ControlFlow::Continue(format) => format,
        ControlFlow::Break(outcome) => return Ok(outcome),
    };
    let fresh = deps.time_limit.is_none_or(|t| t.fresh());
    let opened = match open_or_dead_letter(deps.store, obj, id).await? {
        ControlFlow::Continue(opened) => opened,
        ControlFlow::Break(outcome) => return Ok(outcome),
    };
    let version = opened.version.clone().or_else(|| obj.version());
    let doc = screened_doc(obj, id, trigger, cfg, version);
    // The event may not carry the size (EventBridge replays); the store does.
    if let Some(reason) = object_limit(cfg).refusal(&obj.key, opened.size) {
        return write_failed_doc(deps.store, &obj.bucket, doc, reason).await;
    }
    let mut run = upload::screen_upload(format, opened.reader, deps, cfg).await?;
    let failure = run.failure(obj, fresh)?;
    let doc = run.out.finish(doc, run.notes, failure)?;
    write_spooled_screened(deps.store, &obj.bucket, doc).await
}
