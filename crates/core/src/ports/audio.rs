//! Speech: offline speech-to-text, transcription jobs, and links to play a recording.

use async_trait::async_trait;

use crate::error::Result;

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
    /// Lower-case file extension, one of the audio extensions the chain routes.
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

    /// How long a link made now keeps working, when links end by themselves; `None` when
    /// they do not.
    fn lifetime(&self) -> Option<LinkLifetime> {
        None
    }
}

/// The life of a time-limited link, so the report can say when it stops working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLifetime {
    /// The expiry the link asks for.
    pub at_most: std::time::Duration,
    /// The link carries its signer's credentials: if those are temporary, it dies with them.
    pub ends_with_session: bool,
}
