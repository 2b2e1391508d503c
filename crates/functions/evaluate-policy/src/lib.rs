//! evaluate-policy: `screened/<id>.json` → knowledge-base retrieval + judge for items over the
//! threshold → `evaluated/<id>.json`. Thin glue over [`moderation_core::stages::evaluate_policy`].

use std::path::PathBuf;
use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use moderation_core::chain::config::{Backend, Vars};
use moderation_core::chain::delivery::read_config_uri;
use moderation_core::chain::delivery::{handle_payload, Outcome};
use moderation_core::chain::keys::Stage;
use moderation_core::model::ObjectRef;
use moderation_core::ports::{ObjectStore, PolicyJudge, PolicyRetriever};
use moderation_core::stages::evaluate_policy::image_check::{Checklist, ImageJudge};
use moderation_core::stages::evaluate_policy::prompt::PromptTemplate;
use moderation_core::stages::evaluate_policy::{evaluate_object, EvaluateConfig, EvaluateDeps};
use moderation_core::{Error, Result};
use serde_json::Value;

mod aws;
mod offline;

pub use offline::PolicySearch;

/// The Bedrock model that judges when `MODEL_ID` is unset.
#[cfg(feature = "aws")]
const DEFAULT_MODEL_ID: &str = moderation_aws::DEFAULT_MODEL_ID;
/// Only the AWS backend reads a model id; a build without it has none to default to.
#[cfg(not(feature = "aws"))]
const DEFAULT_MODEL_ID: &str = "";

#[derive(Debug, Clone)]
pub struct LocalLlm {
    pub endpoint: String,
    pub model: String,
    pub api_key: Option<String>,
}

/// How the AWS backend checks policy (`POLICY_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyMode {
    /// Bedrock Agent Runtime `Retrieve`, then Bedrock Runtime `Converse` (default).
    RetrieveAndConverse,
    /// One Bedrock Agent Runtime `RetrieveAndGenerate` call.
    RetrieveAndGenerate,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub policy_mode: PolicyMode,
    /// Offline only: `LLM_ENDPOINT` (OpenAI-compatible, e.g. `http://127.0.0.1:8080/v1`),
    /// `LLM_MODEL`, `LLM_API_KEY`. Without it the rules evaluator judges.
    pub local_llm: Option<LocalLlm>,
    pub backend: Backend,
    /// `KNOWLEDGE_BASE_ID`: required on AWS.
    pub knowledge_base_id: Option<String>,
    pub model_id: String,
    pub top_k: usize,
    pub concurrency: usize,
    /// `POLICY_DIR`: the Markdown policy the offline knowledge base indexes.
    pub policy_dir: PathBuf,
    /// `POLICY_SEARCH` (offline only): how the offline knowledge base searches it.
    pub policy_search: PolicySearch,
    /// `PROMPT_TEMPLATE_URI`: a file path or `s3://bucket/key`; the committed template when unset.
    pub prompt_template_uri: Option<String>,
    /// `CONTEXT_MESSAGES`: earlier messages of the conversation sent as context.
    pub context_messages: usize,
    /// `MAX_LLM_CALLS_PER_OBJECT`: policy checks per upload before the rest wait for a person.
    pub max_llm_calls: usize,
    /// `IMAGE_CHECK`: `on` asks a multimodal model about pictures (Bedrock on AWS; offline the
    /// `LLM_ENDPOINT` server, which must then take images); `off` judges their labels as text;
    /// unset: on for AWS, off offline (a text-only local server would not see the picture).
    pub image_check: Option<bool>,
    /// `IMAGE_MODEL_ID`: the Bedrock model for pictures (default `MODEL_ID`; it must see images).
    pub image_model_id: String,
    /// `IMAGE_CHECKLIST_URI`: a file path or `s3://bucket/key`; the committed checklist when unset.
    pub image_checklist_uri: Option<String>,
    pub sdk: moderation_core::chain::config::SdkSettings,
    pub failure: moderation_core::chain::delivery::FailurePolicy,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(v: &Vars) -> Result<Self> {
        let backend = v.backend()?;
        let knowledge_base_id = match backend {
            Backend::Aws => Some(v.required("KNOWLEDGE_BASE_ID")?),
            Backend::Offline { .. } => v.get("KNOWLEDGE_BASE_ID"),
        };
        let policy_mode = match v.or("POLICY_MODE", "retrieve_and_converse").as_str() {
            "retrieve_and_converse" => PolicyMode::RetrieveAndConverse,
            "retrieve_and_generate" => PolicyMode::RetrieveAndGenerate,
            other => {
                return Err(Error::InvalidVar {
                    var: "POLICY_MODE".into(),
                    value: other.to_string(),
                    reason: "expected retrieve_and_converse or retrieve_and_generate".into(),
                })
            }
        };
        let local_llm = match backend {
            Backend::Offline { .. } => v.get("LLM_ENDPOINT").map(|endpoint| LocalLlm {
                endpoint,
                model: v.or("LLM_MODEL", "local"),
                api_key: v.get("LLM_API_KEY"),
            }),
            Backend::Aws => None,
        };
        let model_id = v.or("MODEL_ID", DEFAULT_MODEL_ID);
        let image_check = match v.get("IMAGE_CHECK").as_deref() {
            None => None,
            Some("on") => Some(true),
            Some("off") => Some(false),
            Some(other) => {
                return Err(Error::InvalidVar {
                    var: "IMAGE_CHECK".into(),
                    value: other.to_string(),
                    reason: "expected on or off".into(),
                })
            }
        };
        // Read only offline, so a deployed function reads no variable its template lacks.
        let policy_search = match backend {
            Backend::Offline { .. } => PolicySearch::from_vars(v)?,
            Backend::Aws => PolicySearch::Bm25,
        };
        Ok(Config {
            image_check,
            image_model_id: v.or("IMAGE_MODEL_ID", &model_id),
            image_checklist_uri: v.get("IMAGE_CHECKLIST_URI"),
            local_llm,
            policy_mode,
            backend,
            knowledge_base_id,
            model_id,
            top_k: v.count("RETRIEVE_TOP_K", 3)?,
            concurrency: v.count("LLM_CONCURRENCY", 4)?,
            policy_dir: PathBuf::from(v.or("POLICY_DIR", "infra/policies")),
            policy_search,
            prompt_template_uri: v.get("PROMPT_TEMPLATE_URI"),
            context_messages: v.parsed("CONTEXT_MESSAGES", 3usize)?,
            max_llm_calls: v.count("MAX_LLM_CALLS_PER_OBJECT", 5000)?,
            sdk: v.sdk_settings_paced(&["CONVERSE", "RETRIEVE"])?,
            failure: v.failure_policy()?,
        })
    }
}

