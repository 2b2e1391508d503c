//! screen-text: `incoming/text/<file>` → rule filter + toxicity detector → `screened/<id>.json`.
//! Thin glue: configuration, adapters built once, and [`handler`] over the core stage.

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use moderation_core::chain::config::Thresholds;
use moderation_core::chain::config::{Backend, Vars};
use moderation_core::chain::delivery::{handle_payload, Outcome, TimeLimit};
use moderation_core::chain::keys::Stage;
use moderation_core::model::ObjectRef;
use moderation_core::model::Trigger;
use moderation_core::ports::{LanguageIdentifier, ObjectStore, ToxicityDetector, Translator};
use moderation_core::stages::screen_text::{screen_text_object_as, ScreenConfig, ScreenDeps};
use moderation_core::text::language::OfflineIdentifier;
use moderation_core::text::parse::ParseOptions;
use moderation_core::text::rules::RuleFilter;
use moderation_core::{Error, Result};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Backend,
    pub thresholds: Thresholds,
    /// `COMPREHEND_CONCURRENCY`: DetectToxicContent calls in flight per invocation.
    pub concurrency: usize,
    pub max_message_bytes: usize,
    /// `MAX_OBJECT_BYTES`: larger uploads get a failed report naming the limit.
    pub max_object_bytes: u64,
    /// `MAX_TRANSLATED_CHARS_PER_OBJECT`: Translate's spend cap per upload, in characters.
    pub max_translated_chars: u64,
    /// `MAX_LISTED_BELOW_THRESHOLD`: clean items listed in full per upload; the rest counted.
    pub max_listed_below: u64,
    /// `FORBIDDEN_TERMS_URI`: a file path or `s3://bucket/key`; the built-in list when unset.
    pub forbidden_terms_uri: Option<String>,
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
            thresholds: v.thresholds()?,
            concurrency: v.count("COMPREHEND_CONCURRENCY", 4)?,
            max_message_bytes: v.count("MAX_MESSAGE_BYTES", 100_000)?,
            max_object_bytes: v.count(
                "MAX_OBJECT_BYTES",
                moderation_core::stages::screen_text::DEFAULT_MAX_OBJECT_BYTES as usize,
            )? as u64,
            max_translated_chars: v.count(
                "MAX_TRANSLATED_CHARS_PER_OBJECT",
                moderation_core::stages::screen_text::DEFAULT_MAX_TRANSLATED_CHARS as usize,
            )? as u64,
            max_listed_below: v.count(
                "MAX_LISTED_BELOW_THRESHOLD",
                moderation_core::stages::screen_text::DEFAULT_MAX_LISTED_BELOW as usize,
            )? as u64,
            forbidden_terms_uri: v.get("FORBIDDEN_TERMS_URI"),
            sdk: v.sdk_settings_paced(&["COMPREHEND"])?,
            failure: v.failure_policy()?,
        })
    }
}

pub struct App {
    store: Arc<dyn ObjectStore>,
    detector: Arc<dyn ToxicityDetector>,
    languages: Arc<dyn LanguageIdentifier>,
    translator: Option<Arc<dyn Translator>>,
    rules: RuleFilter,
    config: ScreenConfig,
    failure: moderation_core::chain::delivery::FailurePolicy,
}

impl App {
    pub async fn build(config: Config) -> Result<Self> {
        let mut languages: Option<(Arc<dyn LanguageIdentifier>, Arc<dyn Translator>)> = None;
        let (store, detector): (Arc<dyn ObjectStore>, Arc<dyn ToxicityDetector>) = match &config
            .backend
        {
            Backend::Aws => {
                let sdk = moderation_aws::load_sdk_config(&config.sdk).await;
                languages = Some((
                    Arc::new(moderation_aws::ComprehendLanguages::from_sdk_config(&sdk)),
                    Arc::new(moderation_aws::TranslateToEnglish::from_sdk_config(&sdk)),
                ));
                (
                    Arc::new(moderation_aws::S3Store::from_sdk_config(&sdk)),
                    Arc::new(
                        moderation_aws::ComprehendDetector::from_sdk_config(&sdk).with_pacer(
                            moderation_aws::Rates::pacer(config.sdk.rates.comprehend, "comprehend"),
                        ),
                    ),
                )
            }
            Backend::Offline { root } => (
                Arc::new(moderation_offline::FolderStore::new(root)),
                Arc::new(moderation_offline::OfflineDetector::embedded()?),
            ),
        };
        let rules = match &config.forbidden_terms_uri {
            None => RuleFilter::default_list()?,
            Some(uri) => {
                let text =
                    moderation_core::chain::delivery::read_config_uri(store.as_ref(), uri).await?;
                RuleFilter::parse(&text)
                    .map_err(|e| Error::Config(format!("FORBIDDEN_TERMS_URI {uri}: {e}")))?
            }
        };
        let app = Self::from_parts(store, detector, rules, &config);
        Ok(match languages {
            Some((identifier, translator)) => app.with_languages(identifier, Some(translator)),
            None => app,
        })
    }

