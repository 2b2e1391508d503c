//! Image-generation prompts: before a player's prompt reaches an image model, the rule filter
//! and the toxicity detector read it (the text path, languages and evasions included) and the
//! answer is allow, warn or block, with the reasons; the negative prompt to pass to the model
//! comes from a list users edit. The generated image then goes through screen-image.
//! [`text`] checks chat messages the same way, policy check included; [`image`] a picture,
//! [`generate`] the whole of an image generation.

pub mod generate;
pub mod image;
mod scratch;
pub mod text;

use crate::model::{Item, RuleHit, Usage};
use crate::stages::screen_text::{screen_messages, ScreenDeps};
use crate::text::parse::ParsedMessage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Let a person look first, or generate with care.
    Warn,
    Block,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Warn => "warn",
            Decision::Block => "block",
        }
    }
}

/// What the check found.
#[derive(Debug, Clone)]
pub struct PromptCheck {
    pub decision: Decision,
    pub reasons: Vec<String>,
    /// The screened prompt: scores, rule hits, language, revealed reading.
    pub item: Item,
    pub usage: Usage,
}

/// Toxicity from which a prompt is blocked outright; between the warn threshold and this it is
/// a warning.
pub const DEFAULT_BLOCK_AT: f64 = 0.8;

fn describe_hit(h: &RuleHit) -> String {
    format!("forbidden term {} matched {:?}", h.rule, h.matched)
}

/// "toxicity 0.93 (threat 0.91, insult 0.62)": the score and the categories at or over `at`.
fn over_threshold_categories(item: &Item, at: f64) -> String {
    let top = crate::model::Category::ALL
        .iter()
        .map(|c| (c, item.categories.get(*c)))
        .filter(|(_, s)| *s >= at)
        .map(|(c, s)| format!("{} {s:.2}", c.as_str()))
        .collect::<Vec<_>>();
    if top.is_empty() {
        format!("toxicity {:.2}", item.toxicity)
    } else {
        format!("toxicity {:.2} ({})", item.toxicity, top.join(", "))
    }
}

/// Check one prompt. A forbidden term or toxicity ≥ `block_at` blocks; toxicity ≥ `warn_at`, a
/// prompt asking for a term of the negative-prompt list ("gore", "nudity"), or anything that
/// kept the prompt from being read fully (another language offline, a failed detector call),
/// warns.
pub async fn check_prompt(
    prompt: &str,
    negative: &[String],
    deps: &ScreenDeps<'_>,
    warn_at: f64,
    block_at: f64,
) -> PromptCheck {
    let message = ParsedMessage {
        id: "prompt".into(),
        text: prompt.to_string(),
        ..Default::default()
    };
    let (mut items, errors, usage) = screen_messages(vec![message], deps, warn_at, 1).await;
    let Some(item) = items.pop() else {
        return PromptCheck {
            decision: Decision::Warn,
            reasons: vec!["the prompt could not be screened".into()],
            item: Item::new("prompt", prompt),
            usage,
        };
    };
    let mut reasons: Vec<String> = item.rule_hits.iter().map(describe_hit).collect();
    if item.toxicity >= warn_at {
        reasons.push(over_threshold_categories(&item, warn_at));
    }
    let asks: Vec<&String> = negative.iter().filter(|t| mentions(prompt, t)).collect();
    for t in &asks {
        reasons.push(format!(
            "asks for {t:?}, which the negative prompt steers away from"
        ));
    }
    let unread = item.review_reason.clone();
    reasons.extend(unread.iter().cloned());
    reasons.extend(errors.iter().map(|e| e.message.clone()));
    reasons.dedup();
    let decision = if !item.rule_hits.is_empty() || item.toxicity >= block_at {
        Decision::Block
    } else if item.toxicity >= warn_at || !asks.is_empty() || unread.is_some() || !errors.is_empty()
    {
        Decision::Warn
    } else {
        Decision::Allow
    };
    PromptCheck {
        decision,
        reasons,
        item,
        usage,
    }
}

/// Whether `text` contains `term` as whole words, ignoring case.
fn mentions(text: &str, term: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (text, term) = (words(text), words(term));
    !term.is_empty() && text.windows(term.len()).any(|w| w == term.as_slice())
}

/// A negative-prompt list: one term per line, `#` comments and blank lines ignored, duplicates
/// dropped; an empty list is an error (a typo'd file must not silently send no negative prompt).
pub fn parse_negative_prompts(text: &str) -> Result<Vec<String>, String> {
    let mut terms: Vec<String> = Vec::new();
    for line in text.lines() {
        let term = line.split('#').next().unwrap_or_default().trim();
        if !term.is_empty() && !terms.iter().any(|t| t.eq_ignore_ascii_case(term)) {
            terms.push(term.to_string());
        }
    }
    if terms.is_empty() {
        return Err("the negative-prompt list has no terms".into());
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_prompts_skip_comments_blanks_and_repeats() {
        let terms =
            parse_negative_prompts("# for the image model\nnudity\n\ngore # blood too\nNudity\n")
                .expect("terms");
        assert_eq!(terms, ["nudity", "gore"]);
        assert!(parse_negative_prompts("# nothing\n\n").is_err());
    }

    #[test]
    fn negative_terms_match_whole_words() {
        assert!(mentions("a knight, covered in BLOOD, at dawn", "blood"));
        assert!(mentions("show some graphic violence", "graphic violence"));
        assert!(!mentions("a bloodhound in the snow", "blood"));
        assert!(!mentions("graphic design poster", "graphic violence"));
    }
}