pub struct App {
    store: Arc<dyn ObjectStore>,
    retriever: Arc<dyn PolicyRetriever>,
    judge: Arc<dyn PolicyJudge>,
    images: Option<Arc<ImageJudge>>,
    config: EvaluateConfig,
    failure: moderation_core::chain::delivery::FailurePolicy,
}

impl App {
    pub async fn build(config: Config) -> Result<Self> {
        Self::build_on(None, config).await
    }

    /// [`App::build`] over `store` instead of the backend's own (modctl's output folder).
    pub async fn build_on(store: Option<Arc<dyn ObjectStore>>, config: Config) -> Result<Self> {
        match &config.backend {
            Backend::Aws => aws::build(store, &config).await,
            Backend::Offline { root } => {
                let store =
                    store.unwrap_or_else(|| Arc::new(moderation_offline::FolderStore::new(root)));
                offline::build(store, &config).await
            }
        }
    }

    /// The judge wrapped by `wrap` (modctl counts what it judges for its progress bar).
    pub fn map_judge(
        mut self,
        wrap: impl FnOnce(Arc<dyn PolicyJudge>) -> Arc<dyn PolicyJudge>,
    ) -> Self {
        self.judge = wrap(self.judge);
        self
    }

    /// The model of the multimodal picture check, when there is one.
    pub fn image_model(&self) -> Option<&str> {
        self.images.as_deref().map(ImageJudge::model)
    }

    /// The multimodal check for pictures (none: their labels are judged as text).
    pub fn with_image_judge(mut self, images: Option<Arc<ImageJudge>>) -> Self {
        self.images = images;
        self
    }

    pub fn from_parts(
        store: Arc<dyn ObjectStore>,
        retriever: Arc<dyn PolicyRetriever>,
        judge: Arc<dyn PolicyJudge>,
        config: &Config,
    ) -> Self {
        App {
            store,
            retriever,
            judge,
            images: None,
            failure: config.failure,
            config: EvaluateConfig {
                top_k: config.top_k,
                max_concurrency: config.concurrency,
                context_messages: config.context_messages,
                max_calls: config.max_llm_calls,
            },
        }
    }

    pub async fn process(&self, obj: ObjectRef) -> Result<Outcome> {
        evaluate_object(&obj, &self.deps(), &self.config).await
    }

    /// The stage's ports (the real-time check judges with the same ones).
    /// The bucket the stage reads (the review loop works over the same one).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn deps(&self) -> EvaluateDeps<'_> {
        EvaluateDeps {
            store: self.store.as_ref(),
            retriever: self.retriever.as_ref(),
            judge: self.judge.as_ref(),
            images: self.images.as_deref(),
        }
    }

    pub fn config(&self) -> &EvaluateConfig {
        &self.config
    }
}

/// The prompt template and the picture checklist, read through `store`: a broken one stops
/// start-up with its placeholders or line named, on either backend, before any item is judged.
async fn documents(
    store: &dyn ObjectStore,
    config: &Config,
) -> Result<(PromptTemplate, Checklist)> {
    let template = match &config.prompt_template_uri {
        None => PromptTemplate::default_template(),
        Some(uri) => PromptTemplate::parse(&read_config_uri(store, uri).await?)
            .map_err(|e| Error::Config(format!("PROMPT_TEMPLATE_URI {uri}: {e}")))?,
    };
    let checklist = match &config.image_checklist_uri {
        None => Checklist::default_checklist(),
        Some(uri) => Checklist::parse(&read_config_uri(store, uri).await?)
            .map_err(|e| Error::Config(format!("IMAGE_CHECKLIST_URI {uri}: {e}")))?,
    };
    Ok((template, checklist))
}

pub async fn handler(event: LambdaEvent<Value>, app: &App) -> Result<Value> {
    handle_payload(
        Stage::EvaluatePolicy,
        &event.payload,
        app.store.as_ref(),
        app.failure,
        |obj| app.process(obj),
    )
    .await
}
