//! The function's settings and its composition over the backend: the bucket the chain writes,
//! where decisions are published, how the policy version is read, and the appeals' judge.

use std::sync::Arc;
use std::time::Duration;

use moderation_core::chain::config::{Backend, Vars};
use moderation_core::chain::keys;
use moderation_core::ports::{DecisionEvents, PolicyVersion};
use moderation_core::stages::review::BucketPolicyVersion;
use moderation_core::Result;
use moderation_http::review::ReviewSettings;
use moderation_http::Settings;
use moderation_offline::review::{FolderPolicyVersion, JsonlEvents};

use crate::Service;

#[derive(Debug, Clone)]
pub struct Config {
    /// `MODERATION_BUCKET`: the chain's bucket (reports, review state, decisions).
    pub bucket: String,
    /// The policy check appeals re-run (evaluate-policy's settings).
    pub evaluate: evaluate_policy::Config,
    pub appeal_budget: Duration,
    /// `DECISION_BUS_NAME` (AWS): the EventBridge bus `moderation.decision` events go to.
    pub decision_bus: Option<String>,
    pub http: Settings,
}

/// `REVIEW_APPEAL_BUDGET_MS` (default 60,000): how long an appeal's policy check may take;
/// past it the re-check is `needs_review`.
pub fn appeal_budget(v: &Vars) -> Result<Duration> {
    Ok(Duration::from_millis(
        v.count("REVIEW_APPEAL_BUDGET_MS", 60_000)? as u64,
    ))
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(v: &Vars) -> Result<Self> {
        let evaluate = evaluate_policy::Config::from_vars(v)?;
        let decision_bus = match evaluate.backend {
            Backend::Aws => Some(v.required("DECISION_BUS_NAME")?),
            Backend::Offline { .. } => None,
        };
        Ok(Config {
            bucket: v.required("MODERATION_BUCKET")?,
            evaluate,
            appeal_budget: appeal_budget(v)?,
            decision_bus,
            http: Settings::from_vars(v)?,
        })
    }

    /// On AWS the moderator is the signed-in user; offline, whoever the body names.
    pub fn review_settings(&self) -> ReviewSettings {
        ReviewSettings {
            moderator_from_body: !matches!(self.evaluate.backend, Backend::Aws),
        }
    }
}

impl Service {
    /// Everything from `config` (the Lambda function).
    pub async fn build(config: &Config) -> Result<Self> {
        let evaluate = Arc::new(evaluate_policy::App::build(config.evaluate.clone()).await?);
        let store = evaluate.store().clone();
        let (policy, events): (Arc<dyn PolicyVersion>, Arc<dyn DecisionEvents>) =
            match &config.evaluate.backend {
                Backend::Offline { root } => (
                    Arc::new(FolderPolicyVersion::new(&config.evaluate.policy_dir)),
                    Arc::new(JsonlEvents::new(
                        std::path::Path::new(root)
                            .join(&config.bucket)
                            .join(keys::DECISION_EVENTS_KEY),
                    )),
                ),
                Backend::Aws => {
                    let version = BucketPolicyVersion::new(store.clone(), &config.bucket);
                    (Arc::new(version), aws_events(config).await?)
                }
            };
        let service = Service::new(store, &config.bucket, policy, events)
            .with_appeals(evaluate, config.appeal_budget);
        with_media_links(service, config).await
    }
}

#[cfg(feature = "aws")]
async fn aws_events(config: &Config) -> Result<Arc<dyn DecisionEvents>> {
    let sdk = moderation_aws::load_sdk_config(&config.evaluate.sdk).await;
    let bus = config.decision_bus.clone().unwrap_or_default();
    Ok(Arc::new(
        moderation_aws::EventBridgeDecisions::from_sdk_config(&sdk, bus),
    ))
}

#[cfg(not(feature = "aws"))]
async fn aws_events(_: &Config) -> Result<Arc<dyn DecisionEvents>> {
    Err(moderation_core::chain::config::aws_not_built())
}

/// On AWS the console's media links are presigned at view time.
#[cfg(feature = "aws")]
async fn with_media_links(service: Service, config: &Config) -> Result<Service> {
    if !matches!(config.evaluate.backend, Backend::Aws) {
        return Ok(service);
    }
    let sdk = moderation_aws::load_sdk_config(&config.evaluate.sdk).await;
    let links = moderation_aws::S3Store::from_sdk_config(&sdk)
        .with_presign_expiry(Duration::from_secs(15 * 60));
    Ok(service.with_media_links(Arc::new(links)))
}

#[cfg(not(feature = "aws"))]
async fn with_media_links(service: Service, _: &Config) -> Result<Service> {
    Ok(service)
}

/// The router the Lambda serves: the review side only, every data route behind the moderator
/// check.
#[cfg(feature = "lambda")]
pub fn lambda_router(service: Service, config: &Config) -> axum::Router {
    moderation_http::app(
        None,
        Some((Arc::new(service), config.review_settings())),
        config.http,
        None,
    )
    .layer(axum::middleware::from_fn(crate::auth::require_moderator))
}
