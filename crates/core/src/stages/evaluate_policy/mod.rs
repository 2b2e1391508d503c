//! evaluate-policy: for items over the threshold, retrieve the relevant passages of the
//! customer's written policy and ask a judge (an LLM behind the seed's prompt, or the offline
//! rules evaluator) for a verdict. Items below the threshold never reach the judge.
//!
//! By concern: `plan` gates the items and plans the judge calls (first walk), `judging` asks
//! the judges with the passages retrieval finds, `decided` keeps their answers, `apply` gives
//! every item its verdict (second walk), `document` runs the walks and assembles the evaluated
//! document. `verdict` (what a reply is worth) and `config` are leaves the others share.

mod apply;
mod config;
mod context;
mod conversation;
mod decided;
mod document;
pub mod image_check;
mod judging;
mod llm_judge;
mod plan;
pub mod prompt;
mod verdict;

use tracing::warn;

use crate::chain::delivery::{put_spooled, read_document, read_stage_document, Outcome};
use crate::chain::keys::{self, Stage};
use crate::chain::spool::{ItemsSlot, SpooledItems};
use crate::error::Result;
use crate::model::{ObjectRef, StageDocument};

pub use config::{EvaluateConfig, EvaluateDeps};
pub use conversation::{conversation_signals, evidence_item};
pub use document::{evaluate_document, evaluate_items};
pub use judging::{retrieval_query, signals_for, swears};
pub use llm_judge::LlmJudge;
pub use plan::dedupe_key;
pub use verdict::{judgement_from_reply, parse_answer, references, ParsedAnswer, MAX_REPLY_BYTES};

/// The whole stage for one `screened/<id>.json`.
pub async fn evaluate_object(
    obj: &ObjectRef,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
) -> Result<Outcome> {
    let (id, screened) = match read_stage_document::<SpooledItems>(
        deps.store,
        Stage::EvaluatePolicy,
        obj,
        keys::SCREENED,
    )
    .await?
    {
        Ok(found) => found,
        Err(outcome) => return Ok(outcome),
    };
    let out_key = keys::evaluated_key(&id);
    // A broken previous document only costs a re-evaluation, never the stage.
    let previous: Option<StageDocument<SpooledItems>> =
        read_document(deps.store, &obj.bucket, &out_key)
            .await
            .unwrap_or_else(|e| {
                warn!(error = %e, "ignoring unreadable previous evaluation");
                None
            });
    let (evaluated, retry) = evaluate_document(screened, previous.as_ref(), deps, cfg).await?;
    // Written either way, so the report shows every item now, failures included; a retryable
    // failure then asks for redelivery, which judges only the items that failed.
    let items = evaluated.items.clone();
    let head = evaluated.with_items(ItemsSlot);
    put_spooled(
        deps.store,
        &obj.bucket,
        &out_key,
        head,
        &items,
        "application/json",
    )
    .await?;
    match retry {
        Some(e) => Err(e),
        None => Ok(Outcome::Wrote(vec![out_key])),
    }
}
