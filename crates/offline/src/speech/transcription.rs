//! The offline stand-in for Amazon Transcribe with toxicity detection: speech-to-text on this
//! machine (Whisper, feature `whisper`), each segment scored by the offline toxicity detector,
//! written as a Transcribe-shaped `transcripts/<job>.json` so the chain ingests exactly what it
//! would on AWS. It finishes before `start` returns.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use moderation_core::media::transcript::{transcribe_output, SpeechSegment};
use moderation_core::ports::{
    JobStart, ObjectStore, SpeechLanguages, SpeechToText, TimedText, ToxicityDetector,
    ToxicityScore, TranscriptionJobs, TranscriptionRequest,
};
use moderation_core::Result as CoreResult;

type SpeechLoader = Box<dyn Fn() -> Result<Arc<dyn SpeechToText>, String> + Send + Sync>;

pub struct LocalTranscription {
    store: Arc<dyn ObjectStore>,
    /// Loaded on the first job, so a run without audio never pays for the model; the error is
    /// why there is no speech-to-text, and every job then fails with it.
    speech: OnceLock<Result<Arc<dyn SpeechToText>, String>>,
    load: SpeechLoader,
    detector: Arc<dyn ToxicityDetector>,
}

impl LocalTranscription {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        speech: Result<Arc<dyn SpeechToText>, String>,
        detector: Arc<dyn ToxicityDetector>,
    ) -> Self {
        LocalTranscription {
            store,
            speech: OnceLock::from(speech),
            load: Box::new(|| Err("no speech-to-text".into())),
            detector,
        }
    }

    /// Speech-to-text from the offline model in `dir`, loaded when the first job starts.
    pub fn with_model_dir(
        store: Arc<dyn ObjectStore>,
        dir: PathBuf,
        detector: Arc<dyn ToxicityDetector>,
    ) -> Self {
        LocalTranscription {
            store,
            speech: OnceLock::new(),
            load: Box::new(move || local_speech(&dir)),
            detector,
        }
    }
}

/// The offline speech-to-text model from `dir` (`WHISPER_DIR`, by default
/// `.cache/models/whisper-tiny-en`), or why there is none.
#[cfg(feature = "whisper")]
pub fn local_speech(dir: &Path) -> Result<Arc<dyn SpeechToText>, String> {
    crate::speech::whisper::Whisper::load(dir)
        .map(|w| Arc::new(w) as Arc<dyn SpeechToText>)
        .map_err(|e| format!("{e} (fetch the model with `make models`)"))
}

#[cfg(not(feature = "whisper"))]
pub fn local_speech(_dir: &Path) -> Result<Arc<dyn SpeechToText>, String> {
    Err(
        "this build has no offline speech-to-text: build with the `whisper` feature \
         (modctl has it by default; `cargo lambda watch --features whisper`)"
            .into(),
    )
}

#[async_trait]
impl TranscriptionJobs for LocalTranscription {
    fn name(&self) -> &str {
        "offline transcription"
    }

    async fn start(&self, req: &TranscriptionRequest) -> CoreResult<JobStart> {
        if let Some(why) = english_only_refusal(&req.languages) {
            return Ok(JobStart::Failed(why));
        }
        let speech = match self.speech.get_or_init(|| (self.load)()) {
            Ok(s) => s.clone(),
            Err(why) => return Ok(JobStart::Failed(why.clone())),
        };
        let Some(audio) = self
            .store
            .get_bytes(&req.media_bucket, &req.media_key)
            .await?
        else {
            return Ok(JobStart::Failed(format!(
                "the recording {} no longer exists",
                req.media_key
            )));
        };
        let timed = match recognise(speech, audio, req.media_format.clone()).await? {
            Ok(t) => t,
            // Undecodable or unsupported audio: another attempt cannot help.
            Err(e) => return Ok(JobStart::Failed(e.to_string())),
        };
        let scores = self.score(&timed).await?;
        self.write_transcript(req, &speech_segments(timed, scores))
            .await?;
        Ok(JobStart::Completed {
            transcript_key: req.output_key.clone(),
        })
    }

