//! transcribe-audio: four inputs, one function.
//! - `incoming/audio/<conversation>/<file>` created → start a Transcribe job with toxicity
//!   detection (output `transcripts/<job>.json`);
//! - `transcripts/<job>.json` created → parse it into `screened/<id>.json`;
//! - EventBridge `Transcribe Job State Change` FAILED → a failed `screened/<id>.json` with
//!   Transcribe's `FailureReason`;
//! - the `moderation.user-report` event → every recording under `recordings/<conversation>/`
//!   (audio via Transcribe, chat logs and screenshots via the text and image paths' stages),
//!   carrying the report.
//!
//! Thin glue: configuration, adapters built once, and [`handler`] over `moderation_core::stages::transcribe_audio`.

use std::path::PathBuf;
use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use moderation_core::chain::config::{Backend, Vars};
use moderation_core::chain::delivery::{handle_work, Outcome, TimeLimit};
use moderation_core::chain::event::Work;
use moderation_core::chain::keys::{self, Stage};
use moderation_core::model::SourceKind;
use moderation_core::model::Trigger;
use moderation_core::ports::{SpeechLanguages, TranscriptionJobs};
use moderation_core::stages::screen_image::ImageSettings;
use moderation_core::stages::transcribe_audio::{
    ingest_transcript, job_state_changed, start_audio_job, user_report, AudioConfig, AudioDeps,
    DEFAULT_MAX_AUDIO_BYTES,
};
use moderation_core::{Error, Result};
use serde_json::Value;

mod aws;

/// Where Whisper tiny.en is when `WHISPER_DIR` is unset (`make models` puts it there).
pub const DEFAULT_WHISPER_DIR: &str = ".cache/models/whisper-tiny-en";

#[derive(Debug, Clone)]
pub struct Config {
    /// Backend, thresholds, SDK and failure settings, and how chat logs named by a user report
    /// are screened: the text path's configuration.
    pub text: screen_text::Config,
    /// `MODERATION_BUCKET`: where job records and user-report recordings live. Events that name
    /// no object (job state changes, user reports) need it.
    pub bucket: Option<String>,
    /// `MAX_AUDIO_BYTES`: larger recordings get a failed report naming the limit.
    pub max_audio_bytes: u64,
    /// `WHISPER_DIR`: the offline speech model (builds with the `whisper` feature).
    pub whisper_dir: PathBuf,
    /// `TRANSCRIPT_KMS_KEY_ID`: KMS key Transcribe encrypts transcripts with (set it when the
    /// bucket uses SSE-KMS, or transcripts are written with S3-managed keys).
    pub transcript_kms_key_id: Option<String>,
    /// `AUDIO_LANGUAGES`: `en-US` (toxicity detection) or the languages to identify among.
    pub languages: SpeechLanguages,
    /// How screenshots attached to a user report are checked (screen-image's settings).
    pub image: ImageSettings,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars(v: &Vars) -> Result<Self> {
        let mut text = screen_text::Config::from_vars(v)?;
        // The screenshots of a user report go to Rekognition.
        text.sdk.rates.rekognition = v.instance_rate("REKOGNITION")?;
        // Only the offline backend has a speech model to find.
        let whisper_dir = match text.backend {
            Backend::Offline { .. } => v.or("WHISPER_DIR", DEFAULT_WHISPER_DIR),
            Backend::Aws => String::new(),
        };
        Ok(Config {
            text,
            bucket: v.get("MODERATION_BUCKET").filter(|b| !b.is_empty()),
            max_audio_bytes: v.count("MAX_AUDIO_BYTES", DEFAULT_MAX_AUDIO_BYTES as usize)? as u64,
            whisper_dir: PathBuf::from(whisper_dir),
            transcript_kms_key_id: v.get("TRANSCRIPT_KMS_KEY_ID").filter(|k| !k.is_empty()),
            languages: v.speech_languages()?,
            image: ImageSettings::from_vars(v)?,
        })
    }
}

pub struct App {
    text: Arc<screen_text::App>,
    /// Screenshots under `recordings/<conversation>/` named by a user report.
    image: Arc<screen_image::App>,
    jobs: Arc<dyn TranscriptionJobs>,
    audio: AudioConfig,
    bucket: Option<String>,
    failure: moderation_core::chain::delivery::FailurePolicy,
}

impl App {
    pub async fn build(config: Config) -> Result<Self> {
        let text = Arc::new(screen_text::App::build(config.text.clone()).await?);
        let jobs: Arc<dyn TranscriptionJobs> = match &config.text.backend {
            Backend::Aws => aws::transcribe_jobs(&config).await?,
            Backend::Offline { .. } => local_jobs(&text, &config),
        };
        // The screenshots of a user report: Rekognition on AWS, the offline models otherwise.
        let image = screen_image::App::build_on(text.clone(), &image_config(&config)).await?;
        Ok(Self::from_shared(text, jobs, &config).with_image(Arc::new(image)))
    }

