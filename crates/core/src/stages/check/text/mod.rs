//! Chat messages checked before they go out (the real-time API): the chain's own steps —
//! screen-text's screening (rules, evasion reveal, language, the detector, the gate), then
//! evaluate-policy's judging of what is over the gate — so a message checked here gets the
//! verdict the same line gets in an uploaded log. The policy check runs within a time budget;
//! what it has not judged by then is `review`, never `allow`.

use std::time::Duration;

use super::{describe_hit, over_threshold_categories};
use crate::model::{
    ErrorEntry, Item, ObjectRef, SourceKind, StageDocument, Trigger, Usage, Verdict,
};
use crate::stages::evaluate_policy::{evaluate_items, EvaluateConfig, EvaluateDeps};
use crate::stages::screen_text::preflight::screened_header;
use crate::stages::screen_text::{screen_messages, ScreenDeps};
use crate::text::parse::ParsedMessage;

/// One message to check, with what the game knows about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextRequest {
    pub text: String,
    pub user: Option<String>,
    pub conversation: Option<String>,
    /// Earlier lines of the conversation, oldest first: screened and sent to the judge as
    /// context, as earlier lines of an uploaded log are; they get no answer of their own.
    pub context: Vec<String>,
}

/// What the game should do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextDecision {
    Allow,
    /// Hold it for a person, or let it through flagged: the check could not clear it.
    Review,
    Block,
}

impl TextDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            TextDecision::Allow => "allow",
            TextDecision::Review => "review",
            TextDecision::Block => "block",
        }
    }
}

/// The answer for one message: the decision, the screened and judged item, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TextCheck {
    pub decision: TextDecision,
    pub item: Item,
    pub reasons: Vec<String>,
}

/// What checking needs: the two stages' ports and settings, and the policy check's budget.
pub struct CheckDeps<'a> {
    pub screen: ScreenDeps<'a>,
    pub evaluate: EvaluateDeps<'a>,
    pub evaluate_config: &'a EvaluateConfig,
    /// The gate in front of the policy check (the chain's text threshold).
    pub threshold: f64,
    pub max_concurrency: usize,
    /// How long the policy check may take (`CHECK_POLICY_BUDGET_MS`).
    pub policy_budget: Duration,
}

/// Check `requests` together (one screening pass, one policy pass); one answer per request,
/// in order.
pub async fn check_texts(requests: &[TextRequest], deps: &CheckDeps<'_>) -> Vec<TextCheck> {
    let (messages, asked) = messages_of(requests);
    let (items, errors, usage) =
        screen_messages(messages, &deps.screen, deps.threshold, deps.max_concurrency).await;
    let doc = document(items, errors, usage, deps.threshold);
    let (judged, problem) = judge_within(
        doc,
        &deps.evaluate,
        deps.evaluate_config,
        deps.policy_budget,
    )
    .await;
    answers(judged.items, &asked, deps.threshold, problem.as_deref())
}

/// evaluate-policy's judging of `doc` within `budget`: the judged document, and what went
/// wrong, if anything (a failure or the budget spent: the unjudged items are then `review`).
pub async fn judge_within(
    doc: StageDocument,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
    budget: Duration,
) -> (StageDocument, Option<String>) {
    let judging = evaluate_items(doc.clone(), None, deps, cfg);
    match tokio::time::timeout(budget, judging).await {
        Ok(Ok((judged, None))) => (judged, None),
        Ok(Ok((judged, Some(e)))) => (judged, Some(format!("the policy check failed: {e}"))),
        Ok(Err(e)) => (doc, Some(format!("the policy check failed: {e}"))),
        Err(_) => (
            doc,
            Some(format!(
                "the policy check did not finish within {} ms",
                budget.as_millis()
            )),
        ),
    }
}

/// The messages to screen — each request's context lines, then the message — and the id of
/// each request's own message, in request order.
pub fn messages_of(requests: &[TextRequest]) -> (Vec<ParsedMessage>, Vec<String>) {
    let mut messages = Vec::new();
    let mut asked = Vec::with_capacity(requests.len());
    for (r, req) in requests.iter().enumerate() {
        // Without a conversation the context could not be tied to the message: each request
        // is its own conversation.
        let conversation = req
            .conversation
            .clone()
            .or_else(|| (!req.context.is_empty()).then(|| format!("request-{r}")));
        for (n, line) in req.context.iter().enumerate() {
            messages.push(ParsedMessage {
                id: format!("context-{r}-{n}"),
                text: line.clone(),
                conversation: conversation.clone(),
                ..Default::default()
            });
        }
        let id = format!("message-{r}");
        messages.push(ParsedMessage {
            id: id.clone(),
            text: req.text.clone(),
            user: req.user.clone(),
            conversation,
            ..Default::default()
        });
        asked.push(id);
    }
    (messages, asked)
}

fn document(
    items: Vec<Item>,
    errors: Vec<ErrorEntry>,
    usage: Usage,
    threshold: f64,
) -> StageDocument {
    // Never written: a name that says where it came from, should a log show it.
    let source = ObjectRef::new("check-api", "check/text");
    let mut doc = screened_header(
        &source,
        "check",
        Trigger::upload(),
        SourceKind::Text,
        threshold,
        None,
    );
    doc.items = items;
    doc.errors = errors;
    doc.usage = usage;
    doc
}

/// Each asked message's answer. An item the policy check did not reach, or one that is missing
/// altogether, is `review` with the reason: never `allow` for what was not checked.
pub fn answers(
    items: Vec<Item>,
    asked: &[String],
    threshold: f64,
    problem: Option<&str>,
) -> Vec<TextCheck> {
    let mut items: std::collections::HashMap<String, Item> =
        items.into_iter().map(|i| (i.id.clone(), i)).collect();
    asked
        .iter()
        .map(|id| match items.remove(id) {
            Some(item) => answer(item, threshold, problem),
            None => TextCheck {
                decision: TextDecision::Review,
                reasons: vec!["the message could not be screened".into()],
                item: Item::new(id.clone(), ""),
            },
        })
        .collect()
}

pub(super) fn answer(mut item: Item, threshold: f64, problem: Option<&str>) -> TextCheck {
    let decision = decide(&item);
    let mut reasons: Vec<String> = item.rule_hits.iter().map(describe_hit).collect();
    if item.toxicity >= threshold {
        reasons.push(over_threshold_categories(&item, threshold));
    }
    if let Some(e) = &item.evaluation {
        if !e.analysis.is_empty() {
            reasons.push(e.analysis.clone());
        }
    }
    if item.verdict.is_none() {
        let why = problem.unwrap_or("the policy check gave no verdict");
        reasons.push(why.to_string());
        item.verdict = Some(Verdict::NeedsReview);
        item.review_reason.get_or_insert_with(|| why.to_string());
    } else if let Some(why) = &item.review_reason {
        reasons.push(why.clone());
    }
    reasons.dedup();
    TextCheck {
        decision,
        item,
        reasons,
    }
}

/// `block` for a violation; `allow` for below the gate or no violation; `review` for anything
/// held for a person or not judged.
pub fn decide(item: &Item) -> TextDecision {
    match item.verdict {
        Some(Verdict::Violation) => TextDecision::Block,
        Some(Verdict::BelowThreshold | Verdict::NoViolation) if item.review_reason.is_none() => {
            TextDecision::Allow
        }
        _ => TextDecision::Review,
    }
}

#[cfg(test)]
mod tests;
