//! modctl: moderate local files through the same stages as the Lambda chain (offline by
//! default), write reports, and print one line per source. docs/modctl.md is its contract.

mod progress;
mod shown;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use moderation_core::chain::config::Vars;
use moderation_core::chain::delivery::{read_document, run_chain, Outcome};
use moderation_core::chain::keys::{self, Stage};
use moderation_core::chain::spool::VerdictCounts;
use moderation_core::model::ObjectRef;
use moderation_core::model::{Report, Trigger};
use moderation_core::ports::{
    ChatModel, LanguageIdentifier, ObjectStore, PolicyJudge, PolicyRetriever, ToxicityDetector,
    TranscriptionJobs, Translator,
};
use moderation_core::stages::evaluate_policy::image_check::{Checklist, ImageJudge};
use moderation_core::stages::evaluate_policy::prompt::PromptTemplate;
use moderation_core::stages::evaluate_policy::{
    evaluate_object, EvaluateConfig, EvaluateDeps, LlmJudge,
};
use moderation_core::stages::screen_text::{screen_text_object, ScreenConfig, ScreenDeps};
use moderation_core::stages::transcribe_audio::{
    ingest_transcript, start_audio_job, AudioConfig, AudioDeps,
};
use moderation_core::stages::write_report::{write_report_object, ReportDeps};
use moderation_core::text::language::OfflineIdentifier;
use moderation_core::text::parse::ParseOptions;
use moderation_core::text::rules::RuleFilter;
use moderation_offline::{
    FolderStore, LocalTranscription, OfflineDetector, PolicyIndex, RulesJudge,
};
use shown::shown;

/// The bucket name local runs use; with a single-bucket folder store it only appears in URIs.
const LOCAL_BUCKET: &str = "local";
const DEFAULT_MAX_OBJECT_BYTES: usize =
    moderation_core::stages::screen_text::DEFAULT_MAX_OBJECT_BYTES as usize;

#[derive(Parser)]
#[command(
    name = "modctl",
    version,
    about = "Moderate chat logs through the moderation chain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum BackendArg {
    Offline,
    Aws,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Output folder: reports land in DIR/reports/.
    #[arg(long, default_value = "moderation-out")]
    out: PathBuf,
    /// Policy folder indexed by the offline knowledge base.
    #[arg(long, default_value = "infra/policies")]
    policy: PathBuf,
    /// offline: embedded models; aws: Comprehend + Bedrock (KNOWLEDGE_BASE_ID, MODEL_ID).
    /// Default: MODERATION_BACKEND, else offline.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Toxicity threshold in [0, 1] (default TOXICITY_THRESHOLD or 0.5).
    #[arg(long)]
    threshold: Option<f64>,
    /// CSV/JSONL column holding the message text.
    #[arg(long, value_parser = column_name)]
    text_column: Option<String>,
    /// No progress bar on stderr (there is none off a terminal anyway).
    #[arg(long, short)]
    quiet: bool,
}

/// A column name: anything but blank.
fn column_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("a column name cannot be blank".into());
    }
    Ok(s.to_string())
}

