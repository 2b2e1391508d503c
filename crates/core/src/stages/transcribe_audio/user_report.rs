//! A user report: every recording of the conversation it names, moderated with the report as
//! the trigger, each with its own report.

use tracing::{info, warn};

use crate::chain::delivery::Outcome;
use crate::chain::keys;
use crate::error::Result;
use crate::model::{ObjectRef, SourceKind, StageDocument, Trigger, TriggerKind, UserReport};
use crate::stages::screen_text::write_screened;

use super::{audio_doc, failed, start_audio_job, AudioConfig, AudioDeps};

/// Why a conversation id cannot name a folder, if it cannot.
fn conversation_problem(id: &str) -> Option<String> {
    if id.trim().is_empty() {
        return Some("conversation_id is empty".into());
    }
    if id.len() > 512 {
        return Some(format!(
            "conversation_id is {} bytes long (at most 512)",
            id.len()
        ));
    }
    if id.contains('/') || id == "." || id == ".." || id.chars().any(char::is_control) {
        return Some(format!(
            "conversation_id {id:?} cannot name a folder under {}",
            keys::RECORDINGS
        ));
    }
    None
}

/// A user report: moderate every recording under `recordings/<conversation>/` with the report
/// as the trigger (audio through transcription jobs; chat logs and screenshots through
/// `screen_other`, the text and image paths' stages). Each recording gets its own report per
/// user report. A conversation with no recordings gets a failed report that says so.
pub async fn user_report<F, Fut>(
    report: &UserReport,
    bucket: &str,
    deps: &AudioDeps<'_>,
    cfg: &AudioConfig,
    screen_other: F,
) -> Result<Outcome>
where
    F: Fn(ObjectRef, String, Trigger) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let trigger = Trigger {
        kind: TriggerKind::UserReport,
        user_report: Some(report.clone()),
    };
    let folder = keys::conversation_folder(&report.conversation_id);
    let refused = |reason: String| {
        let id = keys::user_report_id(bucket, folder.trim_end_matches('/'), &report.report_id);
        let uri = keys::s3_uri(bucket, &folder);
        failed(
            audio_doc(&id, uri, None, None, trigger.clone(), cfg),
            reason,
        )
    };
    if let Some(problem) = conversation_problem(&report.conversation_id) {
        let reason = format!("user report {}: {problem}", report.report_id);
        return write_screened(deps.store, bucket, &refused(reason)).await;
    }
    let recordings = recordings_under(deps, bucket, &folder).await?;
    if recordings.is_empty() {
        let reason = no_recordings(report, &keys::s3_uri(bucket, &folder));
        return write_screened(deps.store, bucket, &refused(reason)).await;
    }
    info!(recordings = recordings.len(), report_id = %report.report_id, "user report");
    let mut written = Vec::new();
    let mut retry: Option<crate::Error> = None;
    for key in recordings {
        let recording = Recording::new(bucket, key, report);
        let result = recording.screen(&trigger, deps, cfg, &screen_other).await;
        match recording.settle(result, &trigger, deps, cfg).await? {
            Settled::Done(outcome) => written.extend(outcome.written().iter().cloned()),
            Settled::Retry(e) => {
                retry.get_or_insert(e);
            }
        }
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(Outcome::Wrote(written)),
    }
}

/// The files under `folder`, in name order (folder markers left out).
async fn recordings_under(deps: &AudioDeps<'_>, bucket: &str, folder: &str) -> Result<Vec<String>> {
    let mut recordings: Vec<String> = deps
        .store
        .list(bucket, folder)
        .await?
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .collect();
    recordings.sort();
    Ok(recordings)
}

fn no_recordings(report: &UserReport, folder_uri: &str) -> String {
    format!(
        "user report {}: no recordings under {folder_uri} — unknown conversation {:?}, or nothing was recorded",
        report.report_id, report.conversation_id
    )
}

fn unsupported_file(key: &str) -> String {
    format!(
        "{key}: unsupported file type; recordings are audio ({}), chat logs ({}) or \
         screenshots ({})",
        keys::AUDIO_EXTENSIONS.join(", "),
        keys::TEXT_EXTENSIONS.join(", "),
        crate::media::picture::IMAGE_EXTENSIONS.join(", ")
    )
}

/// What became of one recording: its outcome, or a failure the report's redelivery retries.
enum Settled {
    Done(Outcome),
    Retry(crate::Error),
}

/// One file of the reported conversation.
struct Recording {
    key: String,
    obj: ObjectRef,
    /// The id of its report for this user report.
    id: String,
    kind: Option<SourceKind>,
}

impl Recording {
    fn new(bucket: &str, key: String, report: &UserReport) -> Self {
        Recording {
            obj: ObjectRef::new(bucket, key.clone()),
            id: keys::user_report_id(bucket, &key, &report.report_id),
            kind: keys::kind_of(&key),
            key,
        }
    }

