//! The chain modctl runs in-process: each stage built by its function crate's own
//! `Config::from_vars` and `App` builder, over one folder bucket, one detector and one judge
//! counted for the progress bar. Only what a flag sets differs from a deployed function.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moderation_core::chain::config::{Thresholds, Vars};
use moderation_core::chain::delivery::{read_document, run_chain, Outcome};
use moderation_core::chain::event::Work;
use moderation_core::chain::keys::{self, Stage};
use moderation_core::chain::spool::VerdictCounts;
use moderation_core::model::{ObjectRef, Report, SourceKind};
use moderation_core::ports::{ObjectStore, PolicyJudge, ToxicityDetector, WriteObjects};
use moderation_offline::FolderStore;

use crate::cli::{BackendArg, CliError, RunArgs};
use crate::progress::{self, CountingDetector, CountingJudge, Progress};
use crate::shown::shown;

/// The bucket name local runs use; with a single-bucket folder store it only appears in URIs.
const LOCAL_BUCKET: &str = "local";

pub struct Chain {
    store: Arc<FolderStore>,
    /// The progress bar a terminal shows while a source is moderated.
    progress: Arc<Progress>,
    text: Arc<screen_text::App>,
    image: Arc<screen_image::App>,
    audio: transcribe_audio::App,
    evaluate: Arc<evaluate_policy::App>,
    report: write_report::App,
    limits: Limits,
}

/// Each kind's upload limit, checked before a file is copied in.
struct Limits {
    text: u64,
    image: u64,
    audio: u64,
}

/// The environment, with what the flags set over it and modctl's own defaults under it.
pub fn settings(run: &RunArgs) -> Vars<'static> {
    let mut flags = vec![
        (
            "MODERATION_OFFLINE_ROOT".to_string(),
            run.out.display().to_string(),
        ),
        ("POLICY_DIR".to_string(), run.policy.display().to_string()),
    ];
    if let Some(backend) = run.backend {
        let name = match backend {
            BackendArg::Offline => "offline",
            BackendArg::Aws => "aws",
        };
        flags.push(("MODERATION_BACKEND".into(), name.into()));
    }
    // On this machine the offline backend is the default; with the model built in, the
    // embedding detector is too (the Lambda binaries default to the lexicons).
    let mut defaults = vec![("MODERATION_BACKEND".to_string(), "offline".to_string())];
    if cfg!(feature = "semantic") {
        defaults.push(("OFFLINE_DETECTOR".into(), "embedding".into()));
    }
    Vars::from_env().overriding(flags).defaulting(defaults)
}

/// `--threshold`, which must be a score.
fn threshold(run: &RunArgs) -> Result<Option<Thresholds>, CliError> {
    match run.threshold {
        Some(t) if !(0.0..=1.0).contains(&t) => Err(CliError::Usage(format!(
            "--threshold {t} must be between 0 and 1"
        ))),
        t => Ok(t.map(Thresholds::uniform)),
    }
}

impl Chain {
    pub async fn build(run: &RunArgs) -> Result<Self, CliError> {
        Self::build_batching(run, None).await
    }

    /// [`Chain::build`] with the detector behind a micro-batcher of `window` (`modctl serve`:
    /// concurrent requests share forward passes).
    pub async fn build_batching(run: &RunArgs, window: Option<Duration>) -> Result<Self, CliError> {
        let vars = settings(run);
        let thresholds = threshold(run)?;
        let store = Arc::new(FolderStore::single_bucket(&run.out));
        let shared: Arc<dyn ObjectStore> = store.clone();
        let progress = Progress::new(run.quiet);
        let mut text = build_text(&vars, run, thresholds, &shared, &progress).await?;
        if let Some(window) = window {
            text = text.map_detector(|d| check_api::batched(d, window));
        }
        let text = Arc::new(text);
        let image_config = screen_image::Config::from_vars(&vars)?;
        let image = Arc::new(screen_image::App::build_on(text.clone(), &image_config).await?);
        let audio_config = audio_config(&vars)?;
        // Speech-to-text runs here whichever backend scores the text: the file is local.
        let jobs = transcribe_audio::local_jobs(&text, &audio_config);
        let audio = transcribe_audio::App::from_shared(text.clone(), jobs, &audio_config)
            .with_image(image.clone());
        let counted = progress.clone();
        let evaluate = Arc::new(
            evaluate_policy::App::build_on(
                Some(shared.clone()),
                evaluate_policy::Config::from_vars(&vars)?,
            )
            .await?
            .map_judge(|inner| -> Arc<dyn PolicyJudge> {
                Arc::new(CountingJudge {
                    inner,
                    progress: counted,
                })
            }),
        );
        // The folder's own relative links, not presigned ones, whatever the backend.
        let report =
            write_report::App::from_parts(shared, &write_report::Config::from_vars(&vars)?);
        Ok(Chain {
            limits: Limits {
                text: text.max_object_bytes(),
                image: image_config.image.max_image_bytes,
                audio: audio_config.max_audio_bytes,
            },
            store,
            progress,
            text,
            image,
            audio,
            evaluate,
            report,
        })
    }

    /// The picture path (`modctl serve` checks pictures with it).
    pub fn image(&self) -> &Arc<screen_image::App> {
        &self.image
    }

