//! write-report: `evaluated/<id>.json` → `reports/<id>.json`, `reports/<id>.html` and
//! `reports/index.html`. Thin glue over [`moderation_core::report`].

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use moderation_core::config::{Backend, Vars};
use moderation_core::event::ObjectRef;
use moderation_core::keys::Stage;
use moderation_core::ports::ObjectStore;
use moderation_core::report::{write_report_object, ReportDeps};
use moderation_core::stage::{handle_payload, Outcome};
use moderation_core::Result;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    /// `REPORT_CONCURRENCY`: report documents fetched at once when rebuilding the index.
    pub concurrency: usize,
    pub sdk: moderation_core::config::SdkSettings,
    pub failure: moderation_core::stage::FailurePolicy,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(v: &Vars) -> Result<Self> {
        Ok(Config {
            backend: v.backend()?,
            concurrency: v.count("REPORT_CONCURRENCY", 8)?,
            sdk: v.sdk_settings()?,
            failure: v.failure_policy()?,
        })
    }
}

pub struct App {
    store: Arc<dyn ObjectStore>,
    concurrency: usize,
    failure: moderation_core::stage::FailurePolicy,
}

impl App {
    pub async fn build(config: Config) -> Result<Self> {
        let store: Arc<dyn ObjectStore> = match &config.backend {
            Backend::Aws => {
                let sdk = moderation_aws::load_sdk_config(&config.sdk).await;
                Arc::new(moderation_aws::S3Store::from_sdk_config(&sdk))
            }
            Backend::Offline { root } => Arc::new(moderation_offline::FolderStore::new(root)),
        };
        Ok(Self::from_parts(store, &config))
    }

    pub fn from_parts(store: Arc<dyn ObjectStore>, config: &Config) -> Self {
        App {
            store,
            concurrency: config.concurrency,
            failure: config.failure,
        }
    }

    pub async fn process(&self, obj: ObjectRef) -> Result<Outcome> {
        let deps = ReportDeps {
            store: self.store.as_ref(),
            max_concurrency: self.concurrency,
        };
        write_report_object(&obj, &deps).await
    }
}

pub async fn handler(event: LambdaEvent<Value>, app: &App) -> Result<Value> {
    handle_payload(
        Stage::WriteReport,
        &event.payload,
        app.store.as_ref(),
        app.failure,
        |obj| app.process(obj),
    )
    .await
}