    /// Moderate it by its kind: audio through a transcription job, chat logs and screenshots
    /// through their own paths; any other file gets a report saying it is not supported.
    async fn screen<F, Fut>(
        &self,
        trigger: &Trigger,
        deps: &AudioDeps<'_>,
        cfg: &AudioConfig,
        screen_other: &F,
    ) -> Result<Outcome>
    where
        F: Fn(ObjectRef, String, Trigger) -> Fut,
        Fut: std::future::Future<Output = Result<Outcome>>,
    {
        match self.kind {
            Some(SourceKind::Audio) => {
                start_audio_job(&self.obj, &self.id, trigger.clone(), deps, cfg).await
            }
            Some(SourceKind::Text | SourceKind::Image) => {
                screen_other(self.obj.clone(), self.id.clone(), trigger.clone()).await
            }
            None => {
                let doc = self.failed_doc(trigger, cfg, None, unsupported_file(&self.key));
                write_screened(deps.store, &self.obj.bucket, &doc).await
            }
        }
    }

    /// What a failure of this recording leaves: a report saying so, or a retry.
    async fn settle(
        &self,
        result: Result<Outcome>,
        trigger: &Trigger,
        deps: &AudioDeps<'_>,
        cfg: &AudioConfig,
    ) -> Result<Settled> {
        let doc = match result {
            Ok(o) => return Ok(Settled::Done(o)),
            // The report's earlier files used the invocation's time. Redelivering would run
            // them first again and run out again, so this log gets a report that says so.
            Err(crate::Error::OutOfTime(why)) => {
                crate::chain::telemetry::cut_short(
                    &self.key,
                    "chat log of a user report not screened",
                    None,
                );
                let reason = format!(
                    "{}: not screened ({why}); upload this log under incoming/text/ to \
                     screen it on its own",
                    self.key
                );
                self.failed_doc(trigger, cfg, Some(SourceKind::Text), reason)
            }
            // The others still run; the message is redelivered for this one (started jobs
            // answer ConflictException, so only chat logs are screened again).
            Err(e) if e.is_retryable() => {
                warn!(key = %self.key, error = %e, "recording of a user report failed; will retry");
                return Ok(Settled::Retry(e));
            }
            // One recording that cannot be moderated must not hide the others: its own report
            // says why.
            Err(e) => {
                let reason = format!("{}: {e}", self.key);
                self.failed_doc(trigger, cfg, Some(SourceKind::Audio), reason)
            }
        };
        write_screened(deps.store, &self.obj.bucket, &doc)
            .await
            .map(Settled::Done)
    }

    /// Its failed report; a file of no known kind is reported as `unknown_kind`.
    fn failed_doc(
        &self,
        trigger: &Trigger,
        cfg: &AudioConfig,
        unknown_kind: Option<SourceKind>,
        reason: String,
    ) -> StageDocument {
        let mut doc = audio_doc(&self.id, self.obj.uri(), None, None, trigger.clone(), cfg);
        if let Some(fallback) = unknown_kind {
            doc.source.kind = self.kind.unwrap_or(fallback);
        }
        failed(doc, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_id_must_name_one_folder() {
        assert_eq!(conversation_problem("match-42"), None);
        assert!(conversation_problem(" ").is_some());
        assert!(conversation_problem("a/b").is_some());
        assert!(conversation_problem("..").is_some());
        assert!(conversation_problem(&"x".repeat(513)).is_some());
    }

    #[test]
    fn a_failed_recording_is_reported_under_its_kind_or_the_fallback() {
        let report = UserReport {
            report_id: "r-1".into(),
            reporter_id: "u-1".into(),
            reported_user_id: "u-2".into(),
            conversation_id: "c".into(),
            reason: "abuse".into(),
            reported_at: "2024-01-01T00:00:00Z".into(),
        };
        let cfg = AudioConfig::default();
        let trigger = Trigger::upload();
        let log = Recording::new("b", "recordings/c/chat.txt".into(), &report);
        let doc = log.failed_doc(&trigger, &cfg, Some(SourceKind::Audio), "why".into());
        assert_eq!(doc.source.kind, SourceKind::Text);
        assert_eq!(doc.errors[0].message, "why");
        let odd = Recording::new("b", "recordings/c/notes.xyz".into(), &report);
        let doc = odd.failed_doc(&trigger, &cfg, Some(SourceKind::Text), "why".into());
        assert_eq!(doc.source.kind, SourceKind::Text);
        let doc = odd.failed_doc(&trigger, &cfg, None, unsupported_file(&odd.key));
        assert_eq!(doc.source.kind, SourceKind::Audio);
        assert!(doc.errors[0]
            .message
            .starts_with("recordings/c/notes.xyz: unsupported file type"));
    }
}