#[derive(Subcommand)]
enum Command {
    /// Moderate local files (.txt .csv .jsonl; audio .wav .flac .ogg .mp3; images .png .jpg .gif .webp).
    Moderate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Moderate the sample uploads in events/uploads/, plus voice chat spoken from the scripts
    /// in events/speech/ with espeak-ng (skipped with a note when it is not installed).
    Demo {
        #[arg(long, default_value = "events/uploads")]
        uploads: PathBuf,
        /// Voice-chat scripts: one spoken line per line of each .txt file.
        #[arg(long, default_value = "events/speech")]
        speech: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Check an image-generation prompt before it reaches an image model: prints allow, warn or
    /// block with the reasons, and the negative prompt to pass along. Exit status 0 allow,
    /// 3 warn, 4 block.
    CheckPrompt {
        prompt: String,
        /// Negative-prompt list, one term per line (default NEGATIVE_PROMPTS, else
        /// infra/negative-prompts.txt).
        #[arg(long)]
        negative_prompts: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Core(#[from] moderation_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not moderated: {what}")]
    TooLarge { path: String, what: String },
}

struct Chain {
    store: Arc<FolderStore>,
    /// The progress bar a terminal shows while a source is moderated.
    progress: Arc<progress::Progress>,
    detector: Arc<dyn ToxicityDetector>,
    languages: Arc<dyn LanguageIdentifier>,
    /// Translate on the AWS backend; none offline.
    translator: Option<Arc<dyn Translator>>,
    /// Speech-to-text on this machine (Whisper), whichever backend scores the text.
    jobs: Arc<dyn TranscriptionJobs>,
    audio: AudioConfig,
    /// Image labels and text in images (offline: no classifier yet, Tesseract OCR).
    image_labels: Arc<dyn moderation_core::ports::ImageModerator>,
    image_text: Arc<dyn moderation_core::ports::ImageTextReader>,
    image: moderation_core::stages::screen_image::ImageConfig,
    rules: RuleFilter,
    retriever: Arc<dyn PolicyRetriever>,
    judge: Arc<dyn PolicyJudge>,
    /// The multimodal checklist for pictures: Bedrock on AWS, `LLM_ENDPOINT` offline.
    images: Option<Arc<ImageJudge>>,
    screen: ScreenConfig,
    evaluate: EvaluateConfig,
}

/// `IMAGE_CHECKLIST_URI` (a file here), or the committed checklist.
fn checklist(vars: &Vars) -> Result<Checklist, CliError> {
    match vars.get("IMAGE_CHECKLIST_URI") {
        None => Ok(Checklist::default_checklist()),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(Checklist::parse(&text)?)
        }
    }
}

impl Chain {
    async fn build(run: &RunArgs) -> Result<Self, CliError> {
        let vars = Vars::from_env();
        let mut thresholds = vars.thresholds()?;
        if let Some(t) = run.threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(CliError::Usage(format!(
                    "--threshold {t} must be between 0 and 1"
                )));
            }
            thresholds = moderation_core::chain::config::Thresholds::uniform(t);
        }
        let backend = match (run.backend, vars.get("MODERATION_BACKEND").as_deref()) {
            (Some(b), _) => b,
            (None, None | Some("offline")) => BackendArg::Offline,
            (None, Some("aws")) => BackendArg::Aws,
            (None, Some(other)) => {
                return Err(CliError::Usage(format!(
                    "MODERATION_BACKEND={other:?}: expected `offline` or `aws`"
                )))
            }
        };
        let mut languages: Arc<dyn LanguageIdentifier> = Arc::new(OfflineIdentifier);
        let mut translator: Option<Arc<dyn Translator>> = None;
        let image_config = moderation_core::stages::screen_image::ImageSettings::from_vars(&vars)?;
        // On AWS Rekognition replaces it below; offline, open_nsfw when built in.
        let mut image_labels: Arc<dyn moderation_core::ports::ImageModerator> = match backend {
            BackendArg::Offline => {
                moderation_offline::offline_classifier(image_config.offline_model.as_deref())
            }
            BackendArg::Aws => Arc::new(moderation_offline::NoImageClassifier::default()),
        };
        let mut image_text: Arc<dyn moderation_core::ports::ImageTextReader> =
            Arc::new(moderation_offline::TesseractText::default());
        let mut vision: Option<Box<dyn ChatModel>> = None;
        let (detector, retriever, judge): (
            Arc<dyn ToxicityDetector>,
            Arc<dyn PolicyRetriever>,
            Arc<dyn PolicyJudge>,
        ) = match backend {
            BackendArg::Offline => {
                // LLM_ENDPOINT puts a local OpenAI-compatible LLM in place of the rules evaluator.
                let judge: Arc<dyn PolicyJudge> = match vars.get("LLM_ENDPOINT") {
                    Some(endpoint) => {
                        let local = moderation_offline::openai::OpenAiChatModel::new(
                            &endpoint,
                            &vars.or("LLM_MODEL", "local"),
                            vars.get("LLM_API_KEY"),
                            vars.sdk_settings()?.attempt_timeout,
                        )
                        .map_err(moderation_core::Error::from)?;
                        vision = Some(Box::new(local.clone()));
                        let template = match vars.get("PROMPT_TEMPLATE_URI") {
                            None => PromptTemplate::default_template(),
                            Some(path) => PromptTemplate::parse(
                                &std::fs::read_to_string(&path).map_err(|source| CliError::Io {
                                    path: path.clone(),
                                    source,
                                })?,
                            )?,
                        };
                        Arc::new(LlmJudge::with_template(local, template))
                    }
                    None => Arc::new(RulesJudge),
                };
                (
                    offline_detector(&vars)?,
                    policy_search(&run.policy, &vars)?,
                    judge,
                )
            }
            BackendArg::Aws => {
                let kb = vars.required("KNOWLEDGE_BASE_ID")?;
                let model = vars.or("MODEL_ID", moderation_aws::DEFAULT_MODEL_ID);
                let settings = vars.sdk_settings_paced(&[
                    "COMPREHEND",
                    "REKOGNITION",
                    "CONVERSE",
                    "RETRIEVE",
                ])?;
                let rates = settings.rates;
                let sdk = moderation_aws::load_sdk_config(&settings).await;
                languages = Arc::new(moderation_aws::ComprehendLanguages::from_sdk_config(&sdk));
                let converse = moderation_aws::Rates::pacer(rates.converse, "converse");
                vision = Some(Box::new(
                    moderation_aws::ConverseModel::from_sdk_config(
                        &sdk,
                        &vars.or("IMAGE_MODEL_ID", &model),
                    )
                    .with_pacer(converse.clone()),
                ));
                let rekognition = Arc::new(
                    moderation_aws::RekognitionImages::from_sdk_config(&sdk).with_pacer(
                        moderation_aws::Rates::pacer(rates.rekognition, "rekognition"),
                    ),
                );
                image_labels = rekognition.clone();
                image_text = rekognition;
                translator = Some(Arc::new(
                    moderation_aws::TranslateToEnglish::from_sdk_config(&sdk),
                ));
                (
                    Arc::new(
                        moderation_aws::ComprehendDetector::from_sdk_config(&sdk).with_pacer(
                            moderation_aws::Rates::pacer(rates.comprehend, "comprehend"),
                        ),
                    ),
                    Arc::new(
                        moderation_aws::KnowledgeBaseRetriever::from_sdk_config(&sdk, &kb)
                            .with_pacer(moderation_aws::Rates::pacer(rates.retrieve, "retrieve")),
                    ),
                    Arc::new(LlmJudge::new(
                        moderation_aws::ConverseModel::from_sdk_config(&sdk, &model)
                            .with_pacer(converse),
                    )),
                )
            }
        };
        // Unset: on for AWS, off offline (a text-only local server would not see the picture).
        let wanted = match vars.get("IMAGE_CHECK").as_deref() {
            None => matches!(backend, BackendArg::Aws),
            Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(CliError::Usage(format!(
                    "IMAGE_CHECK={other}: expected on or off"
                )))
            }
        };
        let images =
            match (wanted, vision) {
                (true, Some(model)) => Some(Arc::new(ImageJudge::new(model, checklist(&vars)?))),
                (true, None) => return Err(CliError::Usage(
                    "IMAGE_CHECK=on offline needs LLM_ENDPOINT: a multimodal OpenAI-compatible \
                     server"
                        .into(),
                )),
                (false, _) => None,
            };
        let progress = progress::Progress::new(run.quiet);
        let detector: Arc<dyn ToxicityDetector> = Arc::new(progress::CountingDetector {
            inner: detector,
            progress: progress.clone(),
        });
        let judge: Arc<dyn PolicyJudge> = Arc::new(progress::CountingJudge {
            inner: judge,
            progress: progress.clone(),
        });
        let store = Arc::new(FolderStore::single_bucket(&run.out));
        let jobs = Arc::new(LocalTranscription::with_model_dir(
            store.clone(),
            PathBuf::from(vars.or("WHISPER_DIR", ".cache/models/whisper-tiny-en")),
            detector.clone(),
        ));
        let concurrency = vars.count("COMPREHEND_CONCURRENCY", 4)?;
        Ok(Chain {
            store,
            progress,
            jobs,
            audio: AudioConfig {
                thresholds,
                max_concurrency: concurrency,
                languages: vars.speech_languages()?,
                ..AudioConfig::default()
            },
            detector,
            languages,
            translator,
            rules: RuleFilter::default_list()?,
            retriever,
            judge,
            images,
            screen: ScreenConfig {
                thresholds,
                max_object_bytes: vars.count("MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES)? as u64,
                max_concurrency: concurrency,
                parse: ParseOptions {
                    text_column: run.text_column.clone(),
                    ..ParseOptions::default()
                },
                max_translated_chars: vars.count(
                    "MAX_TRANSLATED_CHARS_PER_OBJECT",
                    moderation_core::stages::screen_text::DEFAULT_MAX_TRANSLATED_CHARS as usize,
                )? as u64,
                max_listed_below: vars.count(
                    "MAX_LISTED_BELOW_THRESHOLD",
                    moderation_core::stages::screen_text::DEFAULT_MAX_LISTED_BELOW as usize,
                )? as u64,
            },
            image_labels,
            image_text,
            image: moderation_core::stages::screen_image::ImageConfig {
                labels: image_config.labels,
                min_confidence: image_config.min_confidence,
                text_threshold: thresholds.for_kind(moderation_core::model::SourceKind::Text),
                max_image_bytes: image_config.max_image_bytes,
                max_concurrency: concurrency,
                max_translated_chars: vars.count(
                    "MAX_TRANSLATED_CHARS_PER_OBJECT",
                    moderation_core::stages::screen_text::DEFAULT_MAX_TRANSLATED_CHARS as usize,
                )? as u64,
            },
            evaluate: EvaluateConfig {
                top_k: vars.count("RETRIEVE_TOP_K", 3)?,
                max_concurrency: vars.count("LLM_CONCURRENCY", 4)?,
                context_messages: vars.parsed("CONTEXT_MESSAGES", 3usize)?,
                max_calls: vars.count("MAX_LLM_CALLS_PER_OBJECT", 5000)?,
            },
        })
    }

