//! What a moderator needs to decide on one item (the item in full, the lines before it in its
//! conversation, its media), and the statement of reasons for the decision on it.

use serde::Serialize;

use super::doc::{ReviewDoc, ReviewEntry};
use super::{check_id, locate, Located, ReviewDeps};
use crate::chain::delivery::get_json;
use crate::chain::keys;
use crate::error::Result;
use crate::model::{Decision, Item, Reference, Source, SourceKind};

/// Earlier lines of the item's conversation shown with it.
pub const CONTEXT_LINES: usize = 5;
/// Items read past the item for lines of other conversations between.
const LOOK_BACK: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemView {
    pub report_id: String,
    pub source: Source,
    pub item: Item,
    /// Earlier lines of the same conversation, oldest first.
    pub context: Vec<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<ReviewEntry>,
    /// The recording or picture, as an object key of the bucket (the service makes it a link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_key: Option<String>,
}

pub async fn item_view(deps: &ReviewDeps<'_>, report_id: &str, item_id: &str) -> Result<ItemView> {
    check_id("report_id", report_id)?;
    let Located { doc, item, before } = locate(deps, report_id, item_id, LOOK_BACK).await?;
    let mut context: Vec<Item> = before
        .into_iter()
        .filter(|b| item.conversation.is_some() && b.conversation == item.conversation)
        .collect();
    context.drain(..context.len().saturating_sub(CONTEXT_LINES));
    let review: Option<ReviewDoc> =
        get_json(deps.store, deps.bucket, &keys::review_doc_key(report_id)).await?;
    let media_key = matches!(doc.source.kind, SourceKind::Audio | SourceKind::Image)
        .then(|| keys::parse_s3_uri(&doc.source.uri).map(|(_, k)| k.to_string()))
        .flatten()
        .filter(|k| !k.is_empty() && !k.ends_with('/'));
    Ok(ItemView {
        report_id: report_id.to_string(),
        source: doc.source.clone(),
        entry: review.and_then(|r| r.entry(item_id).cloned()),
        item,
        context,
        media_key,
    })
}

/// The statement of reasons for what was decided about an item: what, under which policy
/// passages, whether automated or by a person, and how to appeal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub report_id: String,
    pub item_id: String,
    pub source: Source,
    pub content: String,
    /// `automated` or `human`.
    pub decided_by: &'static str,
    /// The verdict that stands: the person's when there is one.
    pub verdict: String,
    pub automatic_verdict: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The categories and rules that flagged it.
    pub grounds: Vec<String>,
    pub analysis: String,
    pub policy: Vec<Reference>,
    pub models: Vec<String>,
    pub how_to_appeal: String,
}

pub async fn statement(deps: &ReviewDeps<'_>, report_id: &str, item_id: &str) -> Result<Statement> {
    let view = item_view(deps, report_id, item_id).await?;
    let item = &view.item;
    let decision = view.entry.as_ref().and_then(|e| e.standing().cloned());
    let automatic = item.verdict.map_or("needs_review", |v| v.as_str());
    let mut grounds: Vec<String> = view
        .entry
        .as_ref()
        .map(|e| e.categories.clone())
        .unwrap_or_default();
    grounds.extend(item.rule_hits.iter().map(|h| format!("rule {}", h.rule)));
    let evaluation = item.evaluation.as_ref();
    Ok(Statement {
        report_id: report_id.to_string(),
        item_id: item_id.to_string(),
        source: view.source.clone(),
        content: item.text.clone(),
        decided_by: if decision.is_some() {
            "human"
        } else {
            "automated"
        },
        verdict: decision
            .as_ref()
            .map_or(automatic.to_string(), |d| d.verdict.as_str().to_string()),
        automatic_verdict: automatic.to_string(),
        grounds,
        analysis: evaluation.map(|e| e.analysis.clone()).unwrap_or_default(),
        policy: evaluation.map(|e| e.references.clone()).unwrap_or_default(),
        models: evaluation
            .map(|e| vec![e.model.clone()])
            .unwrap_or_default(),
        decision,
        how_to_appeal: format!(
            "Send POST /v1/review/appeals with {{\"report_id\":\"{report_id}\",\"item_id\":\
             \"{item_id}\",\"statement\":\"why the decision is wrong\"}}. The policy check is \
             run again against the policy as it is then, and a person decides the appeal."
        ),
    })
}
