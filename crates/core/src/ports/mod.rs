//! Ports: the narrow interfaces stages need from the outside world. Adapters live in
//! `moderation-aws` (SDK) and `moderation-offline` (embedded defaults); tests use fakes.

use std::io::Read;

use async_trait::async_trait;

use crate::chain::event::ObjectRef;
use crate::error::Result;
use crate::model::{CategoryScores, Evaluation, Item, Usage, Verdict};

/// Told how far a long stage has got (modctl's progress bar); the Lambdas pass none.
pub trait Progress: Send + Sync {
    /// `n` more messages of the upload screened (scored, from cache, or settled by rules).
    fn screened(&self, n: u64);
}

/// A source object opened for streaming; large bodies are spooled to disk, never held whole.
pub struct OpenedObject {
    pub reader: Box<dyn Read + Send>,
    pub size: Option<u64>,
    /// Version id or ETag of what was actually read.
    pub version: Option<String>,
}

#[async_trait]
pub trait ReadObjects: Send + Sync {
    async fn open(&self, obj: &ObjectRef) -> Result<OpenedObject>;
    /// A small document, `None` when it does not exist.
    async fn get_bytes(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>>;
}

#[async_trait]
pub trait WriteObjects: Send + Sync {
    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<()>;
    /// Write the contents of a local file, streamed from disk: a document of any size costs no
    /// more memory than a small one.
    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
    ) -> Result<()>;
}

#[async_trait]
pub trait ListObjects: Send + Sync {
    /// Keys under `prefix`, in no particular order.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>>;
}

/// A small document and the tag of the version read (S3's ETag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub body: Vec<u8>,
    pub tag: String,
}

/// Compare-and-swap on one small document, so writers that never read each other's work can
/// share one (the report index) without losing an update.
#[async_trait]
pub trait SwapObjects: Send + Sync {
    /// A small document with its version tag, `None` when it does not exist.
    async fn get_tagged(&self, bucket: &str, key: &str) -> Result<Option<Tagged>>;
    /// Write `body` only if the object is still the version tagged `expected` (`None`: only if
    /// there is none). `Ok(Some(tag))` is the new version; `Ok(None)` means another writer got
    /// there first (S3 answers 412 or 409): read again and retry.
    async fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        expected: Option<&str>,
    ) -> Result<Option<String>>;
}

/// Everything the chain needs from a bucket.
pub trait ObjectStore: ReadObjects + WriteObjects + ListObjects + SwapObjects {}
impl<T: ReadObjects + WriteObjects + ListObjects + SwapObjects> ObjectStore for T {}

/// Per-call limits of a toxicity service (Comprehend: 10 segments, 1 KB each, 10 KB total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLimits {
    pub max_segments: usize,
    pub max_segment_bytes: usize,
    pub max_request_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToxicityScore {
    pub toxicity: f64,
    pub categories: CategoryScores,
    /// Rule-only categories a detector recognised (a trained head's `scam`); they join the
    /// item's rule hits, so the gate and the policy evaluator see them.
    pub rule_hits: Vec<crate::model::RuleHit>,
}

#[async_trait]
pub trait ToxicityDetector: Send + Sync {
    fn name(&self) -> &str;
    fn limits(&self) -> SegmentLimits;
    /// Billing units one request of these segments costs (Comprehend units); 0 when free.
    fn billing_units(&self, _segments: &[crate::text::segment::Segment]) -> u64 {
        0
    }
    /// Scores for `segments`, in the same order. Callers respect [`Self::limits`].
    async fn detect(&self, segments: &[String]) -> Result<Vec<ToxicityScore>>;
}

/// Identifies the dominant language of texts (Comprehend `BatchDetectDominantLanguage`, or an
/// offline trigram model). Callers send at most [`Self::batch_size`] texts a call.
#[async_trait]
pub trait LanguageIdentifier: Send + Sync {
    fn name(&self) -> &str;
    fn batch_size(&self) -> usize;
    /// Billing units identifying one text costs (Comprehend: one per 100 characters, at least
    /// three); 0 when free.
    fn billing_units(&self, _text: &str) -> u64 {
        0
    }
    /// One answer per text, in order.
    async fn identify(&self, texts: &[String]) -> Result<Vec<crate::text::language::Answer>>;
}

/// Translates a text into English (Amazon Translate). There is none offline.
#[async_trait]
pub trait Translator: Send + Sync {
    fn name(&self) -> &str;
    /// The longest text (UTF-8 bytes) one call takes; callers split longer messages.
    fn max_bytes(&self) -> usize;
    /// The English text; `source` is the ISO 639-1 code the identifier gave.
    async fn to_english(&self, text: &str, source: &str) -> Result<String>;
}