    /// The text path over `store`, for chat logs and the text in images.
    fn screen_deps<'a>(&'a self, store: &'a dyn ObjectStore) -> ScreenDeps<'a> {
        ScreenDeps {
            store,
            detector: self.detector.as_ref(),
            rules: &self.rules,
            languages: self.languages.as_ref(),
            translator: self.translator.as_deref(),
            known_language: None,
            progress: Some(self.progress.as_ref()),
            time_limit: None,
        }
    }

    async fn dispatch(&self, stage: Stage, obj: ObjectRef) -> moderation_core::Result<Outcome> {
        let store: &dyn ObjectStore = self.store.as_ref();
        match stage {
            Stage::ScreenImage => {
                let deps = moderation_core::stages::screen_image::ImageDeps {
                    moderator: self.image_labels.as_ref(),
                    text: self.image_text.as_ref(),
                    screen: self.screen_deps(store),
                };
                let id = keys::source_id(&obj.bucket, &obj.key);
                moderation_core::stages::screen_image::screen_image_object(
                    &obj,
                    &id,
                    Trigger::upload(),
                    &deps,
                    &self.image,
                )
                .await
            }
            Stage::ScreenText => {
                let deps = self.screen_deps(store);
                screen_text_object(&obj, Trigger::upload(), &deps, &self.screen).await
            }
            Stage::EvaluatePolicy => {
                let deps = EvaluateDeps {
                    store,
                    retriever: self.retriever.as_ref(),
                    judge: self.judge.as_ref(),
                    images: self.images.as_deref(),
                };
                evaluate_object(&obj, &deps, &self.evaluate).await
            }
            Stage::WriteReport => {
                let deps = ReportDeps {
                    store,
                    media: None,
                    max_concurrency: 8,
                };
                write_report_object(&obj, &deps).await
            }
            Stage::TranscribeAudio => {
                let deps = AudioDeps {
                    store,
                    jobs: self.jobs.as_ref(),
                    detector: self.detector.as_ref(),
                    rules: &self.rules,
                    languages: self.languages.as_ref(),
                    translator: self.translator.as_deref(),
                };
                if obj.key.starts_with(keys::TRANSCRIPTS) {
                    ingest_transcript(&obj, &deps, &self.audio).await
                } else {
                    let id = keys::source_id(&obj.bucket, &obj.key);
                    start_audio_job(&obj, &id, Trigger::upload(), &deps, &self.audio).await
                }
            }
        }
    }

