//! `modctl serve`: the real-time check API on a socket, over the same stages as every other
//! command. Loopback by default; any other address needs `--token`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moderation_core::chain::config::Vars;
use moderation_core::model::SourceKind;
use moderation_core::stages::check::text::{check_texts, CheckDeps, TextCheck, TextRequest};
use moderation_core::stages::check::PromptCheck;
use moderation_http::{Checker, Settings};

use crate::chain::Chain;
use crate::check_prompt::{load_negative_prompts, screen_prompt};
use crate::cli::{CliError, RunArgs};

/// The chain's stages as the API's [`Checker`].
struct ChainChecker {
    chain: Chain,
    negative: Vec<String>,
    policy_budget: Duration,
}

#[async_trait]
impl Checker for ChainChecker {
    async fn check_texts(&self, requests: &[TextRequest]) -> Vec<TextCheck> {
        let text = self.chain.text();
        let evaluate = self.chain.evaluate();
        let deps = CheckDeps {
            screen: text.screen_deps(),
            evaluate: evaluate.deps(),
            evaluate_config: evaluate.config(),
            threshold: text.thresholds().for_kind(SourceKind::Text),
            max_concurrency: text.concurrency(),
            policy_budget: self.policy_budget,
        };
        check_texts(requests, &deps).await
    }

    async fn check_prompt(&self, prompt: &str) -> PromptCheck {
        screen_prompt(&self.chain, prompt, &self.negative).await
    }

    fn negative_prompts(&self) -> &[String] {
        &self.negative
    }
}

/// Refuse to expose the API beyond this machine without a token: anyone who can reach the
/// port could otherwise use it (and, on AWS credentials, spend on Bedrock).
pub fn check_exposure(addr: &SocketAddr, token: Option<&str>) -> Result<(), CliError> {
    if addr.ip().is_loopback() || token.is_some_and(|t| !t.trim().is_empty()) {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "{addr} is reachable from other machines: pass --token <secret> (clients send \
         Authorization: Bearer <secret>) or bind 127.0.0.1"
    )))
}

pub async fn serve(
    addr: SocketAddr,
    token: Option<String>,
    negative_prompts: Option<PathBuf>,
    run: &RunArgs,
) -> Result<u8, CliError> {
    check_exposure(&addr, token.as_deref())?;
    let vars = Vars::from_env();
    let settings = Settings::from_vars(&vars)?;
    let policy_budget = Duration::from_millis(vars.count("CHECK_POLICY_BUDGET_MS", 2_000)? as u64);
    let checker = ChainChecker {
        chain: Chain::build(run).await?,
        negative: load_negative_prompts(negative_prompts)?,
        policy_budget,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| CliError::Io {
            path: addr.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| CliError::Io {
        path: addr.to_string(),
        source,
    })?;
    let router = moderation_http::router(Arc::new(checker), settings, token);
    // The line scripts wait for: the port is open and the stages are built.
    println!(
        "listening on http://{bound} (GET /healthz, POST /v1/check/text, POST /v1/check/prompt)"
    );
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    moderation_http::serve(listener, router, stop)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_goes_without_a_token() {
        let local: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let v6: SocketAddr = "[::1]:8080".parse().expect("addr");
        let open: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        assert!(check_exposure(&local, None).is_ok());
        assert!(check_exposure(&v6, None).is_ok());
        let e = check_exposure(&open, None).expect_err("refused");
        assert!(e.to_string().contains("--token"), "{e}");
        assert!(check_exposure(&open, Some("  ")).is_err());
        assert!(check_exposure(&open, Some("s3cret")).is_ok());
    }
}