/// A passage of the customer's policy returned by a knowledge-base search.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyPassage {
    pub text: String,
    pub uri: String,
    pub score: f64,
}

#[async_trait]
pub trait PolicyRetriever: Send + Sync {
    async fn retrieve(&self, query: &str, top_k: usize) -> Result<Vec<PolicyPassage>>;
}

/// One item to judge against retrieved passages.
pub struct JudgeRequest<'a> {
    pub item: &'a Item,
    pub passages: &'a [PolicyPassage],
    /// Categories at or above the threshold, and rule hits: why the item is being judged.
    pub signals: &'a str,
    /// The threshold screening applied, so a judge knows which categories flagged the item.
    pub threshold: f64,
    /// Earlier messages of the same conversation, oldest first: context only.
    pub context: &'a [&'a Item],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub evaluation: Evaluation,
    pub usage: Usage,
    /// Why the verdict is `needs_review`, when the judge could not be trusted.
    pub problem: Option<String>,
}

/// Decides whether an item violates the policy (an LLM behind a prompt, or offline rules).
#[async_trait]
pub trait PolicyJudge: Send + Sync {
    fn model(&self) -> &str;
    /// True for a judge that searches the knowledge base itself (RetrieveAndGenerate): it is
    /// called without passages and returns the ones it cited.
    fn retrieves(&self) -> bool {
        false
    }
    /// False for a judge no text can talk round (the offline rules evaluator); a language
    /// model's "no violation" on content addressed to it is held for a person.
    fn reads_instructions(&self) -> bool {
        true
    }
    async fn judge(&self, req: &JudgeRequest<'_>) -> Result<Judgement>;
}

/// A reply from a chat model, with token usage for the report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatReply {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A picture sent with a prompt: PNG or JPEG bytes already within the model's limits.
#[derive(Debug, Clone, Copy)]
pub struct Picture<'a> {
    /// `png` or `jpeg`.
    pub format: &'a str,
    pub bytes: &'a [u8],
}

impl ChatReply {
    /// One model call and its tokens, for the report's usage.
    pub fn usage(&self) -> crate::model::Usage {
        crate::model::Usage {
            llm_calls: 1,
            llm_input_tokens: self.input_tokens,
            llm_output_tokens: self.output_tokens,
            ..Default::default()
        }
    }
}

/// A chat LLM: instructions in `system`, untrusted content in `user`.
#[async_trait]
pub trait ChatModel: Send + Sync {
    fn model(&self) -> &str;
    async fn complete(&self, system: &str, user: &str) -> Result<ChatReply>;
    /// The same with a picture in the user turn (a multimodal model). Models that cannot
    /// see say so, and the picture waits for a person.
    async fn complete_with_image(
        &self,
        _system: &str,
        _user: &str,
        _image: Picture<'_>,
    ) -> Result<ChatReply> {
        Err(crate::Error::service(
            "chat-model",
            crate::error::ServiceErrorKind::InvalidInput,
            format!("{} does not take images", self.model()),
        ))
    }
}

/// A stretch of recognised speech with its position in the recording, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedText {
    pub start_time: f64,
    pub end_time: f64,
    pub text: String,
}

/// Offline speech-to-text over a whole recording. CPU-bound and synchronous: async callers run
/// it on a blocking thread.
pub trait SpeechToText: Send + Sync {
    fn name(&self) -> &str;
    /// Transcribe an encoded recording (`extension` is the lower-case file extension, e.g.
    /// `wav`). Segments are in time order; times are real offsets into the recording.
    fn transcribe(&self, audio: &[u8], extension: &str) -> Result<Vec<TimedText>>;
}

/// The language(s) recordings are transcribed in (`AUDIO_LANGUAGES`, Transcribe's codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeechLanguages {
    /// `en-US` with Transcribe's toxicity detection, which exists for US English only.
    UsEnglish,
    /// One other language, no toxicity detection: the transcript's sentences go through the
    /// text path (translated to English for scoring).
    Fixed(String),
    /// Transcribe identifies the recording's language among these (`IdentifyLanguage` with
    /// `LanguageOptions`); no toxicity detection, so the text path scores the sentences.
    Identify(Vec<String>),
}

