//! The document: both walks over a screened document's items, the judge calls between them,
//! and the evaluated document they make.

use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::apply::{apply_verdicts, Applied, Decisions};
use super::config::{EvaluateConfig, EvaluateDeps, STAGE};
use super::conversation::judge_conversations;
use super::decided::{Decided, DecidedSpool};
use super::judging::{judge_item, judge_picture};
use super::plan::{plan_calls, JudgeTask, Plan, WalkSettings};
use crate::chain::delivery::now_rfc3339;
use crate::chain::spool::SpooledItems;
use crate::error::{Error, Result};
use crate::model::{
    Conversation, ErrorEntry, Item, SourceKind, StageDocument, Status, Usage, EVALUATED_SCHEMA,
};
use crate::ports::Judgement;

/// Judge the over-threshold items of a screened document held in memory; see
/// [`evaluate_document`], which this runs over a spooled copy.
pub async fn evaluate_items(
    doc: StageDocument,
    previous: Option<&StageDocument>,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
) -> Result<(StageDocument, Option<Error>)> {
    let previous = match previous {
        Some(p) => Some(spooled(p.clone())?),
        None => None,
    };
    let (out, retry) = evaluate_document(spooled(doc)?, previous.as_ref(), deps, cfg).await?;
    let items = out.items.to_vec()?;
    Ok((out.with_items(items), retry))
}

/// `doc` with its items spooled to disk.
fn spooled(doc: StageDocument) -> Result<StageDocument<SpooledItems>> {
    let items = SpooledItems::from_items(&doc.items)?;
    Ok(doc.with_items(items))
}

/// Judge the over-threshold items of a screened document whose items are on disk, in two
/// walks over them: the first finds the judge calls (sent on as they are found, at most
/// `max_concurrency` in flight), the second writes every item with its verdict. Memory holds
/// the calls in flight and one group key per call, whatever the size of the upload.
///
/// Returns the evaluated document and, when a judge call failed in a way a retry can fix
/// (throttling, timeout), that error: the document still records those items as
/// `needs_review`, and the caller asks for redelivery so they are judged again.
pub async fn evaluate_document(
    doc: StageDocument<SpooledItems>,
    previous: Option<&StageDocument<SpooledItems>>,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
) -> Result<(StageDocument<SpooledItems>, Option<Error>)> {
    let settings = walk_settings(&doc, deps, cfg);
    // A redelivery re-judges only the conversations whose evidence changed.
    let earlier: Vec<Conversation> = previous.map_or_else(Vec::new, |p| p.conversations.clone());
    let previous = previous.map(|p| &p.items);
    let (tx, rx) = mpsc::channel::<JudgeTask>(cfg.max_concurrency.max(1));
    let planner = {
        let (items, previous, settings) = (doc.items.clone(), previous.cloned(), settings.clone());
        tokio::task::spawn_blocking(move || plan_calls(&items, previous.as_ref(), &settings, &tx))
    };
    let mut tally = Tally::default();
    let mut decided = DecidedSpool::new()?;
    judge_planned_calls(rx, doc.threshold, deps, cfg, &mut decided, &mut tally).await?;
    let plan = planner
        .await
        .map_err(|e| Error::Input(format!("evaluation planner failed: {e}")))??;
    let picture = check_picture(&doc, &plan, deps, cfg, &mut tally).await;
    let reused = plan.reused;
    let decisions = Decisions {
        plan,
        decided,
        picture,
    };
    let applied = write_verdicts(&doc.items, previous, settings, decisions, deps).await?;
    let mine = applied.errors.any_from(STAGE);
    let errors = applied.errors.into_entries();
    info!(
        judged = tally.judged,
        reused,
        errors = errors.len(),
        "evaluated"
    );
    let held = applied.held;
    let mut doc = doc;
    let (usage, retry) =
        judge_conversations(&mut doc.conversations, &earlier, doc.threshold, deps, cfg).await;
    tally.usage.add(&usage);
    tally.retry = tally.retry.or(retry);
    let doc = assemble(doc, applied.items, errors, &tally.usage, held, mine);
    Ok((doc, tally.retry))
}

/// What the walks need to know of the document and the judges.
fn walk_settings<I>(
    doc: &StageDocument<I>,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
) -> WalkSettings {
    WalkSettings {
        kind: doc.source.kind,
        unchecked: doc
            .image
            .as_ref()
            .is_some_and(|f| !f.not_checked.is_empty()),
        wants_picture: deps.images.is_some(),
        model: deps.judge.model().to_string(),
        max_calls: cfg.max_calls,
        context_messages: cfg.context_messages,
        hasher: std::collections::hash_map::RandomState::new(),
    }
}

/// What the judge calls cost and the first failure a retry can fix.
#[derive(Default)]
struct Tally {
    judged: usize,
    usage: Usage,
    retry: Option<Error>,
}

/// Which kind of call a result came from, for the log.
#[derive(Clone, Copy)]
enum Call {
    Item,
    Picture,
}

impl Tally {
    fn record(&mut self, result: Result<Judgement>, call: Call) {
        self.judged += 1;
        match result {
            Ok(j) => self.usage.add(&j.usage),
            Err(e) => {
                match call {
                    Call::Item => warn!(error = %e, "policy evaluation failed"),
                    Call::Picture => warn!(error = %e, "picture check failed"),
                }
                if e.is_retryable() && self.retry.is_none() {
                    self.retry = Some(e);
                }
            }
        }
    }
}

