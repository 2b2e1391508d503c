//! Amazon Transcribe batch jobs with toxicity detection. The output goes to the chain's bucket
//! as `transcripts/<job>.json`, whose S3 event starts the next step; a FAILED job arrives as an
//! EventBridge event and its reason is read here.

use async_trait::async_trait;
use aws_sdk_transcribe::types::{
    LanguageCode, Media, MediaFormat, ToxicityCategory, ToxicityDetectionSettings,
};
use aws_sdk_transcribe::Client;
use moderation_core::ports::{JobStart, SpeechLanguages, TranscriptionJobs, TranscriptionRequest};
use moderation_core::Result as CoreResult;

use crate::errors::classify;
use crate::Error;

const SERVICE: &str = "transcribe";

#[derive(Debug, Clone)]
pub struct TranscribeJobs {
    client: Client,
}

impl TranscribeJobs {
    pub fn new(client: Client) -> Self {
        TranscribeJobs { client }
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

fn media_format(ext: &str) -> Option<MediaFormat> {
    Some(match ext {
        "mp3" => MediaFormat::Mp3,
        "mp4" => MediaFormat::Mp4,
        "wav" => MediaFormat::Wav,
        "flac" => MediaFormat::Flac,
        "ogg" => MediaFormat::Ogg,
        "amr" => MediaFormat::Amr,
        "webm" => MediaFormat::Webm,
        "m4a" => MediaFormat::M4A,
        _ => return None,
    })
}

/// Refuse, at start-up, `AUDIO_LANGUAGES` codes Transcribe does not know: otherwise every
/// recording would fail one by one.
pub fn check_languages(languages: &SpeechLanguages) -> CoreResult<()> {
    let known = LanguageCode::values();
    let unknown: Vec<&str> = languages
        .codes()
        .into_iter()
        .filter(|c| !known.contains(c))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(moderation_core::Error::Config(format!(
            "AUDIO_LANGUAGES: {} not a language Amazon Transcribe knows",
            unknown.join(", ") + if unknown.len() == 1 { " is" } else { " are" }
        )))
    }
}

#[async_trait]
impl TranscriptionJobs for TranscribeJobs {
    fn name(&self) -> &str {
        "Amazon Transcribe"
    }