impl SpeechLanguages {
    /// A comma-separated list of language codes such as `en-US` or `es-US,en-US,de-DE`.
    pub fn parse(list: &str) -> std::result::Result<Self, String> {
        let mut codes: Vec<String> = Vec::new();
        for code in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (lang, region) = code.split_once('-').unwrap_or((code, ""));
            let shaped = (2..=3).contains(&lang.len())
                && lang.bytes().all(|b| b.is_ascii_lowercase())
                && region.len() == 2
                && region.bytes().all(|b| b.is_ascii_uppercase());
            if !shaped {
                return Err(format!(
                    "{code:?} is not a Transcribe language code (language-REGION, e.g. en-US, es-US, pt-BR)"
                ));
            }
            if !codes.iter().any(|c| c == code) {
                codes.push(code.to_string());
            }
        }
        match codes.len() {
            0 => Err("no language codes (e.g. en-US, or es-US,en-US to identify)".into()),
            1 if codes[0] == "en-US" => Ok(SpeechLanguages::UsEnglish),
            1 => Ok(SpeechLanguages::Fixed(codes.remove(0))),
            _ => Ok(SpeechLanguages::Identify(codes)),
        }
    }

    pub fn codes(&self) -> Vec<&str> {
        match self {
            SpeechLanguages::UsEnglish => vec!["en-US"],
            SpeechLanguages::Fixed(c) => vec![c.as_str()],
            SpeechLanguages::Identify(cs) => cs.iter().map(String::as_str).collect(),
        }
    }

    /// Whether a transcript in US English answers the request.
    pub fn allows_us_english(&self) -> bool {
        self.codes().contains(&"en-US")
    }
}

impl std::fmt::Display for SpeechLanguages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.codes().join(","))
    }
}

/// A batch transcription job (Amazon Transcribe, or the offline stand-in that writes the same
/// output document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionRequest {
    pub job_name: String,
    /// The recording, `s3://bucket/key`.
    pub media_bucket: String,
    pub media_key: String,
    /// Lower-case file extension, one of [`crate::chain::keys::AUDIO_EXTENSIONS`].
    pub media_format: String,
    /// US English with toxicity detection, or other languages without it.
    pub languages: SpeechLanguages,
    pub output_bucket: String,
    /// `transcripts/<job>.json`.
    pub output_key: String,
    /// KMS key for the transcript; without one Transcribe writes it with S3-managed keys.
    pub output_kms_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStart {
    /// Accepted; the transcript (or a FAILED job event) follows.
    Started,
    /// A job of this name exists already: a duplicate event, nothing more to do.
    AlreadyExists,
    /// Finished at once (the offline backend): the transcript is at `transcript_key`.
    Completed { transcript_key: String },
    /// Could not transcribe, and retrying will not help; the reason goes into the report.
    Failed(String),
}

#[async_trait]
pub trait TranscriptionJobs: Send + Sync {
    fn name(&self) -> &str;
    async fn start(&self, req: &TranscriptionRequest) -> Result<JobStart>;
    /// Why a job failed (`FailureReason`), `None` when the service gives none.
    async fn failure_reason(&self, job_name: &str) -> Result<Option<String>>;
}

/// Links a moderator's browser can open to play a recording.
#[async_trait]
pub trait MediaLinks: Send + Sync {
    /// A time-limited URL for the object, or `None` when the backend has no such URLs (the
    /// report then links the file by relative path).
    async fn media_url(&self, bucket: &str, key: &str) -> Result<Option<String>>;
}

/// An image to check: the prepared pixels and bytes, and where the upload lives.
pub struct ImageInput<'a> {
    pub prepared: &'a crate::media::picture::Prepared,
    pub bucket: &'a str,
    pub key: &'a str,
    pub version: Option<&'a str>,
}

/// What a labelling model said about an image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelsFound {
    pub labels: Vec<crate::model::ImageLabel>,
    pub content_types: Vec<crate::model::ContentType>,
    /// Model and version, for the audit trail.
    pub model: String,
    /// Top categories this model does not look for.
    pub not_checked: Vec<String>,
}

/// Moderation labels for an image (Rekognition `DetectModerationLabels`, or an offline
/// classifier).
#[async_trait]
pub trait ImageModerator: Send + Sync {
    fn name(&self) -> &str;
    /// Labels at or above `min_confidence` (0–100).
    async fn labels(&self, image: &ImageInput<'_>, min_confidence: f64) -> Result<LabelsFound>;
}

/// A line of text read from an image.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    pub text: String,
    /// 0–100.
    pub confidence: f64,
    pub bounding_box: crate::model::BoundingBox,
}

/// The text read from an image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextRead {
    /// Line by line in reading order.
    pub lines: Vec<TextLine>,
    /// Why some text may be missing (Rekognition reads at most 100 words an image).
    pub incomplete: Option<String>,
}

/// Text in an image (Rekognition `DetectText`, or offline OCR).
#[async_trait]
pub trait ImageTextReader: Send + Sync {
    fn name(&self) -> &str;
    async fn lines(&self, image: &ImageInput<'_>) -> Result<TextRead>;
}
