//! The gate, and the first walk over the items: which items need a judge call (one per group
//! of equal texts, within the budget), which keep a verdict from the previous evaluation, and
//! whether the picture of an image upload goes to the multimodal check.

use std::collections::HashMap;

use tracing::warn;

use super::context::ContextWindow;
use crate::chain::spool::SpooledItems;
use crate::error::{Error, Result};
use crate::model::{Evaluation, Item, SourceKind, Verdict};

/// Whether the multimodal check looks at this item: the picture of an image upload, when its
/// labels crossed the gate, when no classifier could see it, or when the classifier that did
/// left categories unchecked (offline: everything but nudity). Pictures already held for other
/// reasons (animated, labels failed) stay held.
fn picture_to_check(kind: SourceKind, unchecked: bool, item: &Item) -> bool {
    if kind != SourceKind::Image || item.id != crate::stages::screen_image::PICTURE_ITEM {
        return false;
    }
    match item.verdict {
        None => true,
        Some(Verdict::BelowThreshold) => unchecked && item.review_reason.is_none(),
        Some(Verdict::NeedsReview) => item
            .review_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(crate::stages::screen_image::NO_CLASSIFIER)),
        _ => false,
    }
}

/// Messages that differ only in case and spacing are judged once per upload.
pub fn dedupe_key(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A previous verdict worth keeping: a trusted Y/N from the same judge on the same text.
pub(super) fn reusable(prev: &Item, item: &Item, model: &str) -> bool {
    prev.id == item.id
        && prev.text == item.text
        && prev.verdict.is_some()
        && prev
            .evaluation
            .as_ref()
            .is_some_and(|e| e.answer.is_some() && e.model == model)
}

/// One judge call to make: the first item of a group of messages with the same text.
pub(super) struct JudgeTask {
    pub(super) group: u32,
    pub(super) item: Item,
    pub(super) context: Vec<Item>,
}

/// What the first walk over the items found, besides the judge calls it asked for.
#[derive(Default)]
pub(super) struct Plan {
    /// Groups by the hash of their dedupe key, in order of first appearance; only the first
    /// `max_calls` groups are here, later ones are over budget.
    pub(super) groups: HashMap<u64, u32>,
    /// The picture of an image upload, when the multimodal check looks at it.
    pub(super) picture: Option<Item>,
    /// The lines read in a picture, in reading order.
    pub(super) image_text: Vec<String>,
    pub(super) reused: usize,
}

/// What the walks need to know of the document and the judges, owned so they can run on a
/// blocking thread.
#[derive(Clone)]
pub(super) struct WalkSettings {
    pub(super) kind: SourceKind,
    /// Some image categories no classifier checked.
    pub(super) unchecked: bool,
    pub(super) wants_picture: bool,
    pub(super) model: String,
    pub(super) max_calls: usize,
    pub(super) context_messages: usize,
    pub(super) hasher: std::collections::hash_map::RandomState,
}

impl WalkSettings {
    pub(super) fn key_hash(&self, item: &Item) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(dedupe_key(&item.text))
    }

    pub(super) fn is_picture(&self, item: &Item) -> bool {
        self.wants_picture && picture_to_check(self.kind, self.unchecked, item)
    }
}

/// The items of the previous evaluation beside the new ones, position by position: a
/// redelivered document lines up exactly, and anything else simply reuses nothing.
pub(super) struct Previous {
    items: Option<crate::chain::spool::SpoolIter>,
}

impl Previous {
    pub(super) fn open(previous: Option<&SpooledItems>) -> Result<Self> {
        Ok(Previous {
            items: previous.map(SpooledItems::iter).transpose()?,
        })
    }

    /// The previous item at the next position; a broken previous document reuses nothing.
    pub(super) fn next(&mut self) -> Option<Item> {
        match self.items.as_mut()?.next()? {
            Ok(item) => Some(item),
            Err(e) => {
                warn!(error = %e, "ignoring the rest of an unreadable previous evaluation");
                self.items = None;
                None
            }
        }
    }
}

/// A trusted answer kept from the previous evaluation, rebuilt from the answer rather than
/// the stored verdict so the holds are applied again, each with its reason.
pub(super) fn reuse_from(prev: &Item) -> (Option<Verdict>, Option<Evaluation>) {
    let verdict = prev
        .evaluation
        .as_ref()
        .and_then(|e| match e.answer.as_deref() {
            Some(a @ ("Y" | "N")) => Some(Verdict::of_answer(a == "Y")),
            _ => prev.verdict,
        });
    (verdict, prev.evaluation.clone())
}

/// The first walk: which items need a judge call (one per group of equal texts, the first
/// `max_calls` groups), sent to `tasks` with their conversation context as they are found.
pub(super) fn plan_calls(
    items: &SpooledItems,
    previous: Option<&SpooledItems>,
    settings: &WalkSettings,
    tasks: &tokio::sync::mpsc::Sender<JudgeTask>,
) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut prev = Previous::open(previous)?;
    let mut context = ContextWindow::new(settings.context_messages);
    for item in items.iter()? {
        let item = item?;
        let before = prev.next();
        if settings.kind == SourceKind::Image && item.id.starts_with("text-") {
            plan.image_text.push(item.text.clone());
        }
        if settings.is_picture(&item) {
            plan.picture = Some(item.clone());
        } else if item.verdict.is_none() {
            if before
                .as_ref()
                .is_some_and(|p| reusable(p, &item, &settings.model))
            {
                plan.reused += 1;
            } else {
                let key = settings.key_hash(&item);
                let groups = plan.groups.len();
                if !plan.groups.contains_key(&key) && groups < settings.max_calls {
                    let group = groups as u32;
                    plan.groups.insert(key, group);
                    let task = JudgeTask {
                        group,
                        context: context.before(&item),
                        item: item.clone(),
                    };
                    if tasks.blocking_send(task).is_err() {
                        return Err(Error::Input("policy evaluation stopped".into()));
                    }
                }
            }
        }
        context.push(&item);
    }
    Ok(plan)
}