    async fn failure_reason(&self, _job_name: &str) -> CoreResult<Option<String>> {
        // Offline jobs fail inside `start`, which reports the reason itself.
        Ok(None)
    }
}

impl LocalTranscription {
    /// Every segment's toxicity, in batches the detector takes. Every segment keeps a score, or
    /// the job is not done.
    async fn score(&self, timed: &[TimedText]) -> CoreResult<Vec<ToxicityScore>> {
        let texts: Vec<String> = timed.iter().map(|t| t.text.clone()).collect();
        let mut scores = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.detector.limits().max_segments.max(1)) {
            scores.extend(self.detector.detect(batch).await?);
        }
        if scores.len() != texts.len() {
            return Err(moderation_core::Error::Input(format!(
                "{} returned {} scores for {} segments",
                self.detector.name(),
                scores.len(),
                texts.len()
            )));
        }
        Ok(scores)
    }

    /// The Transcribe-shaped transcript, where the request asked for it.
    async fn write_transcript(
        &self,
        req: &TranscriptionRequest,
        segments: &[SpeechSegment],
    ) -> CoreResult<()> {
        let body = serde_json::to_vec_pretty(&transcribe_output(&req.job_name, segments)).map_err(
            |source| moderation_core::Error::Document {
                key: req.output_key.clone(),
                source,
            },
        )?;
        self.store
            .put(
                &req.output_bucket,
                &req.output_key,
                body,
                "application/json",
            )
            .await
    }
}

/// Why a job for `languages` cannot run here: Whisper tiny.en hears English only, and a
/// recording it cannot understand must not be reported as clean speech.
fn english_only_refusal(languages: &SpeechLanguages) -> Option<String> {
    (!languages.allows_us_english()).then(|| {
        format!(
            "AUDIO_LANGUAGES is {languages} but the offline speech model (Whisper tiny.en) \
             transcribes English only; a person should listen, or moderate it with \
             Amazon Transcribe (MODERATION_BACKEND=aws)"
        )
    })
}

/// Speech-to-text off the async workers (decoding and the model are CPU-bound). The outer
/// error is the task's; the inner one is the recording's.
async fn recognise(
    speech: Arc<dyn SpeechToText>,
    audio: Vec<u8>,
    format: String,
) -> CoreResult<CoreResult<Vec<TimedText>>> {
    tokio::task::spawn_blocking(move || speech.transcribe(&audio, &format))
        .await
        .map_err(|e| moderation_core::Error::Input(format!("transcription task failed: {e}")))
}