    /// Why a file of `size` bytes uploaded under `key` is over its kind's limit, if it is.
    fn over_limit(&self, key: &str, size: u64) -> Option<String> {
        use moderation_core::model::SourceKind;
        let (limit, var) = match keys::kind_of(key)? {
            SourceKind::Text => (self.screen.max_object_bytes, "MAX_OBJECT_BYTES"),
            SourceKind::Image => (self.image.max_image_bytes, "MAX_IMAGE_BYTES"),
            SourceKind::Audio => (self.audio.max_audio_bytes, "MAX_AUDIO_BYTES"),
        };
        (size > limit).then(|| format!("{size} bytes, over the {limit} byte limit ({var})"))
    }

    /// Upload one file under `key` and run the chain until the report is written.
    async fn moderate(&self, path: &Path, key: String) -> Result<String, CliError> {
        let line = self.moderate_file(path, key).await;
        self.progress.end();
        line
    }

    async fn moderate_file(&self, path: &Path, key: String) -> Result<String, CliError> {
        let io = |source| CliError::Io {
            path: shown(path),
            source,
        };
        use moderation_core::ports::WriteObjects;
        let extension = key
            .rsplit_once('.')
            .map_or("", |(_, e)| e)
            .to_ascii_lowercase();
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a file")));
        }
        // Checked before the copy: an oversized (or sparse) file never reaches the output.
        if let Some(over) = self.over_limit(&key, meta.len()) {
            return Err(CliError::TooLarge {
                path: shown(path),
                what: over,
            });
        }
        let expected = self
            .progress
            .shown()
            .then(|| progress::expected_messages(file, &extension))
            .flatten();
        self.progress.begin(&shown(path), expected);
        // Copied, not read: a log of a million lines never sits in memory.
        self.store
            .put_file(LOCAL_BUCKET, &key, path, "application/octet-stream")
            .await?;
        let written = run_chain(LOCAL_BUCKET, vec![key.clone()], |stage, obj| {
            self.dispatch(stage, obj)
        })
        .await?;
        let id = keys::source_id(LOCAL_BUCKET, &key);
        if let Some(failed) = written.iter().find(|k| k.starts_with(keys::FAILED)) {
            return Ok(format!(
                "{}: failed, see {}",
                shown(path),
                shown(&self.store.root().join(failed))
            ));
        }
        // The summary and the items' verdicts, counted as the report streams past.
        let report: Option<Report<VerdictCounts>> = read_document(
            self.store.as_ref(),
            LOCAL_BUCKET,
            &keys::report_json_key(&id),
        )
        .await?;
        let Some(r) = report else {
            return Ok(format!("{}: no report was written", shown(path)));
        };
        let s = r.summary;
        let below = r.items.below_threshold + r.unlisted.map_or(0, |u| u.below_threshold);
        let clean = s.items - s.violations - s.needs_review - below;
        Ok(format!(
            "{}: {} items, {} violations, {} needs review, {} no violation, {} below threshold ({:?}) → {}",
            shown(path),
            s.items,
            s.violations,
            s.needs_review,
            clean,
            below,
            r.status,
            shown(&self.store.root().join(keys::report_html_key(&id)))
        ))
    }
}

