//! `modctl check-prompt`: an image-generation prompt screened by the text path before it reaches
//! an image model.

use std::path::PathBuf;

use moderation_core::chain::config::Vars;

use crate::chain::Chain;
use crate::cli::{CliError, RunArgs};
use crate::lines::Lines;
use crate::shown::shown;

/// `modctl check-prompt`: the decision line, the negative prompt, and the exit status.
pub async fn check_prompt(
    prompt: &str,
    negative_prompts: Option<PathBuf>,
    run: &RunArgs,
) -> Result<u8, CliError> {
    use moderation_core::stages::check::Decision;
    let negative = load_negative_prompts(negative_prompts)?;
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

/// The negative-prompt list: `path`, else `NEGATIVE_PROMPTS`, else the built-in one (the
/// committed `infra/negative-prompts.txt`).
pub fn load_negative_prompts(path: Option<PathBuf>) -> Result<Vec<String>, CliError> {
    let Some(path) = path.or_else(|| Vars::from_env().get("NEGATIVE_PROMPTS").map(PathBuf::from))
    else {
        return Ok(check_api::negative_prompts(None)?);
    };
    // A file that cannot be read is an I/O failure (exit 1), not a usage error.
    let list = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
        path: shown(&path),
        source,
    })?;
    moderation_core::stages::check::parse_negative_prompts(&list)
        .map_err(|e| CliError::Usage(format!("{}: {e}", shown(&path))))
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
    let service = crate::serve::service(chain, negative, run).await?;
    Ok(service.check_prompt(prompt).await)
}
