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
use moderation_core::ports::{
    LanguageIdentifier, ObjectStore, Progress, ToxicityDetector, Translator,
};
use moderation_core::stages::conversation::{self, UserContexts};
use moderation_core::stages::screen_text::{screen_text_object_as, ScreenConfig, ScreenDeps};
use moderation_core::text::language::OfflineIdentifier;
use moderation_core::text::parse::ParseOptions;
use moderation_core::text::rules::RuleFilter;
use moderation_core::{Error, Result};
use serde_json::Value;

mod aws;
mod detector;

pub use detector::DetectorChoice;

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
    /// `CONVERSATION_THRESHOLD`: the conversation gate (0..1).
    pub conversation_threshold: f64,
    /// `CONVERSATION_WINDOW`: the messages a conversation's risk is computed over.
    pub conversation_window: usize,
    /// `USER_CONTEXT_URI`: the game's user context (CSV or JSONL; a file path or s3://).
    pub user_context_uri: Option<String>,
    /// `OFFLINE_DETECTOR` (offline only): the lexicons, or the all-MiniLM-L6-v2 head.
    pub offline_detector: DetectorChoice,
    /// The CSV/JSONL column holding the message text; found by name when unset (`modctl
    /// --text-column`).
    pub text_column: Option<String>,
    pub sdk: moderation_core::chain::config::SdkSettings,
    pub failure: moderation_core::chain::delivery::FailurePolicy,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(v: &Vars) -> Result<Self> {
        let backend = v.backend()?;
        Ok(Config {
            // Read only offline, so a deployed function reads no variable its template lacks.
            offline_detector: match backend {
                Backend::Offline { .. } => DetectorChoice::from_vars(v)?,
                Backend::Aws => DetectorChoice::Lexicon,
            },
            backend,
            text_column: None,
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
            conversation_threshold: v
                .score("CONVERSATION_THRESHOLD")?
                .unwrap_or(conversation::DEFAULT_CONVERSATION_THRESHOLD),
            conversation_window: v.count(
                "CONVERSATION_WINDOW",
                conversation::DEFAULT_CONVERSATION_WINDOW,
            )?,
            user_context_uri: v.get("USER_CONTEXT_URI"),
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
    progress: Option<Arc<dyn Progress>>,
    config: ScreenConfig,
    failure: moderation_core::chain::delivery::FailurePolicy,
}

/// What the backend provides the text path.
struct Adapters {
    store: Arc<dyn ObjectStore>,
    detector: Arc<dyn ToxicityDetector>,
    /// Language identification and translation on AWS; offline, the embedded identifier alone.
    languages: Option<(Arc<dyn LanguageIdentifier>, Arc<dyn Translator>)>,
}

impl App {
    pub async fn build(config: Config) -> Result<Self> {
        Self::build_on(None, config).await
    }

    /// [`App::build`] over `store` instead of the backend's own (modctl's output folder).
    pub async fn build_on(store: Option<Arc<dyn ObjectStore>>, config: Config) -> Result<Self> {
        let adapters = match &config.backend {
            Backend::Aws => aws::adapters(store, &config).await?,
            Backend::Offline { root } => Adapters {
                store: store
                    .unwrap_or_else(|| Arc::new(moderation_offline::FolderStore::new(root))),
                detector: detector::offline(&config.offline_detector)?,
                languages: None,
            },
        };
        let rules = forbidden_terms(adapters.store.as_ref(), &config).await?;
        let users = user_context(adapters.store.as_ref(), &config).await?;
        let mut app = Self::from_parts(adapters.store, adapters.detector, rules, &config);
        app.config.conversation.users = Arc::new(users);
        Ok(match adapters.languages {
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
            progress: None,
            failure: config.failure,
            config: ScreenConfig {
                thresholds: config.thresholds,
                max_object_bytes: config.max_object_bytes,
                max_concurrency: config.concurrency,
                parse: ParseOptions {
                    max_message_bytes: config.max_message_bytes,
                    text_column: config.text_column.clone(),
                },
                max_translated_chars: config.max_translated_chars,
                max_listed_below: config.max_listed_below,
                conversation: conversation::ConversationConfig {
                    threshold: config.conversation_threshold,
                    window: config.conversation_window,
                    users: Default::default(),
                },
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

    /// The detector wrapped by `wrap` (modctl counts what it scores for its progress bar).
    pub fn map_detector(
        mut self,
        wrap: impl FnOnce(Arc<dyn ToxicityDetector>) -> Arc<dyn ToxicityDetector>,
    ) -> Self {
        self.detector = wrap(self.detector);
        self
    }

    /// Report screening progress to `progress` (modctl's progress bar).
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
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
            progress: self.progress.as_deref(),
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

    /// `MAX_OBJECT_BYTES`: larger chat logs get a failed report naming the limit.
    pub fn max_object_bytes(&self) -> u64 {
        self.config.max_object_bytes
    }

    pub fn concurrency(&self) -> usize {
        self.config.max_concurrency
    }
}

/// `FORBIDDEN_TERMS_URI` read through `store` (a file path or `s3://`), or the built-in list.
async fn forbidden_terms(store: &dyn ObjectStore, config: &Config) -> Result<RuleFilter> {
    match &config.forbidden_terms_uri {
        None => RuleFilter::default_list(),
        Some(uri) => {
            let text = moderation_core::chain::delivery::read_config_uri(store, uri).await?;
            RuleFilter::parse(&text)
                .map_err(|e| Error::Config(format!("FORBIDDEN_TERMS_URI {uri}: {e}")))
        }
    }
}

/// The user context the game exports, when `USER_CONTEXT_URI` names one: read once at start,
/// a bad file stops start-up with the line named.
async fn user_context(store: &dyn ObjectStore, config: &Config) -> Result<UserContexts> {
    let Some(uri) = &config.user_context_uri else {
        return Ok(UserContexts::default());
    };
    let text = moderation_core::chain::delivery::read_config_uri(store, uri).await?;
    UserContexts::parse(uri, text.as_bytes())
        .map_err(|e| Error::Config(format!("USER_CONTEXT_URI: {e}")))
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