    /// The output folder as a bucket, and the bucket name its URIs use (the review loop
    /// works over it).
    pub fn bucket(&self) -> (Arc<dyn ObjectStore>, &'static str) {
        (self.store.clone(), LOCAL_BUCKET)
    }

    /// The policy check (`modctl serve` judges with it).
    pub fn evaluate(&self) -> &Arc<evaluate_policy::App> {
        &self.evaluate
    }

    async fn dispatch(&self, stage: Stage, obj: ObjectRef) -> moderation_core::Result<Outcome> {
        match stage {
            Stage::ScreenImage => self.image.process(obj).await,
            Stage::ScreenText => self.text.process(obj).await,
            Stage::EvaluatePolicy => self.evaluate.process(obj).await,
            Stage::WriteReport => self.report.process(obj).await,
            Stage::TranscribeAudio => self.audio.process(Work::Object(obj)).await,
            // The local policy search reads the policy folder at each check: no index to sync.
            Stage::SyncPolicies => Ok(Outcome::Ignored(format!(
                "{}: the offline policy search has no index to re-sync",
                obj.key
            ))),
        }
    }

    /// Why a file of `size` bytes uploaded under `key` is over its kind's limit, if it is.
    fn over_limit(&self, key: &str, size: u64) -> Option<String> {
        let (limit, var) = match keys::kind_of(key)? {
            SourceKind::Text => (self.limits.text, "MAX_OBJECT_BYTES"),
            SourceKind::Image => (self.limits.image, "MAX_IMAGE_BYTES"),
            SourceKind::Audio => (self.limits.audio, "MAX_AUDIO_BYTES"),
        };
        (size > limit).then(|| format!("{size} bytes, over the {limit} byte limit ({var})"))
    }

    /// Upload one file under `key` and run the chain until the report is written.
    pub async fn moderate(&self, path: &Path, key: String) -> Result<String, CliError> {
        let line = self.moderate_file(path, key).await;
        self.progress.end();
        line
    }

    async fn moderate_file(&self, path: &Path, key: String) -> Result<String, CliError> {
        self.upload(path, &key).await?;
        let written = run_chain(LOCAL_BUCKET, vec![key.clone()], |stage, obj| {
            self.dispatch(stage, obj)
        })
        .await?;
        if let Some(failed) = written.iter().find(|k| k.starts_with(keys::FAILED)) {
            return Ok(format!(
                "{}: failed, see {}",
                shown(path),
                shown(&self.store.root().join(failed))
            ));
        }
        self.summary_line(path, &keys::source_id(LOCAL_BUCKET, &key))
            .await
    }

    /// Copy `path` in under `key` after checking its size, and start its progress bar.
    async fn upload(&self, path: &Path, key: &str) -> Result<(), CliError> {
        let io = |source| CliError::Io {
            path: shown(path),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a file")));
        }
        // Checked before the copy: an oversized (or sparse) file never reaches the output.
        if let Some(over) = self.over_limit(key, meta.len()) {
            return Err(CliError::TooLarge {
                path: shown(path),
                what: over,
            });
        }
        let extension = key
            .rsplit_once('.')
            .map_or("", |(_, e)| e)
            .to_ascii_lowercase();
        let expected = self
            .progress
            .shown()
            .then(|| progress::expected_messages(file, &extension))
            .flatten();
        self.progress.begin(&shown(path), expected);
        // Copied, not read: a log of a million lines never sits in memory.
        self.store
            .put_file(LOCAL_BUCKET, key, path, "application/octet-stream")
            .await?;
        Ok(())
    }

    /// The report's summary and the items' verdicts, counted as the report streams past.
    async fn summary_line(&self, path: &Path, id: &str) -> Result<String, CliError> {
        let report: Option<Report<VerdictCounts>> = read_document(
            self.store.as_ref(),
            LOCAL_BUCKET,
            &keys::report_json_key(id),
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
            shown(&self.store.root().join(keys::report_html_key(id)))
        ))
    }
}

/// The text path: screen-text's own build over the output folder, its detector counted and
/// its progress drawn.
async fn build_text(
    vars: &Vars<'_>,
    run: &RunArgs,
    thresholds: Option<Thresholds>,
    store: &Arc<dyn ObjectStore>,
    progress: &Arc<Progress>,
) -> Result<screen_text::App, CliError> {
    let mut config = screen_text::Config::from_vars(vars)?;
    config.text_column = run.text_column.clone();
    if let Some(t) = thresholds {
        config.thresholds = t;
    }
    let counted = progress.clone();
    Ok(screen_text::App::build_on(Some(store.clone()), config)
        .await?
        .map_detector(|inner| -> Arc<dyn ToxicityDetector> {
            Arc::new(CountingDetector {
                inner,
                progress: counted,
            })
        })
        .with_progress(progress.clone()))
}

/// transcribe-audio's settings; on AWS, the Whisper model is still this machine's.
fn audio_config(vars: &Vars<'_>) -> Result<transcribe_audio::Config, CliError> {
    let mut config = transcribe_audio::Config::from_vars(vars)?;
    if config.whisper_dir.as_os_str().is_empty() {
        config.whisper_dir =
            PathBuf::from(vars.or("WHISPER_DIR", transcribe_audio::DEFAULT_WHISPER_DIR));
    }
    Ok(config)
}
