//! check-api: the real-time check API (`docs/api.md`) — the shared axum router over the chain's
//! own stages. The Lambda function serves it through `lambda_http` (Function URL, IAM auth);
//! `modctl serve` serves the same [`Service`] on a socket. Thin glue: configuration, the
//! stages' apps, and [`Service`] as the router's [`Checker`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moderation_core::chain::config::{Backend, Vars};
use moderation_core::chain::micro_batch::MicroBatch;
use moderation_core::model::SourceKind;
use moderation_core::ports::{ImageGenerator, ToxicityDetector};
use moderation_core::stages::check::generate::{generate, GenerateDeps, Generation, ModelFailed};
use moderation_core::stages::check::image::{
    check_image, ImageCheck, ImageCheckDeps, ImageRefusal,
};
use moderation_core::stages::check::text::{check_texts, CheckDeps, TextCheck, TextRequest};
use moderation_core::stages::check::{self, PromptCheck};
use moderation_core::{Error, Result};
use moderation_http::{Checker, Settings};

mod generator;

pub use generator::{build as generator, GenerationConfig, NO_IMAGE_MODEL};

/// The committed negative-prompt list, built in: a Lambda package holds only the binary.
pub const DEFAULT_NEGATIVE_PROMPTS: &str = include_str!("../../../../infra/negative-prompts.txt");

#[derive(Debug, Clone)]
pub struct Config {
    /// The picture path and, inside it, the text path.
    pub image: screen_image::Config,
    pub evaluate: evaluate_policy::Config,
    pub http: Settings,
    /// `CHECK_POLICY_BUDGET_MS` (default 2,000): how long the policy check may take.
    pub policy_budget: Duration,
    /// `CHECK_BATCH_WINDOW_MS` (default 2; offline only): how long a detector pass waits for
    /// other requests to share it. `0`: each request's pass starts at once (still shared with
    /// what is already queued).
    pub batch_window: Duration,
    /// `NEGATIVE_PROMPTS`: a file; unset, the built-in list.
    pub negative_prompts: Option<PathBuf>,
    pub generation: GenerationConfig,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(v: &Vars) -> Result<Self> {
        Ok(Config {
            image: screen_image::Config::from_vars(v)?,
            evaluate: evaluate_policy::Config::from_vars(v)?,
            http: Settings::from_vars(v)?,
            policy_budget: policy_budget(v)?,
            batch_window: batch_window(v)?,
            negative_prompts: v.get("NEGATIVE_PROMPTS").map(PathBuf::from),
            generation: GenerationConfig::from_vars(v)?,
        })
    }
}

/// `CHECK_POLICY_BUDGET_MS`, default 2,000.
pub fn policy_budget(v: &Vars) -> Result<Duration> {
    Ok(Duration::from_millis(
        v.count("CHECK_POLICY_BUDGET_MS", 2_000)? as u64,
    ))
}

/// `CHECK_BATCH_WINDOW_MS`, default 2.
pub fn batch_window(v: &Vars) -> Result<Duration> {
    Ok(Duration::from_millis(
        v.count("CHECK_BATCH_WINDOW_MS", 2)? as u64
    ))
}

/// `detector` behind a micro-batcher: concurrent checks share forward passes, as many passes at
/// once as there are cores. Needs a tokio runtime.
pub fn batched(detector: Arc<dyn ToxicityDetector>, window: Duration) -> Arc<dyn ToxicityDetector> {
    let passes = std::thread::available_parallelism().map_or(1, usize::from);
    Arc::new(MicroBatch::new(detector, window, passes, 1024))
}

/// The negative-prompt list: `path`, else the built-in one.
pub fn negative_prompts(path: Option<&std::path::Path>) -> Result<Vec<String>> {
    let (text, shown) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| Error::Config(format!("NEGATIVE_PROMPTS {}: {e}", p.display())))?,
            p.display().to_string(),
        ),
        None => (
            DEFAULT_NEGATIVE_PROMPTS.to_string(),
            "the built-in list".into(),
        ),
    };
    check::parse_negative_prompts(&text).map_err(|e| Error::Config(format!("{shown}: {e}")))
}

