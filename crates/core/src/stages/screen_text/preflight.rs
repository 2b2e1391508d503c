//! The checks a screening stage makes before it reads an upload, and the failed document it
//! writes when one refuses. screen-text and screen-image share them (transcribe-audio makes the
//! same checks), so an upload refused for its size reads the same whichever stage refused it.

use std::ops::ControlFlow;

use crate::chain::delivery::{dead_letter, now_rfc3339, put_json, read_document, Outcome};
use crate::chain::event::sequencer_is_newer;
use crate::chain::keys::{self, Stage};
use crate::chain::spool::SkippedItems;
use crate::error::{Error, Result};
use crate::model::{
    ErrorEntry, ObjectRef, Source, SourceKind, StageDocument, Status, Trigger, Usage,
    SCREENED_SCHEMA,
};
use crate::ports::{ObjectStore, OpenedObject};
use crate::text::parse::TextFormat;

use super::{ScreenConfig, ScreenDeps, STAGE};

/// An upload's size limit, and how a refusal names the upload and the setting.
pub(crate) struct SizeLimit<'a> {
    /// What the upload is called: "object", "image", "recording".
    pub what: &'a str,
    pub max_bytes: u64,
    /// Said in parentheses after the limit: the variable that sets it, and any note.
    pub setting: &'a str,
}

impl SizeLimit<'_> {
    /// Why an upload of `size` bytes is refused; `None` within the limit, or when the size is
    /// not known (an event may not carry it).
    pub(crate) fn refusal(&self, key: &str, size: Option<u64>) -> Option<String> {
        let size = size.filter(|s| *s > self.max_bytes)?;
        Some(format!(
            "{key}: the {} is {size} bytes, over the {} byte limit ({})",
            self.what, self.max_bytes, self.setting
        ))
    }
}

/// The text stage's limit (`MAX_OBJECT_BYTES`).
pub(super) fn object_limit(cfg: &ScreenConfig) -> SizeLimit<'static> {
    SizeLimit {
        what: "object",
        max_bytes: cfg.max_object_bytes,
        setting: "MAX_OBJECT_BYTES",
    }
}

/// A screened document's header with no items yet: status complete until a step says
/// otherwise.
pub(crate) fn screened_header(
    obj: &ObjectRef,
    id: &str,
    trigger: Trigger,
    kind: SourceKind,
    threshold: f64,
    version: Option<String>,
) -> StageDocument {
    StageDocument {
        schema: SCREENED_SCHEMA.into(),
        id: id.to_string(),
        created_at: now_rfc3339(),
        source: Source::new(obj.uri(), kind),
        source_version: version,
        source_sequencer: obj.sequencer.clone(),
        trigger,
        status: Status::Complete,
        threshold,
        items: Vec::new(),
        unlisted: None,
        errors: Vec::new(),
        usage: Usage::default(),
        image: None,
        conversations: Vec::new(),
        conversation_count: None,
    }
}

/// `doc` with status `failed` and the reason, so the report says why nothing was screened.
pub(crate) fn failed(mut doc: StageDocument, stage: &str, reason: String) -> StageDocument {
    doc.status = Status::Failed;
    doc.errors.push(ErrorEntry::new(stage, None, reason));
    doc
}

/// A key ending in `/` is the console's folder marker, not an upload: ignored.
pub(crate) fn folder_marker(obj: &ObjectRef) -> Option<Outcome> {
    obj.key
        .ends_with('/')
        .then(|| Outcome::Ignored(format!("{} is a folder marker", obj.key)))
}