    async fn start(&self, req: &TranscriptionRequest) -> CoreResult<JobStart> {
        let Some(format) = media_format(&req.media_format) else {
            return Ok(JobStart::Failed(format!(
                "media format {:?} is not one Transcribe accepts",
                req.media_format
            )));
        };
        let job = self.client.start_transcription_job();
        // Toxicity detection exists for en-US only and cannot be combined with identification.
        let job = match &req.languages {
            SpeechLanguages::UsEnglish => job.language_code(LanguageCode::EnUs).toxicity_detection(
                ToxicityDetectionSettings::builder()
                    .toxicity_categories(ToxicityCategory::All)
                    .build()
                    .map_err(|source| Error::Build {
                        what: "ToxicityDetectionSettings",
                        source,
                    })?,
            ),
            SpeechLanguages::Fixed(code) => job.language_code(LanguageCode::from(code.as_str())),
            SpeechLanguages::Identify(codes) => {
                job.identify_language(true).set_language_options(Some(
                    codes
                        .iter()
                        .map(|c| LanguageCode::from(c.as_str()))
                        .collect(),
                ))
            }
        };
        let sent = job
            .transcription_job_name(&req.job_name)
            .media(
                Media::builder()
                    .media_file_uri(moderation_core::chain::keys::s3_uri(
                        &req.media_bucket,
                        &req.media_key,
                    ))
                    .build(),
            )
            .media_format(format)
            .output_bucket_name(&req.output_bucket)
            .output_key(&req.output_key)
            .set_output_encryption_kms_key_id(req.output_kms_key_id.clone())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(JobStart::Started),
            // A job of this name exists: the same recording version was already submitted.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                Ok(JobStart::AlreadyExists)
            }
            Err(e) => Err(classify(SERVICE, e)),
        }
    }

    async fn failure_reason(&self, job_name: &str) -> CoreResult<Option<String>> {
        let out = self
            .client
            .get_transcription_job()
            .transcription_job_name(job_name)
            .send()
            .await
            .map_err(|e| classify(SERVICE, e))?;
        let job = out.transcription_job().ok_or(Error::MissingField {
            service: SERVICE,
            field: "TranscriptionJob",
        })?;
        Ok(job.failure_reason().map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_transcribe::operation::get_transcription_job::GetTranscriptionJobOutput;
    use aws_sdk_transcribe::operation::start_transcription_job::{
        StartTranscriptionJobError, StartTranscriptionJobOutput,
    };
    use aws_sdk_transcribe::types::error::{ConflictException, LimitExceededException};
    use aws_sdk_transcribe::types::{TranscriptionJob, TranscriptionJobStatus};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn request() -> TranscriptionRequest {
        TranscriptionRequest {
            job_name: "moderation-voice-wav-0a1b2c3d4e5f-01234567".into(),
            media_bucket: "moderation-demo".into(),
            media_key: "incoming/audio/match-42/voice.wav".into(),
            media_format: "wav".into(),
            languages: SpeechLanguages::UsEnglish,
            output_bucket: "moderation-demo".into(),
            output_key: "transcripts/moderation-voice-wav-0a1b2c3d4e5f-01234567.json".into(),
            output_kms_key_id: None,
        }
    }

    #[tokio::test]
    async fn start_sends_media_language_toxicity_output_and_job_name() {
        let rule = mock!(Client::start_transcription_job)
            .match_requests(|r| {
                let t = r.toxicity_detection();
                let toxicity_all =
                    t.len() == 1 && t[0].toxicity_categories() == [ToxicityCategory::All];
                r.transcription_job_name() == Some("moderation-voice-wav-0a1b2c3d4e5f-01234567")
                    && r.media().and_then(|m| m.media_file_uri())
                        == Some("s3://moderation-demo/incoming/audio/match-42/voice.wav")
                    && r.media_format() == Some(&MediaFormat::Wav)
                    && r.language_code() == Some(&LanguageCode::EnUs)
                    && r.identify_language().is_none()
                    && r.output_bucket_name() == Some("moderation-demo")
                    && r.output_key()
                        == Some("transcripts/moderation-voice-wav-0a1b2c3d4e5f-01234567.json")
                    && r.output_encryption_kms_key_id().is_none()
                    && toxicity_all
            })
            .then_output(|| StartTranscriptionJobOutput::builder().build());
        let client = mock_client!(aws_sdk_transcribe, [&rule]);
        let jobs = TranscribeJobs::new(client);
        assert_eq!(
            jobs.start(&request()).await.expect("starts"),
            JobStart::Started
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn other_languages_are_identified_or_fixed_without_toxicity_detection() {
        let identify = mock!(Client::start_transcription_job)
            .match_requests(|r| {
                r.identify_language() == Some(true)
                    && r.language_options() == [LanguageCode::EsUs, LanguageCode::EnUs]
                    && r.language_code().is_none()
                    && r.toxicity_detection().is_empty()
            })
            .then_output(|| StartTranscriptionJobOutput::builder().build());
        let fixed = mock!(Client::start_transcription_job)
            .match_requests(|r| {
                r.language_code() == Some(&LanguageCode::PtBr)
                    && r.identify_language().is_none()
                    && r.language_options().is_empty()
                    && r.toxicity_detection().is_empty()
            })
            .then_output(|| StartTranscriptionJobOutput::builder().build());
        let client = mock_client!(
            aws_sdk_transcribe,
            RuleMode::Sequential,
            [&identify, &fixed]
        );
        let jobs = TranscribeJobs::new(client);
        for list in ["es-US,en-US", "pt-BR"] {
            let req = TranscriptionRequest {
                languages: SpeechLanguages::parse(list).expect("valid"),
                ..request()
            };
            assert_eq!(jobs.start(&req).await.expect("starts"), JobStart::Started);
        }
        assert_eq!((identify.num_calls(), fixed.num_calls()), (1, 1));
    }

    #[test]
    fn unknown_language_codes_are_refused_at_start_up() {
        let ok = SpeechLanguages::parse("es-US,en-US,de-DE").expect("valid");
        assert!(check_languages(&ok).is_ok());
        let bad = SpeechLanguages::parse("es-US,xx-YY").expect("shaped right");
        let err = check_languages(&bad)
            .expect_err("xx-YY is unknown")
            .to_string();
        assert!(err.contains("xx-YY is not"), "{err}");
    }

    #[tokio::test]
    async fn a_kms_key_encrypts_the_transcript() {
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let rule = mock!(Client::start_transcription_job)
            .match_requests(move |r| r.output_encryption_kms_key_id() == Some(key))
            .then_output(|| StartTranscriptionJobOutput::builder().build());
        let client = mock_client!(aws_sdk_transcribe, [&rule]);
        let req = TranscriptionRequest {
            output_kms_key_id: Some(key.into()),
            ..request()
        };
        assert_eq!(
            TranscribeJobs::new(client)
                .start(&req)
                .await
                .expect("starts"),
            JobStart::Started
        );
    }

    #[tokio::test]
    async fn an_existing_job_of_the_same_name_is_success() {
        let rule = mock!(Client::start_transcription_job).then_error(|| {
            StartTranscriptionJobError::ConflictException(
                ConflictException::builder()
                    .message("The requested job name already exists.")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_transcribe, [&rule]);
        let got = TranscribeJobs::new(client).start(&request()).await;
        assert_eq!(got.expect("conflict is fine"), JobStart::AlreadyExists);
    }

    #[tokio::test]
    async fn a_limit_error_is_retryable_and_an_odd_format_never_calls() {
        let rule = mock!(Client::start_transcription_job).then_error(|| {
            StartTranscriptionJobError::LimitExceededException(
                LimitExceededException::builder()
                    .message("slow down")
                    .meta(
                        aws_smithy_types::error::ErrorMetadata::builder()
                            .code("LimitExceededException")
                            .build(),
                    )
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_transcribe, RuleMode::MatchAny, [&rule]);
        let jobs = TranscribeJobs::new(client);
        let err = jobs.start(&request()).await.expect_err("throttled");
        assert!(err.is_retryable(), "{err}");
        let mut odd = request();
        odd.media_format = "aiff".into();
        let calls = rule.num_calls();
        assert!(matches!(
            jobs.start(&odd).await.expect("answers"),
            JobStart::Failed(_)
        ));
        assert_eq!(rule.num_calls(), calls);
    }

    #[tokio::test]
    async fn failure_reason_comes_from_get_transcription_job() {
        let rule = mock!(Client::get_transcription_job)
            .match_requests(|r| r.transcription_job_name() == Some("moderation-x-01234567"))
            .then_output(|| {
                GetTranscriptionJobOutput::builder()
                    .transcription_job(
                        TranscriptionJob::builder()
                            .transcription_job_name("moderation-x-01234567")
                            .transcription_job_status(TranscriptionJobStatus::Failed)
                            .failure_reason("The media format provided does not match the detected media format.")
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_transcribe, [&rule]);
        let reason = TranscribeJobs::new(client)
            .failure_reason("moderation-x-01234567")
            .await
            .expect("answers");
        assert!(reason.expect("a reason").contains("media format"));
    }
}
