//! Appeals: the policy check run again on the item against the policy as it is now, the
//! outcome recorded beside the original, and the item back in the queue as `appeal`.

use std::time::Duration;

use super::{
    check_id, entry_for, locate, record_and_apply, sync_queue, Located, Recorded, ReviewDeps,
};
use crate::chain::delivery::now_rfc3339;
use crate::error::{Error, Result};
use crate::model::{Appeal, AppealState, Item, Reevaluation, ReviewRecord, StageDocument, Verdict};
use crate::stages::check::text::judge_within;
use crate::stages::evaluate_policy::{EvaluateConfig, EvaluateDeps};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppealRequest {
    pub report_id: String,
    pub item_id: String,
    pub statement: String,
}

/// The policy check an appeal re-runs, and how long it may take.
pub struct AppealJudge<'a> {
    pub evaluate: EvaluateDeps<'a>,
    pub config: &'a EvaluateConfig,
    pub budget: Duration,
}

/// Record an appeal against the decision (or the automatic verdict) on one item.
pub async fn appeal(
    req: &AppealRequest,
    deps: &ReviewDeps<'_>,
    judge: Option<&AppealJudge<'_>>,
) -> Result<Recorded<Appeal>> {
    check_id("report_id", &req.report_id)?;
    let entry = entry_for(deps, &req.report_id, &req.item_id).await?;
    if entry
        .appeal
        .as_ref()
        .is_some_and(|a| a.state == AppealState::Open)
    {
        return Err(Error::Invalid(format!(
            "item {} already has an open appeal",
            req.item_id
        )));
    }
    let policy_version = deps.policy.policy_version().await?;
    let reevaluation = match judge {
        Some(j) => rejudge(deps, j, &req.report_id, &req.item_id, policy_version).await?,
        None => Reevaluation {
            verdict: Verdict::NeedsReview,
            evaluation: None,
            policy_version,
            problem: Some("no policy check is configured for appeals".into()),
        },
    };
    let at = now_rfc3339();
    let original = entry
        .standing()
        .map_or(entry.verdict.as_str(), |d| d.verdict.as_str())
        .to_string();
    let appeal = Appeal {
        id: super::new_id(&[&req.report_id, &req.item_id, &at, &req.statement]),
        report_id: req.report_id.clone(),
        item_id: req.item_id.clone(),
        state: AppealState::Open,
        statement: req.statement.clone(),
        at,
        original,
        reevaluation,
        settled_by: None,
    };
    let record = ReviewRecord::Appeal(appeal.clone());
    let doc = record_and_apply(deps, &record, |doc| doc.apply_appeal(&appeal)).await?;
    let warnings = sync_queue(deps, &doc).await;
    Ok(Recorded {
        record: appeal,
        doc,
        warnings,
    })
}

/// Judge the item again, with the earlier lines of its conversation as context, as
/// evaluate-policy does.
async fn rejudge(
    deps: &ReviewDeps<'_>,
    judge: &AppealJudge<'_>,
    report_id: &str,
    item_id: &str,
    policy_version: String,
) -> Result<Reevaluation> {
    // Enough earlier items to find `n` of one conversation among others.
    let look_back = judge.config.context_messages.max(1) * 8;
    let Located {
        doc,
        mut item,
        before,
    } = locate(deps, report_id, item_id, look_back).await?;
    // The item, cleared of its verdict so it is judged again, after the earlier items of its
    // conversation (kept as they were: context only).
    let mut items: Vec<Item> = before
        .into_iter()
        .filter(|b| b.conversation == item.conversation)
        .collect();
    item.verdict = None;
    item.evaluation = None;
    items.push(item);
    let doc: StageDocument = doc.with_items(items);
    let (judged, problem) = judge_within(doc, &judge.evaluate, judge.config, judge.budget).await;
    let item = judged.items.iter().find(|i| i.id == item_id);
    let verdict = item.and_then(|i| i.verdict);
    Ok(Reevaluation {
        verdict: verdict.unwrap_or(Verdict::NeedsReview),
        evaluation: item.and_then(|i| i.evaluation.clone()),
        policy_version,
        problem: problem.or_else(|| {
            verdict
                .is_none()
                .then(|| "the policy check gave no verdict".to_string())
        }),
    })
}
