//! The screened document: its header, the items gathered as chunks arrive, and writing it.

use tracing::info;

use crate::chain::delivery::{put_json, put_spooled, Outcome};
use crate::chain::keys;
use crate::chain::spool::{ErrorLog, ItemSpool, ItemsSlot, SpooledItems};
use crate::error::Result;
use crate::model::{ErrorEntry, Item, StageDocument, Status, Usage, Verdict};
use crate::ports::ObjectStore;
use crate::stages::conversation::Tracker;

use super::{JSON, STAGE};

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
    /// Every item passes through it, listed or not: a grooming arc is mostly clean lines.
    conversations: Tracker,
}

impl ScreenedWriter {
    pub fn new(max_listed_below: u64, conversations: Tracker) -> Result<Self> {
        Ok(ScreenedWriter {
            items: ItemSpool::new()?,
            unlisted: None,
            listed_below: 0,
            max_listed_below,
            errors: ErrorLog::new(STAGE),
            usage: Usage::default(),
            over_threshold: 0,
            held: false,
            conversations,
        })
    }

    pub fn add(&mut self, items: Vec<Item>, errors: Vec<ErrorEntry>, usage: &Usage) -> Result<()> {
        self.errors.extend(errors);
        self.usage.add(usage);
        for item in items {
            self.conversations.observe(&item);
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
        let errors = notes_first(notes, failure, self.errors.into_entries());
        let default_id = doc
            .trigger
            .user_report
            .as_ref()
            .map_or(doc.id.as_str(), |r| r.conversation_id.as_str())
            .to_string();
        let (conversations, count) = self.conversations.finish(&default_id);
        let mut doc = doc.with_items(self.items.finish()?);
        doc.conversations = conversations;
        doc.conversation_count = Some(count);
        doc.usage.add(&self.usage);
        doc.status = status;
        doc.unlisted = self.unlisted;
        doc.errors = errors;
        Ok(doc)
    }
}

/// Notes about the file and why it failed come first: the cap on the stage's own entries must
/// never hide them.
fn notes_first(
    notes: Vec<String>,
    failure: Option<String>,
    stage_errors: Vec<ErrorEntry>,
) -> Vec<ErrorEntry> {
    let mut errors: Vec<ErrorEntry> = notes
        .into_iter()
        .map(|n| ErrorEntry::new("parse", None, n))
        .collect();
    errors.extend(failure.map(|f| ErrorEntry::new(STAGE, None, f)));
    errors.extend(stage_errors);
    errors
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

/// Write a chat log's screened document, its items streamed from the spool.
pub(super) async fn write_spooled_screened(
    store: &dyn ObjectStore,
    bucket: &str,
    doc: StageDocument<SpooledItems>,
) -> Result<Outcome> {
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
    put_spooled(store, bucket, &key, head, &items, JSON).await?;
    Ok(Outcome::Wrote(vec![key]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_notes_and_the_failure_come_before_the_stage_errors() {
        let stage = vec![ErrorEntry::new(STAGE, Some("m1"), "scores unavailable")];
        let errors = notes_first(
            vec!["line 3: no text".into()],
            Some("a.txt: truncated".into()),
            stage,
        );
        let said: Vec<(&str, Option<&str>, &str)> = errors
            .iter()
            .map(|e| (e.stage.as_str(), e.item.as_deref(), e.message.as_str()))
            .collect();
        assert_eq!(
            said,
            vec![
                ("parse", None, "line 3: no text"),
                (STAGE, None, "a.txt: truncated"),
                (STAGE, Some("m1"), "scores unavailable"),
            ]
        );
    }
}
