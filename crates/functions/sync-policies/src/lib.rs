//! sync-policies: a policy file written or deleted under `policies/` → one ingestion job on the
//! knowledge base's data source, so the policy check reads the edit. Thin glue over
//! [`moderation_core::stages::sync_policies`].

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use moderation_core::chain::config::{Backend, SdkSettings, Vars};
use moderation_core::ports::PolicyIndex;
use moderation_core::stages::sync_policies::sync_policies;
use moderation_core::Result;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    /// `KNOWLEDGE_BASE_ID` and `POLICY_DATA_SOURCE_ID`: required on AWS (the template sets both
    /// when it creates the knowledge base).
    pub index: Option<(String, String)>,
    pub sdk: SdkSettings,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(v: &Vars) -> Result<Self> {
        let backend = v.backend()?;
        let index = match backend {
            Backend::Aws => Some((
                v.required("KNOWLEDGE_BASE_ID")?,
                v.required("POLICY_DATA_SOURCE_ID")?,
            )),
            Backend::Offline { .. } => None,
        };
        Ok(Config {
            backend,
            index,
            sdk: v.sdk_settings()?,
        })
    }
}

pub struct App {
    index: Option<Arc<dyn PolicyIndex>>,
}

impl App {
    pub async fn build(config: Config) -> Result<Self> {
        match (&config.backend, &config.index) {
            (Backend::Aws, Some((kb, ds))) => aws(&config.sdk, kb, ds).await,
            _ => Ok(Self::without_index()),
        }
    }

    /// The offline backend: its policy search reads the policy folder at each check, so a
    /// change is read and acknowledged with nothing to re-index.
    pub fn without_index() -> Self {
        App { index: None }
    }

    pub fn from_index(index: Arc<dyn PolicyIndex>) -> Self {
        App { index: Some(index) }
    }
}

#[cfg(feature = "aws")]
async fn aws(sdk: &SdkSettings, knowledge_base: &str, data_source: &str) -> Result<App> {
    let sdk = moderation_aws::load_sdk_config(sdk).await;
    Ok(App::from_index(Arc::new(
        moderation_aws::KnowledgeBaseSync::from_sdk_config(&sdk, knowledge_base, data_source),
    )))
}

#[cfg(not(feature = "aws"))]
async fn aws(_: &SdkSettings, _: &str, _: &str) -> Result<App> {
    Err(moderation_core::chain::config::aws_not_built())
}

pub async fn handler(event: LambdaEvent<Value>, app: &App) -> Result<Value> {
    sync_policies(&event.payload, app.index.as_deref()).await
}
