//! `modctl serve`: the real-time check API on a socket, over the same stages as every other
//! command. Loopback by default; any other address needs `--token`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use check_api::Service;
use moderation_core::chain::config::Vars;
use moderation_core::chain::keys;
use moderation_core::ports::ImageGenerator;
use moderation_http::review::ReviewSettings;
use moderation_http::Settings;
use moderation_offline::review::{FolderPolicyVersion, JsonlEvents};

use crate::chain::{settings, Chain};
use crate::cli::{CliError, RunArgs};
use crate::shown::shown;

/// The check API's service over `chain`'s own stages: the same composition as the Lambda
/// function, with `generator` as its image model (or why there is none).
pub fn service(
    chain: &Chain,
    negative: Vec<String>,
    vars: &Vars<'_>,
    generator: Result<Arc<dyn ImageGenerator>, String>,
) -> Result<Service, CliError> {
    Ok(Service::new(
        chain.image().clone(),
        chain.evaluate().clone(),
        negative,
        check_api::policy_budget(vars)?,
        generator,
    ))
}

/// The review loop over the output folder: decisions published to
/// `DIR/decisions/events.jsonl`, the policy version hashed from the policy folder, appeals
/// judged by the chain's own policy check.
pub fn reviewer(
    chain: &Chain,
    run: &RunArgs,
    vars: &Vars<'_>,
) -> Result<review_api::Service, CliError> {
    let (store, bucket) = chain.bucket();
    let events = JsonlEvents::new(run.out.join(keys::DECISION_EVENTS_KEY));
    let budget = review_api::appeal_budget(vars)?;
    Ok(review_api::Service::new(
        store,
        bucket,
        Arc::new(FolderPolicyVersion::new(&run.policy)),
        Arc::new(events),
    )
    .with_appeals(chain.evaluate().clone(), budget))
}

/// The image model the settings name, or why there is none.
async fn image_model(vars: &Vars<'_>) -> Result<Result<Arc<dyn ImageGenerator>, String>, CliError> {
    let generation = check_api::GenerationConfig::from_vars(vars)?;
    let text = screen_text::Config::from_vars(vars)?;
    Ok(check_api::generator(&generation, &text).await?)
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
    let vars = settings(run);
    let window = check_api::batch_window(&vars)?;
    let settings = Settings::from_vars(&vars)?;
    let chain = Chain::build_batching(run, Some(window)).await?;
    let negative = load_negative_prompts(negative_prompts)?;
    let checker = service(&chain, negative, &vars, image_model(&vars).await?)?;
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
    let reviewer = reviewer(&chain, run, &vars)?;
    let router = moderation_http::app(
        Some(Arc::new(checker)),
        Some((
            Arc::new(reviewer),
            ReviewSettings {
                moderator_from_body: true,
            },
        )),
        settings,
        token,
    );
    // The line scripts wait for: the port is open and the stages are built.
    println!(
        "listening on http://{bound} (GET /healthz, POST /v1/check/text, /v1/check/prompt, \
         /v1/check/image, /v1/generate; the review console at http://{bound}/review)"
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