/// The upload's bytes, or (when it was deleted before it was read) the dead letter written
/// instead: a retry cannot bring it back.
pub(crate) async fn read_or_dead_letter(
    store: &dyn ObjectStore,
    stage: Stage,
    obj: &ObjectRef,
    id: &str,
) -> Result<ControlFlow<Outcome, Vec<u8>>> {
    match store.get_bytes(&obj.bucket, &obj.key).await? {
        Some(bytes) => Ok(ControlFlow::Continue(bytes)),
        None => {
            let reason = format!("{} no longer exists", obj.uri());
            let outcome = dead_letter(store, stage, obj, id, &reason).await?;
            Ok(ControlFlow::Break(outcome))
        }
    }
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

/// The chat log's format by the key's extension; the reason for the dead letter otherwise.
pub(super) fn text_format(key: &str) -> std::result::Result<TextFormat, String> {
    let ext = keys::extension(key).unwrap_or_default();
    TextFormat::from_extension(&ext).ok_or_else(|| {
        format!(
            "unsupported text file type {:?}; expected one of .txt, .csv, .jsonl",
            ext
        )
    })
}

/// What the event alone settles for a chat log, before it is opened: an unsupported type
/// (dead letter), a size over the limit (failed document), a late event (ignored), or no time
/// left (an error, so the delivery is retried). The log's format when it is to be read.
pub(super) async fn check_text_event(
    obj: &ObjectRef,
    id: &str,
    trigger: &Trigger,
    deps: &ScreenDeps<'_>,
    cfg: &ScreenConfig,
) -> Result<ControlFlow<Outcome, TextFormat>> {
    let format = match text_format(&obj.key) {
        Ok(format) => format,
        Err(reason) => {
            let outcome = dead_letter(deps.store, Stage::ScreenText, obj, id, &reason).await?;
            return Ok(ControlFlow::Break(outcome));
        }
    };
    if let Some(reason) = object_limit(cfg).refusal(&obj.key, obj.size) {
        let outcome =
            write_failed_screening(obj, id, trigger.clone(), deps.store, cfg, reason).await?;
        return Ok(ControlFlow::Break(outcome));
    }
    if let Some(why) = superseded(deps.store, &obj.bucket, id, obj.sequencer.as_deref()).await {
        return Ok(ControlFlow::Break(Outcome::Ignored(why)));
    }
    if deps.time_limit.is_some_and(|t| t.past_new_work()) {
        return Err(Error::OutOfTime(format!(
            "no time left in this invocation to start {}",
            obj.uri()
        )));
    }
    Ok(ControlFlow::Continue(format))
}

/// The opened chat log, or the dead letter written when it was deleted before it was read.
pub(super) async fn open_or_dead_letter(
    store: &dyn ObjectStore,
    obj: &ObjectRef,
    id: &str,
) -> Result<ControlFlow<Outcome, OpenedObject>> {
    match store.open(obj).await {
        Ok(opened) => Ok(ControlFlow::Continue(opened)),
        Err(Error::NotFound { uri }) => {
            let reason = format!("object {uri} no longer exists (deleted before it was read)");
            let outcome = dead_letter(store, Stage::ScreenText, obj, id, &reason).await?;
            Ok(ControlFlow::Break(outcome))
        }
        Err(e) => Err(e),
    }
}

/// A chat log's screened document before any item.
pub(super) fn screened_doc(
    obj: &ObjectRef,
    id: &str,
    trigger: Trigger,
    cfg: &ScreenConfig,
    version: Option<String>,
) -> StageDocument {
    let threshold = cfg.thresholds.for_kind(SourceKind::Text);
    screened_header(obj, id, trigger, SourceKind::Text, threshold, version)
}

/// A screened document with status `failed` and the reason, so the report says why.
pub(super) async fn write_failed_screening(
    obj: &ObjectRef,
    id: &str,
    trigger: Trigger,
    store: &dyn ObjectStore,
    cfg: &ScreenConfig,
    reason: String,
) -> Result<Outcome> {
    let doc = screened_doc(obj, id, trigger, cfg, obj.version());
    write_failed_doc(store, &obj.bucket, doc, reason).await
}

/// `doc` with status `failed` and the reason, so the report says why nothing was screened.
pub(super) async fn write_failed_doc(
    store: &dyn ObjectStore,
    bucket: &str,
    doc: StageDocument,
    reason: String,
) -> Result<Outcome> {
    let doc = failed(doc, STAGE, reason);
    let key = keys::screened_key(&doc.id);
    put_json(store, bucket, &key, &doc).await?;
    Ok(Outcome::Wrote(vec![key]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str) -> ObjectRef {
        ObjectRef::new("b", key)
    }

    #[test]
    fn a_size_is_refused_only_past_the_limit_and_only_when_known() {
        let limit = SizeLimit {
            what: "image",
            max_bytes: 10,
            setting: "MAX_IMAGE_BYTES",
        };
        assert_eq!(limit.refusal("k.png", None), None);
        assert_eq!(
            limit.refusal("k.png", Some(10)),
            None,
            "at the limit passes"
        );
        assert_eq!(
            limit.refusal("k.png", Some(11)).as_deref(),
            Some("k.png: the image is 11 bytes, over the 10 byte limit (MAX_IMAGE_BYTES)")
        );
    }

    #[test]
    fn a_failed_document_says_why_under_the_stage() {
        let header = screened_header(
            &object("incoming/text/a.txt"),
            "a",
            Trigger::upload(),
            SourceKind::Text,
            0.5,
            None,
        );
        assert_eq!(header.status, Status::Complete);
        let doc = failed(header, "screen-text", "too big".into());
        assert_eq!(doc.status, Status::Failed);
        assert_eq!(doc.errors.len(), 1);
        assert_eq!(doc.errors[0].stage, "screen-text");
        assert_eq!(doc.errors[0].message, "too big");
    }

    #[test]
    fn folder_markers_are_ignored_and_text_types_are_named() {
        assert!(matches!(
            folder_marker(&object("incoming/image/c/")),
            Some(Outcome::Ignored(_))
        ));
        assert!(folder_marker(&object("incoming/image/c/a.png")).is_none());
        assert!(text_format("incoming/text/a.jsonl").is_ok());
        let why = text_format("incoming/text/a.docx").expect_err("unsupported");
        assert!(why.contains("\"docx\"") && why.contains(".jsonl"), "{why}");
    }
}