/// The offline toxicity detector: lexicons + linear model, raised by the all-MiniLM-L6-v2
/// trained head (`OFFLINE_DETECTOR=embedding`, the default with feature `semantic`), or the
/// lexicons alone (`lexicon`, what the Lambda binaries run offline).
fn offline_detector(vars: &Vars) -> Result<Arc<dyn ToxicityDetector>, CliError> {
    let lexicon = || -> Result<Arc<dyn ToxicityDetector>, CliError> {
        Ok(Arc::new(
            OfflineDetector::embedded().map_err(moderation_core::Error::from)?,
        ))
    };
    match vars.get("OFFLINE_DETECTOR").as_deref() {
        Some("lexicon") => lexicon(),
        None | Some("embedding") => embedding_detector(vars),
        Some(other) => Err(CliError::Usage(format!(
            "OFFLINE_DETECTOR={other:?}: expected `embedding` or `lexicon`"
        ))),
    }
}

#[cfg(feature = "semantic")]
fn embedding_detector(vars: &Vars) -> Result<Arc<dyn ToxicityDetector>, CliError> {
    let dir = vars.or("MINILM_DIR", ".cache/models/all-minilm-l6-v2");
    let detector = moderation_offline::embedding::EmbeddingDetector::load(Path::new(&dir))
        .map_err(|e| {
            CliError::Usage(format!(
                "the offline detector needs all-MiniLM-L6-v2 in {dir} (run `make models`, or set \
                 OFFLINE_DETECTOR=lexicon for the lexicons alone): {e}"
            ))
        })?;
    Ok(Arc::new(detector))
}