/// The chain's stages as the API's [`Checker`].
pub struct Service {
    image: Arc<screen_image::App>,
    evaluate: Arc<evaluate_policy::App>,
    negative: Vec<String>,
    policy_budget: Duration,
    /// The image model, or why there is none (the `/v1/generate` answer names it).
    generator: std::result::Result<Arc<dyn ImageGenerator>, String>,
}

impl Service {
    /// Over stages already built (modctl's chain shares its own).
    pub fn new(
        image: Arc<screen_image::App>,
        evaluate: Arc<evaluate_policy::App>,
        negative: Vec<String>,
        policy_budget: Duration,
        generator: std::result::Result<Arc<dyn ImageGenerator>, String>,
    ) -> Self {
        Service {
            image,
            evaluate,
            negative,
            policy_budget,
            generator,
        }
    }

    /// Everything from `config` (the Lambda function).
    pub async fn build(config: &Config) -> Result<Self> {
        let mut text = screen_text::App::build(config.image.text.clone()).await?;
        // A Lambda environment serves one request at a time: nothing to batch there.
        if matches!(config.image.text.backend, Backend::Offline { .. }) {
            text = text.map_detector(|d| batched(d, config.batch_window));
        }
        let image = Arc::new(screen_image::App::build_on(Arc::new(text), &config.image).await?);
        let evaluate = Arc::new(evaluate_policy::App::build(config.evaluate.clone()).await?);
        let generator = generator::build(&config.generation, &config.image.text).await?;
        Ok(Service::new(
            image,
            evaluate,
            negative_prompts(config.negative_prompts.as_deref())?,
            config.policy_budget,
            generator,
        ))
    }

    fn text(&self) -> &screen_text::App {
        self.image.text()
    }

    /// Warn from the text gate, block from 0.8 (or the gate, if higher).
    fn prompt_gates(&self) -> (f64, f64) {
        let warn_at = self.text().thresholds().for_kind(SourceKind::Text);
        (warn_at, check::DEFAULT_BLOCK_AT.max(warn_at))
    }

    fn image_deps(&self) -> ImageCheckDeps<'_> {
        ImageCheckDeps {
            image: self.image.deps(),
            image_config: self.image.config(),
            evaluate: self.evaluate.deps(),
            evaluate_config: self.evaluate.config(),
            policy_budget: self.policy_budget,
        }
    }
}

#[async_trait]
impl Checker for Service {
    async fn check_texts(&self, requests: &[TextRequest]) -> Vec<TextCheck> {
        let text = self.text();
        let deps = CheckDeps {
            screen: text.screen_deps(),
            evaluate: self.evaluate.deps(),
            evaluate_config: self.evaluate.config(),
            threshold: text.thresholds().for_kind(SourceKind::Text),
            max_concurrency: text.concurrency(),
            policy_budget: self.policy_budget,
        };
        check_texts(requests, &deps).await
    }

    async fn check_prompt(&self, prompt: &str) -> PromptCheck {
        let (warn_at, block_at) = self.prompt_gates();
        let screen = self.text().screen_deps();
        check::check_prompt(prompt, &self.negative, &screen, warn_at, block_at).await
    }

    fn negative_prompts(&self) -> &[String] {
        &self.negative
    }

    async fn check_image(&self, bytes: Vec<u8>) -> std::result::Result<ImageCheck, ImageRefusal> {
        check_image(bytes, &self.image_deps()).await
    }

    async fn generate(
        &self,
        prompt: &str,
        negative_prompt: &str,
    ) -> std::result::Result<Generation, ModelFailed> {
        let generator = self
            .generator
            .as_ref()
            .map_err(|why| ModelFailed(why.clone()))?;
        let (warn_at, block_at) = self.prompt_gates();
        let deps = GenerateDeps {
            image: self.image_deps(),
            generator: generator.as_ref(),
            negative: &self.negative,
            warn_at,
            block_at,
        };
        generate(prompt, negative_prompt, &deps).await
    }
}

/// The router over `service`, as the Lambda function serves it. Authentication is IAM's (the
/// Function URL's `AWS_IAM`), so no bearer token here.
pub fn router(service: Service, settings: Settings) -> moderation_http::Router {
    moderation_http::router(Arc::new(service), settings, None)
}
