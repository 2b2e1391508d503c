//! Conversations over the conversation gate judged as a whole: the evidence lines call up the
//! policy, and the judge reads the bounded thread in a `<conversation>` element and the ages in
//! a `<user_context>` element (see `prompt`), answering as for items, with citations.

use super::config::{EvaluateConfig, EvaluateDeps};
use super::verdict::not_judged;
use crate::error::Result;
use crate::model::{Conversation, Item, Usage, Verdict};
use crate::ports::{JudgeRequest, Judgement};

/// Words the policy's child-safety section uses; added to the retrieval query.
const QUERY_WORDS: &str =
    "grooming child safety minors secrecy isolation gifts off-platform meeting pictures sexual";

const OVER_BUDGET: &str = "the source's policy-check budget for conversations \
     (MAX_LLM_CALLS_PER_OBJECT) was spent on riskier ones";

/// The conversation's evidence as one item: what is judged, and what retrieval reads.
pub fn evidence_item(c: &Conversation) -> Item {
    let text = c
        .thread
        .iter()
        .filter(|l| c.evidence.contains(&l.item))
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let mut item = Item::new(format!("conversation:{}", c.id), text);
    item.conversation = Some(c.id.clone());
    item.user = c.user.clone();
    item.toxicity = c.risk;
    item
}

/// Why the conversation is judged, for the prompt.
pub fn conversation_signals(c: &Conversation) -> String {
    let names = c.signal_names();
    format!(
        "conversation risk {:.2}; signals {}",
        c.risk,
        names.join(", ")
    )
}

/// Judge every conversation without a verdict, reusing the verdict of an earlier evaluation
/// of the same evidence; returns the usage and the first error a retry can fix.
pub(super) async fn judge_conversations(
    conversations: &mut [Conversation],
    previous: &[Conversation],
    threshold: f64,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
) -> (Usage, Option<crate::error::Error>) {
    let mut usage = Usage::default();
    let mut retry = None;
    let mut calls = 0;
    for c in conversations.iter_mut().filter(|c| c.verdict.is_none()) {
        if let Some(p) = previous.iter().find(|p| reusable(p, c)) {
            c.verdict = p.verdict;
            c.evaluation = p.evaluation.clone();
            continue;
        }
        // The riskiest come first: past the budget a person reads the rest.
        if calls >= cfg.max_calls {
            let j = not_judged(OVER_BUDGET, deps.judge.model());
            c.verdict = Some(j.verdict);
            c.evaluation = Some(j.evaluation);
            continue;
        }
        calls += 1;
        let judged = judge_one(c, threshold, deps, cfg).await;
        let j = match judged {
            Ok(j) => j,
            Err(e) => {
                let j = not_judged(&format!("the policy check failed: {e}"), deps.judge.model());
                if e.is_retryable() && retry.is_none() {
                    retry = Some(e);
                }
                j
            }
        };
        usage.add(&j.usage);
        c.verdict = Some(j.verdict);
        c.evaluation = Some(j.evaluation);
    }
    (usage, retry)
}

/// An earlier answer on the same evidence that a person can trust.
fn reusable(previous: &Conversation, now: &Conversation) -> bool {
    previous.id == now.id
        && previous.evidence == now.evidence
        && matches!(
            previous.verdict,
            Some(Verdict::Violation | Verdict::NoViolation)
        )
}

async fn judge_one(
    c: &Conversation,
    threshold: f64,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
) -> Result<Judgement> {
    let item = evidence_item(c);
    let passages = if deps.judge.retrieves() {
        Vec::new()
    } else {
        let query = format!(
            "{} {QUERY_WORDS}",
            item.text.chars().take(800).collect::<String>()
        );
        deps.retriever.retrieve(&query, cfg.top_k).await?
    };
    if passages.is_empty() && !deps.judge.retrieves() {
        return Ok(not_judged(
            "the knowledge base returned no policy passage for this conversation",
            deps.judge.model(),
        ));
    }
    let signals = conversation_signals(c);
    deps.judge
        .judge(&JudgeRequest {
            item: &item,
            passages: &passages,
            signals: &signals,
            threshold,
            context: &[],
            conversation: Some(c),
        })
        .await
}
