//! screen-image: `incoming/image/<conversation>/<file>` → moderation labels, the text in the
//! image through the text path, → `screened/<id>.json`. Thin glue: configuration, adapters
//! built once, and [`handler`] over `moderation_core::stages::screen_image`.

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use moderation_core::chain::config::{Backend, Vars};
use moderation_core::chain::delivery::{handle_payload, Outcome};
use moderation_core::chain::keys::Stage;
use moderation_core::model::ObjectRef;
use moderation_core::model::Trigger;
use moderation_core::ports::{ImageModerator, ImageTextReader};
use moderation_core::stages::screen_image::{
    screen_image_object, ImageConfig, ImageDeps, ImageSettings,
};
use moderation_core::Result;
use serde_json::Value;

pub mod aws;

#[derive(Debug, Clone)]
pub struct Config {
    /// The text path's settings, for the text read from images.
    pub text: screen_text::Config,
    /// Label gates, `MinConfidence` and the size limit.
    pub image: ImageSettings,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(v: &Vars) -> Result<Self> {
        let mut text = screen_text::Config::from_vars(v)?;
        text.sdk.rates.rekognition = v.instance_rate("REKOGNITION")?;
        Ok(Config {
            text,
            image: ImageSettings::from_vars(v)?,
        })
    }
}

pub struct App {
    /// The text path, shared with transcribe-audio when it screens a user report's screenshots.
    text: Arc<screen_text::App>,
    moderator: Arc<dyn ImageModerator>,
    reader: Arc<dyn ImageTextReader>,
    config: ImageConfig,
}

impl App {
    pub async fn build(config: Config) -> Result<Self> {
        let text = Arc::new(screen_text::App::build(config.text.clone()).await?);
        Self::build_on(text, &config).await
    }

    /// [`App::build`] over a text path already built (modctl shares one across its stages).
    pub async fn build_on(text: Arc<screen_text::App>, config: &Config) -> Result<Self> {
        let (moderator, reader) = match &config.text.backend {
            Backend::Aws => aws::rekognition(&config.text).await?,
            Backend::Offline { .. } => offline_adapters(config),
        };
        Ok(Self::from_parts(text, moderator, reader, config))
    }

    pub fn from_parts(
        text: Arc<screen_text::App>,
        moderator: Arc<dyn ImageModerator>,
        reader: Arc<dyn ImageTextReader>,
        config: &Config,
    ) -> Self {
        App {
            config: ImageConfig {
                labels: config.image.labels.clone(),
                min_confidence: config.image.min_confidence,
                text_threshold: text
                    .thresholds()
                    .for_kind(moderation_core::model::SourceKind::Text),
                max_image_bytes: config.image.max_image_bytes,
                max_concurrency: text.concurrency(),
                max_translated_chars: text.max_translated_chars(),
            },
            text,
            moderator,
            reader,
        }
    }

    pub async fn process(&self, obj: ObjectRef) -> Result<Outcome> {
        let id = moderation_core::chain::keys::source_id(&obj.bucket, &obj.key);
        self.process_as(obj, id, Trigger::upload()).await
    }

    /// Screen an image under a given id and trigger (a screenshot a user report names).
    pub async fn process_as(
        &self,
        obj: ObjectRef,
        id: String,
        trigger: Trigger,
    ) -> Result<Outcome> {
        screen_image_object(&obj, &id, trigger, &self.deps(), &self.config).await
    }

    /// The stage's ports (the real-time check labels and reads pictures with the same ones).
    pub fn deps(&self) -> ImageDeps<'_> {
        ImageDeps {
            moderator: self.moderator.as_ref(),
            text: self.reader.as_ref(),
            screen: self.text.screen_deps(),
        }
    }

    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn moderation_core::ports::ObjectStore> {
        self.text.store()
    }

    pub fn text(&self) -> &Arc<screen_text::App> {
        &self.text
    }
}

/// open_nsfw when built in (feature `nsfw`), and Tesseract for the text in pictures.
pub fn offline_adapters(config: &Config) -> (Arc<dyn ImageModerator>, Arc<dyn ImageTextReader>) {
    (
        moderation_offline::offline_classifier(config.image.offline_model.as_deref()),
        Arc::new(moderation_offline::TesseractText::default()),
    )
}

/// The Lambda handler: S3 notification, SQS-wrapped S3 notifications, or EventBridge.
pub async fn handler(event: LambdaEvent<Value>, app: &App) -> Result<Value> {
    handle_payload(
        Stage::ScreenImage,
        &event.payload,
        app.text.store().as_ref(),
        app.text.failure(),
        |obj| app.process(obj),
    )
    .await
}