    pub fn from_parts(
        store: Arc<dyn ObjectStore>,
        detector: Arc<dyn ToxicityDetector>,
        rules: RuleFilter,
        config: &Config,
    ) -> Self {
        App {
            store,
            detector,
            languages: Arc::new(OfflineIdentifier),
            translator: None,
            rules,
            failure: config.failure,
            config: ScreenConfig {
                thresholds: config.thresholds,
                max_object_bytes: config.max_object_bytes,
                max_concurrency: config.concurrency,
                parse: ParseOptions {
                    max_message_bytes: config.max_message_bytes,
                    text_column: None,
                },
                max_translated_chars: config.max_translated_chars,
                max_listed_below: config.max_listed_below,
            },
        }
    }

    /// Identify languages with `languages` and translate with `translator` (the AWS backend's
    /// Comprehend and Translate) instead of the offline identifier and no translator.
    pub fn with_languages(
        mut self,
        languages: Arc<dyn LanguageIdentifier>,
        translator: Option<Arc<dyn Translator>>,
    ) -> Self {
        self.languages = languages;
        self.translator = translator;
        self
    }

    pub async fn process(&self, obj: ObjectRef) -> Result<Outcome> {
        self.process_until(obj, None).await
    }

    /// [`App::process`] starting no new chunk of messages after `time_limit` (the invocation's
    /// deadline less the time to write what was screened).
    pub async fn process_until(
        &self,
        obj: ObjectRef,
        time_limit: Option<TimeLimit>,
    ) -> Result<Outcome> {
        let id = moderation_core::chain::keys::source_id(&obj.bucket, &obj.key);
        self.process_as_until(obj, id, Trigger::upload(), time_limit)
            .await
    }

    /// Screen a chat log under a given id and trigger: transcribe-audio uses this for the
    /// chat logs a user report names.
    pub async fn process_as(
        &self,
        obj: ObjectRef,
        id: String,
        trigger: Trigger,
    ) -> Result<Outcome> {
        self.process_as_until(obj, id, trigger, None).await
    }

    /// [`App::process_as`] starting no new chunk of messages after `time_limit`.
    pub async fn process_as_until(
        &self,
        obj: ObjectRef,
        id: String,
        trigger: Trigger,
        time_limit: Option<TimeLimit>,
    ) -> Result<Outcome> {
        let deps = ScreenDeps {
            time_limit,
            ..self.screen_deps()
        };
        screen_text_object_as(&obj, &id, trigger, &deps, &self.config).await
    }

    /// The text path: store, detector, rules, languages (screen-image reads image text with it).
    pub fn screen_deps(&self) -> ScreenDeps<'_> {
        ScreenDeps {
            store: self.store.as_ref(),
            detector: self.detector.as_ref(),
            rules: &self.rules,
            languages: self.languages.as_ref(),
            translator: self.translator.as_deref(),
            known_language: None,
            progress: None,
            time_limit: None,
        }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn detector(&self) -> &Arc<dyn ToxicityDetector> {
        &self.detector
    }

    pub fn rules(&self) -> &RuleFilter {
        &self.rules
    }

    pub fn languages(&self) -> &Arc<dyn LanguageIdentifier> {
        &self.languages
    }

    pub fn translator(&self) -> Option<&Arc<dyn Translator>> {
        self.translator.as_ref()
    }

    pub fn max_translated_chars(&self) -> u64 {
        self.config.max_translated_chars
    }

    pub fn thresholds(&self) -> Thresholds {
        self.config.thresholds
    }

    pub fn failure(&self) -> moderation_core::chain::delivery::FailurePolicy {
        self.failure
    }

    pub fn concurrency(&self) -> usize {
        self.config.max_concurrency
    }
}

/// The Lambda handler: S3 notification, SQS-wrapped S3 notifications, or EventBridge.
pub async fn handler(event: LambdaEvent<Value>, app: &App) -> Result<Value> {
    // An upload too big to screen before the timeout is written as far as it got, with the
    // reason, rather than timing out on every delivery and ending in the DLQ unreported.
    let time_limit = TimeLimit::before(event.context.deadline());
    handle_payload(
        Stage::ScreenText,
        &event.payload,
        app.store.as_ref(),
        app.failure,
        |obj| app.process_until(obj, time_limit),
    )
    .await
}
