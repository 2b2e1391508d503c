//! write-report: `evaluated/<id>.json` → `reports/<id>.json`, `reports/<id>.html` and
//! `reports/index.html`. Thin glue over [`moderation_core::stages::write_report`].

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use moderation_core::chain::config::{Backend, Vars};
use moderation_core::chain::delivery::{handle_payload, Outcome};
use moderation_core::chain::keys::Stage;
use moderation_core::model::ObjectRef;
use moderation_core::ports::{MediaLinks, ObjectStore};
use moderation_core::stages::write_report::{write_report_object, ReportDeps};
use moderation_core::Result;
use serde_json::Value;

mod aws;

#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    /// `REPORT_CONCURRENCY`: report documents fetched at once when seeding a bucket's index.
    pub concurrency: usize,
    /// `PRESIGN_EXPIRY_SECONDS`: how long the audio player's presigned link is valid (at most
    /// 7 days; a role's session credentials may end it sooner).
    pub presign_expiry: std::time::Duration,
    pub sdk: moderation_core::chain::config::SdkSettings,
    pub failure: moderation_core::chain::delivery::FailurePolicy,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(v: &Vars) -> Result<Self> {
        Ok(Config {
            backend: v.backend()?,
            concurrency: v.count("REPORT_CONCURRENCY", 8)?,
            presign_expiry: presign_expiry(v)?,
            sdk: v.sdk_settings()?,
            failure: v.failure_policy()?,
        })
    }
}

fn presign_expiry(v: &Vars) -> Result<std::time::Duration> {
    const MAX: usize = 7 * 24 * 3600;
    let secs = v.count("PRESIGN_EXPIRY_SECONDS", MAX)?;
    if secs > MAX {
        return Err(moderation_core::Error::InvalidVar {
            var: "PRESIGN_EXPIRY_SECONDS".into(),
            value: secs.to_string(),
            reason: format!("presigned URLs last at most {MAX} seconds (7 days)"),
        });
    }
    Ok(std::time::Duration::from_secs(secs as u64))
}

pub struct App {
    store: Arc<dyn ObjectStore>,
    media: Option<Arc<dyn MediaLinks>>,
    concurrency: usize,
    failure: moderation_core::chain::delivery::FailurePolicy,
}

impl App {
    pub async fn build(config: Config) -> Result<Self> {
        match &config.backend {
            Backend::Aws => aws::build(&config).await,
            // The folder bucket: the report links the recording by relative path.
            Backend::Offline { root } => Ok(Self::from_parts(
                Arc::new(moderation_offline::FolderStore::new(root)),
                &config,
            )),
        }
    }

    pub fn from_parts(store: Arc<dyn ObjectStore>, config: &Config) -> Self {
        App {
            store,
            media: None,
            concurrency: config.concurrency,
            failure: config.failure,
        }
    }

    /// Presigned links for the audio player.
    pub fn with_media(mut self, media: Arc<dyn MediaLinks>) -> Self {
        self.media = Some(media);
        self
    }

    pub async fn process(&self, obj: ObjectRef) -> Result<Outcome> {
        let deps = ReportDeps {
            store: self.store.as_ref(),
            media: self.media.as_deref(),
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