/// Judge the calls the planner sends, at most `max_concurrency` at once, each answer spooled
/// by group as it arrives. Ends when the planner has sent its last call.
async fn judge_planned_calls(
    mut tasks: mpsc::Receiver<JudgeTask>,
    threshold: f64,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
    decided: &mut DecidedSpool,
    tally: &mut Tally,
) -> Result<()> {
    let mut results = stream::poll_fn(|cx| tasks.poll_recv(cx))
        .map(|task: JudgeTask| async move {
            let context: Vec<&Item> = task.context.iter().collect();
            let r = judge_item(&task.item, &context, threshold, deps, cfg).await;
            (task.group, r)
        })
        .buffer_unordered(cfg.max_concurrency.max(1));
    while let Some((group, result)) = results.next().await {
        decided.put(group, &Decided::of(&result))?;
        tally.record(result, Call::Item);
    }
    Ok(())
}

/// The multimodal check of the picture the planner found, when there is a model to ask.
async fn check_picture(
    doc: &StageDocument<SpooledItems>,
    plan: &Plan,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
    tally: &mut Tally,
) -> Option<Decided> {
    let (Some(item), Some(judge)) = (&plan.picture, deps.images) else {
        return None;
    };
    let result = judge_picture(doc, item, &plan.image_text, judge, deps, cfg).await;
    let d = Decided::of(&result);
    tally.record(result, Call::Picture);
    Some(d)
}

/// The second walk, on a blocking thread: it reads and writes spool files.
async fn write_verdicts(
    items: &SpooledItems,
    previous: Option<&SpooledItems>,
    settings: WalkSettings,
    mut decisions: Decisions,
    deps: &EvaluateDeps<'_>,
) -> Result<Applied> {
    // The multimodal model reads the picture's text, and a language model a message's words:
    // either may be told how to answer.
    let image_model = deps.images.map(|j| j.model().to_string());
    let judge_reads = deps.judge.reads_instructions();
    let (items, previous) = (items.clone(), previous.cloned());
    tokio::task::spawn_blocking(move || {
        let reads = |model: &str| image_model.as_deref() == Some(model) || judge_reads;
        apply_verdicts(&items, previous.as_ref(), &settings, &mut decisions, &reads)
    })
    .await
    .map_err(|e| Error::Input(format!("evaluation writer failed: {e}")))?
}

/// The evaluated document: the items with their verdicts, this stage's errors and usage added.
fn assemble(
    mut doc: StageDocument<SpooledItems>,
    items: SpooledItems,
    errors: Vec<ErrorEntry>,
    usage: &Usage,
    held: bool,
    mine: bool,
) -> StageDocument<SpooledItems> {
    doc.usage.add(usage);
    doc.errors.extend(errors);
    doc.items = items;
    doc.status = settled_status(
        doc.source.kind,
        doc.status,
        doc.errors.is_empty(),
        held,
        mine,
    );
    doc.schema = EVALUATED_SCHEMA.into();
    doc.created_at = now_rfc3339();
    doc
}

/// The document's status once judged: a picture held only because no classifier saw it is
/// complete once a model has (no error, nothing held); an error of this stage makes a
/// complete document partial.
fn settled_status(
    kind: SourceKind,
    status: Status,
    no_errors: bool,
    held: bool,
    mine: bool,
) -> Status {
    let mut status = status;
    if kind == SourceKind::Image && status == Status::Partial && no_errors && !held {
        status = Status::Complete;
    }
    if mine && status == Status::Complete {
        status = Status::Partial;
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_answered_cleanly_completes_a_partial_image_document() {
        let s = settled_status(SourceKind::Image, Status::Partial, true, false, false);
        assert_eq!(s, Status::Complete);
        // Still held, or with errors, it stays partial; a text document is never promoted.
        let held = settled_status(SourceKind::Image, Status::Partial, true, true, false);
        assert_eq!(held, Status::Partial);
        let errs = settled_status(SourceKind::Image, Status::Partial, false, false, false);
        assert_eq!(errs, Status::Partial);
        let text = settled_status(SourceKind::Text, Status::Partial, true, false, false);
        assert_eq!(text, Status::Partial);
    }

    #[test]
    fn an_error_of_this_stage_makes_a_complete_document_partial_never_a_failed_one_better() {
        let s = settled_status(SourceKind::Text, Status::Complete, false, false, true);
        assert_eq!(s, Status::Partial);
        let failed = settled_status(SourceKind::Text, Status::Failed, false, false, true);
        assert_eq!(failed, Status::Failed);
    }

    #[test]
    fn a_tally_keeps_the_first_retryable_failure_and_adds_usage() {
        let mut tally = Tally::default();
        let ok = Judgement {
            verdict: crate::model::Verdict::NoViolation,
            evaluation: Default::default(),
            usage: Usage {
                llm_calls: 1,
                ..Default::default()
            },
            problem: None,
        };
        tally.record(Ok(ok), Call::Item);
        tally.record(Err(Error::Input("not retryable".into())), Call::Picture);
        assert_eq!((tally.judged, tally.usage.llm_calls), (2, 1));
        assert!(tally.retry.is_none(), "an input error is not retried");
        let throttled = |m: &str| {
            Error::service(
                "bedrock",
                crate::error::ServiceErrorKind::Throttled,
                m.to_string(),
            )
        };
        tally.record(Err(throttled("first")), Call::Item);
        tally.record(Err(throttled("second")), Call::Item);
        let kept = tally.retry.map(|e| e.to_string()).unwrap_or_default();
        assert!(kept.contains("first") && !kept.contains("second"), "{kept}");
    }
}
