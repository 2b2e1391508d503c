//! An image generation checked end to end (seed 002's proxy): the prompt first — a blocked
//! prompt never reaches the model and costs nothing — then the model with the negative
//! prompt, then the picture it made through [`super::image`]. The picture is withheld when
//! blocked.

use super::image::{check_image, ImageCheck, ImageCheckDeps};
use super::text::TextDecision;
use super::{check_prompt, Decision, PromptCheck};
use crate::ports::ImageGenerator;

pub struct GenerateDeps<'a> {
    /// The picture's check; its `image.screen` also reads the prompt.
    pub image: ImageCheckDeps<'a>,
    pub generator: &'a dyn ImageGenerator,
    /// The negative-prompt list, which also marks prompts that ask for its terms.
    pub negative: &'a [String],
    pub warn_at: f64,
    pub block_at: f64,
}

/// What the caller gets back.
#[derive(Debug, Clone)]
pub struct Generation {
    pub decision: TextDecision,
    /// The model's picture; `None` when blocked (or never made).
    pub image: Option<Vec<u8>>,
    pub warnings: Vec<String>,
    pub prompt: PromptCheck,
    pub check: Option<ImageCheck>,
}

/// The model failed, or what it returned is not a picture: nothing to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFailed(pub String);

impl std::fmt::Display for ModelFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub async fn generate(
    prompt: &str,
    negative_prompt: &str,
    deps: &GenerateDeps<'_>,
) -> Result<Generation, ModelFailed> {
    let checked = check_prompt(
        prompt,
        deps.negative,
        &deps.image.image.screen,
        deps.warn_at,
        deps.block_at,
    )
    .await;
    if checked.decision == Decision::Block {
        return Ok(Generation {
            decision: TextDecision::Block,
            image: None,
            warnings: prefixed("prompt", &checked.reasons),
            prompt: checked,
            check: None,
        });
    }
    let name = deps.generator.name();
    let bytes = deps
        .generator
        .generate(prompt, negative_prompt)
        .await
        .map_err(|e| ModelFailed(format!("the image model {name} failed: {e}")))?;
    let check = check_image(bytes.clone(), &deps.image).await.map_err(|r| {
        ModelFailed(format!(
            "the image model {name} returned no usable picture: {r}"
        ))
    })?;
    Ok(settle(checked, bytes, check))
}

/// The picture's decision, the prompt's warnings before the picture's reasons.
fn settle(prompt: PromptCheck, bytes: Vec<u8>, check: ImageCheck) -> Generation {
    let mut warnings = prefixed("prompt", &prompt.reasons);
    warnings.extend(check.reasons.iter().cloned());
    Generation {
        decision: check.decision,
        image: (check.decision != TextDecision::Block).then_some(bytes),
        warnings,
        prompt,
        check: Some(check),
    }
}

fn prefixed(what: &str, reasons: &[String]) -> Vec<String> {
    reasons.iter().map(|r| format!("{what}: {r}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Item, Usage};

    fn prompt(decision: Decision, reasons: &[&str]) -> PromptCheck {
        PromptCheck {
            decision,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            item: Item::new("prompt", "a knight"),
            usage: Usage::default(),
        }
    }

    fn checked(decision: TextDecision, reasons: &[&str]) -> ImageCheck {
        ImageCheck {
            decision,
            items: Vec::new(),
            findings: None,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn a_blocked_picture_is_withheld_and_a_warned_prompt_still_says_so() {
        let got = settle(
            prompt(Decision::Warn, &["asks for \"gore\""]),
            vec![1, 2],
            checked(TextDecision::Block, &["image: toxicity 0.97"]),
        );
        assert_eq!(got.decision, TextDecision::Block);
        assert_eq!(got.image, None);
        assert_eq!(
            got.warnings,
            ["prompt: asks for \"gore\"", "image: toxicity 0.97"]
        );
    }

    #[test]
    fn an_allowed_or_held_picture_is_returned() {
        let ok = settle(
            prompt(Decision::Allow, &[]),
            vec![1, 2],
            checked(TextDecision::Allow, &[]),
        );
        assert_eq!(
            (ok.decision, ok.image),
            (TextDecision::Allow, Some(vec![1, 2]))
        );
        let held = settle(
            prompt(Decision::Allow, &[]),
            vec![3],
            checked(TextDecision::Review, &["image: no image classifier ran"]),
        );
        assert_eq!(held.image, Some(vec![3]));
        assert_eq!(held.warnings, ["image: no image classifier ran"]);
    }
}