/// Timed texts and their scores as Transcribe's segments: numbered from `seg-1`, times in
/// centiseconds as Transcribe reports them.
fn speech_segments(timed: Vec<TimedText>, scores: Vec<ToxicityScore>) -> Vec<SpeechSegment> {
    let centiseconds = |t: f64| (t * 100.0).round() / 100.0;
    timed
        .into_iter()
        .zip(scores)
        .enumerate()
        .map(|(n, (t, score))| SpeechSegment {
            id: format!("seg-{}", n + 1),
            text: t.text,
            start_time: centiseconds(t.start_time),
            end_time: centiseconds(t.end_time),
            toxicity: score.toxicity,
            categories: score.categories,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use moderation_core::media::transcript::{parse_transcript, TranscriptContent};

    /// Speech-to-text that "hears" the bytes of the file as UTF-8 lines, one per second.
    struct ReadsText;

    impl SpeechToText for ReadsText {
        fn name(&self) -> &str {
            "reads-text"
        }
        fn transcribe(&self, audio: &[u8], _ext: &str) -> CoreResult<Vec<TimedText>> {
            let text = std::str::from_utf8(audio)
                .map_err(|e| moderation_core::Error::Input(format!("not decodable: {e}")))?;
            Ok(text
                .lines()
                .enumerate()
                .map(|(n, l)| TimedText {
                    start_time: n as f64,
                    end_time: n as f64 + 0.9,
                    text: l.to_string(),
                })
                .collect())
        }
    }

    fn request() -> TranscriptionRequest {
        TranscriptionRequest {
            job_name: "moderation-clip-0011-aabbccdd".into(),
            media_bucket: "b".into(),
            media_key: "incoming/audio/c/clip.wav".into(),
            media_format: "wav".into(),
            languages: moderation_core::ports::SpeechLanguages::UsEnglish,
            output_bucket: "b".into(),
            output_key: "transcripts/moderation-clip-0011-aabbccdd.json".into(),
            output_kms_key_id: None,
        }
    }

    #[tokio::test]
    async fn writes_a_transcribe_shaped_transcript_with_scores_and_times() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ObjectStore> = Arc::new(crate::store::FolderStore::new(dir.path()));
        store
            .put(
                "b",
                "incoming/audio/c/clip.wav",
                b"good game everyone\nshut up you stupid idiot".to_vec(),
                "audio/wav",
            )
            .await
            .expect("put");
        let detector =
            Arc::new(crate::text::detector::OfflineDetector::embedded().expect("detector"));
        let jobs = LocalTranscription::new(store.clone(), Ok(Arc::new(ReadsText)), detector);
        let started = jobs.start(&request()).await.expect("runs");
        assert_eq!(
            started,
            JobStart::Completed {
                transcript_key: request().output_key
            }
        );
        let bytes = store
            .get_bytes("b", &request().output_key)
            .await
            .expect("read")
            .expect("written");
        let TranscriptContent::Scored(segs) = parse_transcript(&bytes).expect("parses").content
        else {
            panic!("expected scored segments");
        };
        assert_eq!(segs.len(), 2);
        assert_eq!((segs[1].start_time, segs[1].end_time), (1.0, 1.9));
        assert!(segs[1].toxicity > segs[0].toxicity, "{segs:?}");
        assert!(segs[1].categories.insult > 0.5, "{segs:?}");
    }

    #[tokio::test]
    async fn without_speech_to_text_or_audio_the_job_fails_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ObjectStore> = Arc::new(crate::store::FolderStore::new(dir.path()));
        let detector =
            Arc::new(crate::text::detector::OfflineDetector::embedded().expect("detector"));
        let none = LocalTranscription::new(store.clone(), Err("no model".into()), detector.clone());
        assert_eq!(
            none.start(&request()).await.expect("answers"),
            JobStart::Failed("no model".into())
        );
        let missing = LocalTranscription::new(store.clone(), Ok(Arc::new(ReadsText)), detector);
        let JobStart::Failed(why) = missing.start(&request()).await.expect("answers") else {
            panic!("expected a failure");
        };
        assert!(why.contains("no longer exists"), "{why}");
        store
            .put(
                "b",
                "incoming/audio/c/clip.wav",
                vec![0xff, 0xfe],
                "audio/wav",
            )
            .await
            .expect("put");
        let JobStart::Failed(why) = missing.start(&request()).await.expect("answers") else {
            panic!("expected a failure");
        };
        assert!(why.contains("not decodable"), "{why}");
    }

    #[test]
    fn segments_are_numbered_and_timed_in_centiseconds() {
        let timed = vec![
            TimedText {
                start_time: 0.004,
                end_time: 1.236,
                text: "hi".into(),
            },
            TimedText {
                start_time: 1.5,
                end_time: 2.0,
                text: "there".into(),
            },
        ];
        let score = |toxicity: f64| ToxicityScore {
            toxicity,
            ..Default::default()
        };
        let segs = speech_segments(timed, vec![score(0.1), score(0.9)]);
        assert_eq!(segs.len(), 2);
        assert_eq!(
            (segs[0].id.as_str(), segs[0].start_time, segs[0].end_time),
            ("seg-1", 0.0, 1.24)
        );
        assert_eq!((segs[1].id.as_str(), segs[1].toxicity), ("seg-2", 0.9));
    }

    #[test]
    fn only_english_jobs_run_on_the_english_model() {
        assert_eq!(english_only_refusal(&request().languages), None);
        let other = moderation_core::ports::SpeechLanguages::parse("de-DE").expect("languages");
        let why = english_only_refusal(&other).expect("refused");
        assert!(
            why.contains("English only") && why.contains("de-DE"),
            "{why}"
        );
    }
}