#[cfg(not(feature = "semantic"))]
fn embedding_detector(vars: &Vars) -> Result<Arc<dyn ToxicityDetector>, CliError> {
    match vars.get("OFFLINE_DETECTOR") {
        // Built without the model: the lexicons are the default here.
        None => Ok(Arc::new(
            OfflineDetector::embedded().map_err(moderation_core::Error::from)?,
        )),
        Some(_) => Err(CliError::Usage(
            "OFFLINE_DETECTOR=embedding needs modctl built with `--features semantic`".into(),
        )),
    }
}

/// The offline knowledge base: BM25 over the policy sections, or with `POLICY_SEARCH=hybrid`
/// BM25 fused with all-MiniLM-L6-v2 embeddings (feature `semantic`, model in `MINILM_DIR`).
fn policy_search(policy: &Path, vars: &Vars) -> Result<Arc<dyn PolicyRetriever>, CliError> {
    // A policy folder that cannot be read is the caller's to fix, as before: a usage error.
    let index = PolicyIndex::load_dir(policy)
        .map_err(|e| CliError::Usage(format!("--policy {}: {e}", shown(policy))))?;
    match vars.get("POLICY_SEARCH").as_deref() {
        None | Some("bm25") => Ok(Arc::new(index)),
        Some("hybrid") => hybrid_search(index, vars),
        Some(other) => Err(CliError::Usage(format!(
            "POLICY_SEARCH={other:?}: expected `bm25` or `hybrid`"
        ))),
    }
}

#[cfg(feature = "semantic")]
fn hybrid_search(index: PolicyIndex, vars: &Vars) -> Result<Arc<dyn PolicyRetriever>, CliError> {
    use moderation_offline::semantic::{HybridIndex, MiniLm};
    let dir = vars.or("MINILM_DIR", ".cache/models/all-minilm-l6-v2");
    let model = MiniLm::load(Path::new(&dir)).map_err(moderation_core::Error::from)?;
    let hybrid = HybridIndex::from_sections(index.sections().to_vec(), model)
        .map_err(moderation_core::Error::from)?;
    Ok(Arc::new(hybrid))
}