    pub fn from_parts(
        text: screen_text::App,
        jobs: Arc<dyn TranscriptionJobs>,
        config: &Config,
    ) -> Self {
        Self::from_shared(Arc::new(text), jobs, config)
    }

    /// [`App::from_parts`] over a text path other stages share (modctl runs them all).
    pub fn from_shared(
        text: Arc<screen_text::App>,
        jobs: Arc<dyn TranscriptionJobs>,
        config: &Config,
    ) -> Self {
        // Offline image checks unless `with_image` says otherwise.
        let image_config = image_config(config);
        let (moderator, reader) = screen_image::offline_adapters(&image_config);
        let image = screen_image::App::from_parts(text.clone(), moderator, reader, &image_config);
        App {
            image: Arc::new(image),
            audio: AudioConfig {
                thresholds: text.thresholds(),
                max_audio_bytes: config.max_audio_bytes,
                languages: config.languages.clone(),
                max_concurrency: text.concurrency(),
                output_kms_key_id: config.transcript_kms_key_id.clone(),
                max_translated_chars: text.max_translated_chars(),
            },
            text,
            jobs,
            bucket: config.bucket.clone(),
            failure: config.text.failure,
        }
    }

    /// Screen a user report's screenshots with `image` (the same stage screen-image runs).
    pub fn with_image(mut self, image: Arc<screen_image::App>) -> Self {
        self.image = image;
        self
    }

    fn home_bucket(&self) -> Result<&str> {
        self.bucket.as_deref().ok_or_else(|| {
            Error::Config(
                "MODERATION_BUCKET is not set: job state changes and user reports name no bucket"
                    .into(),
            )
        })
    }

    pub async fn process(&self, work: Work) -> Result<Outcome> {
        self.process_until(work, None).await
    }

    /// [`App::process`] screening the chat logs a user report names until `time_limit` at most
    /// (the invocation's deadline less the time to write what was screened).
    pub async fn process_until(
        &self,
        work: Work,
        time_limit: Option<TimeLimit>,
    ) -> Result<Outcome> {
        let deps = AudioDeps {
            store: self.text.store().as_ref(),
            jobs: self.jobs.as_ref(),
            detector: self.text.detector().as_ref(),
            rules: self.text.rules(),
            languages: self.text.languages().as_ref(),
            translator: self.text.translator().map(|t| t.as_ref()),
        };
        match work {
            Work::Object(obj) if obj.key.starts_with(keys::TRANSCRIPTS) => {
                ingest_transcript(&obj, &deps, &self.audio).await
            }
            Work::Object(obj) => {
                let id = keys::source_id(&obj.bucket, &obj.key);
                start_audio_job(&obj, &id, Trigger::upload(), &deps, &self.audio).await
            }
            Work::TranscribeJob { job_name, status } => {
                job_state_changed(&job_name, &status, self.home_bucket()?, &deps, &self.audio).await
            }
            Work::UserReport(report) => {
                user_report(
                    &report,
                    self.home_bucket()?,
                    &deps,
                    &self.audio,
                    |obj, id, trigger| async move {
                        match keys::kind_of(&obj.key) {
                            Some(SourceKind::Image) => {
                                self.image.process_as(obj, id, trigger).await
                            }
                            // Cut short, a log is reported as far as it got: a redelivery
                            // would run the report's files in the same order again.
                            _ => {
                                let limit = time_limit.map(TimeLimit::restarted);
                                self.text.process_as_until(obj, id, trigger, limit).await
                            }
                        }
                    },
                )
                .await
            }
        }
    }
}

/// Whisper on this machine, scoring its segments with the text path's detector.
pub fn local_jobs(text: &screen_text::App, config: &Config) -> Arc<dyn TranscriptionJobs> {
    Arc::new(moderation_offline::LocalTranscription::with_model_dir(
        text.store().clone(),
        config.whisper_dir.clone(),
        text.detector().clone(),
    ))
}

fn image_config(config: &Config) -> screen_image::Config {
    screen_image::Config {
        text: config.text.clone(),
        image: config.image.clone(),
    }
}

/// The Lambda handler: S3 notifications (direct, SQS-wrapped or EventBridge), Transcribe job
/// state changes and user reports, each possibly wrapped in SQS.
pub async fn handler(event: LambdaEvent<Value>, app: &App) -> Result<Value> {
    let time_limit = moderation_core::chain::delivery::TimeLimit::before(event.context.deadline());
    handle_work(
        Stage::TranscribeAudio,
        &event.payload,
        app.text.store().as_ref(),
        app.failure,
        app.bucket.as_deref(),
        |work| app.process_until(work, time_limit),
    )
    .await
}
