//! `modctl check-prompt`: an image-generation prompt screened by the text path before it reaches
//! an image model.

use std::path::PathBuf;

use crate::chain::Chain;
use crate::cli::{CliError, RunArgs};
use crate::lines::Lines;

/// `modctl check-prompt`: the decision line, the negative prompt, and the exit status.
pub async fn check_prompt(
    prompt: &str,
    negative_prompts: Option<PathBuf>,
    run: &RunArgs,
) -> Result<u8, CliError> {
    use moderation_core::stages::check::Decision;
    let negative = crate::serve::load_negative_prompts(negative_prompts)?;
    let chain = Chain::build(run).await?;
    let found = screen_prompt(&chain, prompt, negative.clone(), run).await?;
    let mut out = Lines::new(std::io::stdout());
    out.line(&format!(
        "{}{}",
        found.decision.as_str(),
        if found.reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", found.reasons.join("; "))
        }
    ));
    out.line(&format!("negative prompt: {}", negative.join(", ")));
    Ok(match found.decision {
        Decision::Allow => 0,
        Decision::Warn => 3,
        Decision::Block => 4,
    })
}

/// The prompt through the check API's own check: warn from the text gate, block from 0.8 (or
/// the gate, if higher).
pub async fn screen_prompt(
    chain: &Chain,
    prompt: &str,
    negative: Vec<String>,
    run: &RunArgs,
) -> Result<moderation_core::stages::check::PromptCheck, CliError> {
    use moderation_http::Checker;
    // A prompt check draws nothing: no image model is built (nor its settings read).
    let vars = crate::chain::settings(run);
    let service = crate::serve::service(chain, negative, &vars, Err("not used".into()))?;
    Ok(service.check_prompt(prompt).await)
}