#[cfg(not(feature = "semantic"))]
fn hybrid_search(_: PolicyIndex, _: &Vars) -> Result<Arc<dyn PolicyRetriever>, CliError> {
    Err(CliError::Usage(
        "POLICY_SEARCH=hybrid needs modctl built with `--features semantic` (make demo-semantic)"
            .into(),
    ))
}

/// The key each file is uploaded under: `incoming/text/<name>` or
/// `incoming/audio/local/<name>`, made unique when two arguments share a file name (so their
/// reports do not overwrite each other).
fn upload_keys(paths: &[PathBuf]) -> Result<Vec<String>, CliError> {
    let mut keys: Vec<String> = Vec::with_capacity(paths.len());
    for p in paths {
        if !p.is_file() {
            return Err(CliError::Usage(format!(
                "{} is not a readable file",
                shown(p)
            )));
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let folder = match keys::kind_of(&name) {
            Some(moderation_core::model::SourceKind::Text) => keys::INCOMING_TEXT.to_string(),
            Some(moderation_core::model::SourceKind::Audio) => {
                format!("{}local/", keys::INCOMING_AUDIO)
            }
            Some(moderation_core::model::SourceKind::Image) => {
                format!("{}local/", keys::INCOMING_IMAGE)
            }
            None => {
                return Err(CliError::Usage(format!(
                "{}: unsupported file type (expected .txt, .csv, .jsonl, audio: {}, or images: {})",
                shown(p),
                keys::AUDIO_EXTENSIONS.join(", "),
                moderation_core::media::picture::IMAGE_EXTENSIONS.join(", ")
            )))
            }
        };
        let mut key = format!("{folder}{name}");
        let mut n = 2;
        while keys.contains(&key) {
            let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
            key = format!("{folder}{stem}-{n}.{ext}");
            n += 1;
        }
        keys.push(key);
    }
    Ok(keys)
}

/// The moderatable files directly in `dir`, sorted.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| CliError::Io {
            path: shown(dir),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| keys::kind_of(&p.to_string_lossy()).is_some())
        .collect();
    paths.sort();
    Ok(paths)
}

/// Speak each `<name>.txt` script in `scripts` with espeak-ng into `<out>/<name>.wav` (one
/// line per utterance, `#` comments); none when espeak-ng is missing.
fn speak_scripts(scripts: &Path, out: &Path) -> Result<Vec<PathBuf>, CliError> {
    let io = |path: &Path| {
        let path = shown(path);
        move |source| CliError::Io { path, source }
    };
    let Ok(entries) = std::fs::read_dir(scripts) else {
        return Ok(Vec::new());
    };
    let mut scripts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    scripts.sort();
    if scripts.is_empty() {
        return Ok(Vec::new());
    }
    if !moderation_offline::speech_samples::espeak_available() {
        eprintln!(
            "modctl: skipping the voice-chat samples in {}: espeak-ng is not installed (make demo installs it)",
            shown(scripts[0].parent().unwrap_or(Path::new(".")))
        );
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut wavs = Vec::new();
    for script in scripts {
        let text = std::fs::read_to_string(&script).map_err(io(&script))?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let clip = moderation_offline::speech_samples::speak_lines(&lines, 0.8)
            .map_err(moderation_core::Error::from)?;
        let stem = script.file_stem().unwrap_or_default().to_string_lossy();
        let wav = out.join(format!("{stem}.wav"));
        std::fs::write(&wav, &clip.wav).map_err(io(&wav))?;
        wavs.push(wav);
    }
    Ok(wavs)
}

/// `modctl check-prompt`: the decision line, the negative prompt, and the exit status.
async fn check_prompt(
    prompt: &str,
    negative_prompts: Option<PathBuf>,
    run: &RunArgs,
) -> Result<u8, CliError> {
    use moderation_core::stages::check::{self, Decision};
    let path = negative_prompts
        .or_else(|| Vars::from_env().get("NEGATIVE_PROMPTS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("infra/negative-prompts.txt"));
    let list = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
        path: shown(&path),
        source,
    })?;
    let negative = check::parse_negative_prompts(&list)
        .map_err(|e| CliError::Usage(format!("{}: {e}", shown(&path))))?;
    let chain = Chain::build(run).await?;
    let warn_at = chain
        .screen
        .thresholds
        .for_kind(moderation_core::model::SourceKind::Text);
    let store: &dyn ObjectStore = chain.store.as_ref();
    let found = check::check_prompt(
        prompt,
        &negative,
        &chain.screen_deps(store),
        warn_at,
        check::DEFAULT_BLOCK_AT.max(warn_at),
    )
    .await;
    let mut out = Lines::new(std::io::stdout());
    out.line(&format!(
        "{}{}",
        found.decision.as_str(),
        if found.reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", found.reasons.join("; "))
        }
    ));
    out.line(&format!("negative prompt: {}", negative.join(", ")));
    Ok(match found.decision {
        Decision::Allow => 0,
        Decision::Warn => 3,
        Decision::Block => 4,
    })
}

