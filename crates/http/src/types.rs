//! Request bodies as the game sends them, validated into the core's requests, and the answers
//! written back: the contract in `docs/api.md`.

use moderation_core::model::Item;
use moderation_core::stages::check::text::{TextCheck, TextRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, Code};

/// Messages one `/v1/check/text` request may carry.
pub const MAX_BATCH: usize = 25;
/// Earlier lines one message may bring as context.
pub const MAX_CONTEXT: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    text: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    conversation: Option<String>,
    /// Accepted and checked for shape; conversation-level risk will read it.
    #[serde(default)]
    age_band: Option<String>,
    #[serde(default)]
    context: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    messages: Vec<Message>,
}

/// A `/v1/check/text` body: one message, or `{"messages":[...]}`; `batch` says which, so the
/// answer has the same shape.
#[derive(Debug, PartialEq, Eq)]
pub struct TextBody {
    pub requests: Vec<TextRequest>,
    pub batch: bool,
}

pub fn parse_text_body(body: &[u8]) -> Result<TextBody, ApiError> {
    let value = json_value(body)?;
    let batch = value.get("messages").is_some();
    let messages = if batch {
        let b: Batch = serde_json::from_value(value).map_err(shape)?;
        if b.messages.is_empty() || b.messages.len() > MAX_BATCH {
            return Err(ApiError::new(
                Code::BadRequest,
                format!(
                    "\"messages\" holds {} messages; send 1 to {MAX_BATCH}",
                    b.messages.len()
                ),
            ));
        }
        b.messages
    } else {
        vec![serde_json::from_value(value).map_err(shape)?]
    };
    let requests = messages
        .into_iter()
        .enumerate()
        .map(|(n, m)| to_request(m).map_err(|e| at(batch, n, e)))
        .collect::<Result<_, _>>()?;
    Ok(TextBody { requests, batch })
}

fn shape(e: serde_json::Error) -> ApiError {
    ApiError::new(
        Code::BadRequest,
        format!("the body does not fit the API: {e}"),
    )
}

fn at(batch: bool, n: usize, mut e: ApiError) -> ApiError {
    if batch {
        e.message = format!("messages[{n}]: {}", e.message);
    }
    e
}

fn to_request(m: Message) -> Result<TextRequest, ApiError> {
    if m.context.len() > MAX_CONTEXT {
        return Err(ApiError::new(
            Code::BadRequest,
            format!(
                "\"context\" holds {} lines; send at most {MAX_CONTEXT}",
                m.context.len()
            ),
        ));
    }
    if let Some(band) = &m.age_band {
        check_age_band(band)?;
    }
    Ok(TextRequest {
        text: m.text,
        user: m.user,
        conversation: m.conversation,
        context: m.context,
    })
}

/// `13-15`, `16-17`, `18+`, `under-13`: digits, `-`, `+` and letters, at most 16 characters.
fn check_age_band(band: &str) -> Result<(), ApiError> {
    let ok = !band.is_empty()
        && band.len() <= 16
        && band
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '+');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::BadRequest,
            format!("\"age_band\" {band:?} is not a band like \"13-15\" or \"18+\""),
        ))
    }
}

/// One message's answer.
pub fn text_answer(check: &TextCheck) -> Value {
    let item: &Item = &check.item;
    let mut out = json!({
        "decision": check.decision.as_str(),
        "verdict": item.verdict,
        "toxicity": item.toxicity,
        "categories": item.categories,
        "rule_hits": item.rule_hits,
        "reasons": check.reasons,
    });
    if let Some(language) = &item.language {
        out["language"] = json!(language);
    }
    if let Some(translation) = &item.translation {
        out["translation"] = json!(translation);
    }
    if let Some(revealed) = &item.revealed {
        out["revealed"] = json!(revealed);
    }
    if let Some(evaluation) = &item.evaluation {
        out["evaluation"] = json!(evaluation);
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptBody {
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: Option<String>,
}

pub fn parse_prompt_body(body: &[u8]) -> Result<PromptBody, ApiError> {
    serde_json::from_value(json_value(body)?).map_err(shape)
}

/// The body as JSON, before its shape is checked (so the two errors read differently).
fn json_value(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::BadRequest, format!("the body is not JSON: {e}")))
}

/// The negative prompt to send the image model: the list, then what the caller added.
pub fn negative_prompt(list: &[String], own: Option<&str>) -> String {
    let mut terms: Vec<&str> = list.iter().map(String::as_str).collect();
    if let Some(own) = own.map(str::trim).filter(|s| !s.is_empty()) {
        terms.push(own);
    }
    terms.join(", ")
}

#[cfg(test)]
mod tests;