async fn run(cli: Cli) -> Result<u8, CliError> {
    let (paths, run) = match cli.command {
        Command::CheckPrompt {
            prompt,
            negative_prompts,
            run,
        } => return check_prompt(&prompt, negative_prompts, &run).await,
        Command::Moderate { paths, run } => (paths, run),
        Command::Demo {
            uploads,
            speech,
            run,
        } => {
            let mut paths = files_in(&uploads)?;
            paths.extend(speak_scripts(&speech, &run.out.join("demo-audio"))?);
            (paths, run)
        }
    };
    // Check every argument before moderating anything, so a typo does not leave half a run.
    let keys = upload_keys(&paths)?;
    let chain = Chain::build(&run).await?;
    let mut out = Lines::new(std::io::stdout());
    // One file's failure is reported on its line and the rest still run.
    let mut failed = Vec::new();
    for (p, key) in paths.iter().zip(keys) {
        match chain.moderate(p, key).await {
            Ok(line) => out.line(&line),
            Err(e) => {
                let e = e.to_string();
                let line = if e.starts_with(&shown(p)) {
                    e
                } else {
                    format!("{}: {e}", shown(p))
                };
                out.line(&line);
                failed.push(shown(p));
            }
        }
    }
    out.line(&format!(
        "index: {}",
        shown(&run.out.join(keys::report_index_key()))
    ));
    if failed.is_empty() {
        return Ok(0);
    }
    eprintln!(
        "modctl: {} of {} files failed: {}",
        failed.len(),
        paths.len(),
        failed.join(", ")
    );
    Ok(1)
}

/// Standard output that may close early (`modctl moderate … | head -1`): a closed pipe ends
/// the printing, not the work, so every report is still written.
struct Lines<W: Write> {
    out: W,
    closed: bool,
}

impl<W: Write> Lines<W> {
    fn new(out: W) -> Self {
        Lines { out, closed: false }
    }

    fn line(&mut self, text: &str) {
        if self.closed {
            return;
        }
        if let Err(e) = writeln!(self.out, "{text}").and_then(|()| self.out.flush()) {
            self.closed = true;
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("modctl: standard output failed ({e}); reports are still written");
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Human-readable warnings only; the functions log JSON.
    tracing_subscriber_init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(
            e @ (CliError::Usage(_)
            | CliError::Core(
                moderation_core::Error::MissingVar { .. }
                | moderation_core::Error::InvalidVar { .. }
                | moderation_core::Error::Config(_),
            )),
        ) => {
            eprintln!("modctl: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("modctl: {e}");
            ExitCode::from(1)
        }
    }
}

fn tracing_subscriber_init() {
    moderation_core::chain::telemetry::init_stderr_logs("warn");
}
