//! transcribe-audio's four inputs, driven with the `events/` fixtures that `cargo lambda invoke`
//! uses, through the rest of the chain to the report. Speech-to-text is scripted here (what
//! was "said" and when), so the assertions are about the chain; tests/tests/whisper.rs runs the
//! real offline model on generated speech.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use moderation_core::chain::delivery::run_chain;
use moderation_core::chain::keys;
use moderation_core::model::{Report, SourceKind, Status, TriggerKind, Verdict};
use moderation_core::ports::{
    JobStart, SpeechToText, TimedText, TranscriptionJobs, TranscriptionRequest,
};
use moderation_tests::{
    audio_app_with_jobs, chromium_or_skip, dispatch, dump_dom, event, file_url, fixture,
    keys_under, offline_audio_app, offline_audio_app_in, read_doc, Apps, FIXTURE_BUCKET,
};
use serde_json::{json, Value};

/// Says the same lines whatever the recording holds (but refuses an empty file).
struct Scripted(Vec<(f64, f64, &'static str)>);

impl SpeechToText for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn transcribe(&self, audio: &[u8], _ext: &str) -> moderation_core::Result<Vec<TimedText>> {
        if audio.is_empty() {
            return Err(moderation_core::Error::Input("empty recording".into()));
        }
        Ok(self
            .0
            .iter()
            .map(|(s, e, t)| TimedText {
                start_time: *s,
                end_time: *e,
                text: t.to_string(),
            })
            .collect())
    }
}

fn squad_voice() -> Arc<dyn SpeechToText> {
    Arc::new(Scripted(vec![
        (0.0, 1.8, "good game everyone, nice push on the bridge"),
        (2.1, 4.4, "I will find you and hurt you after the match"),
        (4.9, 6.3, "you are a worthless idiot"),
    ]))
}

/// A real (silent-ish) 16 kHz mono WAV of `seconds`, so a browser can load it.
fn wav(seconds: f64) -> Vec<u8> {
    let n = (16_000.0 * seconds) as u32;
    let mut out = Vec::with_capacity(44 + 2 * n as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let v = ((i as f64 * 440.0 * std::f64::consts::TAU / 16_000.0).sin() * 3000.0) as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn put(root: &Path, key: &str, body: &[u8]) {
    let path = root.join(FIXTURE_BUCKET).join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, body).expect("write");
}

fn written(out: &Value) -> Vec<String> {
    out["written"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Invoke transcribe-audio with `payload`, then run whatever it wrote through the chain.
async fn invoke_and_follow(apps: &Apps, payload: Value) -> Vec<String> {
    let out = transcribe_audio::handler(event(payload), &apps.audio)
        .await
        .expect("handler succeeds");
    let first = written(&out);
    let mut all = first.clone();
    all.extend(
        run_chain(FIXTURE_BUCKET, first, |stage, obj| async move {
            dispatch(apps, stage, &obj.key).await
        })
        .await
        .expect("chain runs"),
    );
    all
}

fn fixture_key(name: &str) -> String {
    fixture(name)["Records"][0]["s3"]["object"]["key"]
        .as_str()
        .expect("fixture key")
        .to_string()
}

const AUDIO_KEY: &str = "incoming/audio/match-42/squad-voice.wav";

async fn apps_with_speech(root: &Path, speech: Arc<dyn SpeechToText>) -> Apps {
    let mut apps = Apps::offline(root).await;
    apps.audio = offline_audio_app(root, Ok(speech)).await;
    apps
}

/// The upload fixture, then the transcript fixture, then the rest of the chain.
async fn upload_to_report(root: &Path) -> Report {
    put(root, AUDIO_KEY, &wav(7.0));
    let apps = apps_with_speech(root, squad_voice()).await;
    let out = transcribe_audio::handler(event(fixture("s3-put-audio.json")), &apps.audio)
        .await
        .expect("upload handled");
    let wrote = written(&out);
    // The offline backend wrote the transcript where Transcribe would: the key the transcript
    // fixture names, so the two fixtures chain under `cargo lambda invoke` too.
    let transcript_key = fixture_key("s3-put-transcript.json");
    assert!(wrote.contains(&transcript_key), "{wrote:?}");
    let job = keys::id_from_document_key(&transcript_key, keys::TRANSCRIPTS).expect("job");
    assert!(wrote.contains(&keys::job_record_key(&job)), "{wrote:?}");
    // Stage by stage with the fixtures `make invoke-local-audio` uses.
    let id = keys::source_id(FIXTURE_BUCKET, AUDIO_KEY);
    let steps = [
        ("s3-put-transcript.json", keys::screened_key(&id)),
        ("s3-put-screened-audio.json", keys::evaluated_key(&id)),
        ("s3-put-evaluated-audio.json", keys::report_json_key(&id)),
    ];
    for (name, expected) in steps {
        let payload = fixture(name);
        let out = match keys::route(&fixture_key(name)) {
            Some(keys::Stage::TranscribeAudio) => {
                transcribe_audio::handler(event(payload), &apps.audio).await
            }
            Some(keys::Stage::EvaluatePolicy) => {
                evaluate_policy::handler(event(payload), &apps.evaluate).await
            }
            _ => write_report::handler(event(payload), &apps.report).await,
        }
        .expect("handled");
        assert!(written(&out).contains(&expected), "{name}: {out}");
    }
    read_doc(root, &keys::report_json_key(&id))
}

#[tokio::test]
async fn an_uploaded_recording_gets_a_report_with_timed_flagged_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = upload_to_report(dir.path()).await;
    assert_eq!(report.source.kind, SourceKind::Audio);
    assert_eq!(
        report.source.uri,
        format!("s3://{FIXTURE_BUCKET}/{AUDIO_KEY}")
    );
    assert_eq!(report.trigger.kind, TriggerKind::Upload);
    assert_eq!(report.status, Status::Complete, "{:?}", report.errors);
    let times: Vec<(Option<f64>, Option<f64>)> = report
        .items
        .iter()
        .map(|i| (i.start_time, i.end_time))
        .collect();
    assert_eq!(
        times,
        vec![
            (Some(0.0), Some(1.8)),
            (Some(2.1), Some(4.4)),
            (Some(4.9), Some(6.3))
        ]
    );
    let verdict = |id: &str| {
        report
            .items
            .iter()
            .find(|i| i.id == id)
            .and_then(|i| i.verdict)
    };
    assert_eq!(verdict("seg-1"), Some(Verdict::BelowThreshold));
    // The threat and the insult are flagged and judged against the policy.
    assert_eq!(
        verdict("seg-2"),
        Some(Verdict::Violation),
        "{:#?}",
        report.items[1]
    );
    assert_eq!(
        verdict("seg-3"),
        Some(Verdict::Violation),
        "{:#?}",
        report.items[2]
    );
    let threat = &report.items[1];
    assert!(threat.categories.violence_or_threat >= 0.5, "{threat:#?}");
    let ev = threat.evaluation.as_ref().expect("evaluated");
    assert!(!ev.references.is_empty());
    assert!((report.usage.transcribe_seconds - 6.3).abs() < 1e-9);
    // The HTML page plays the recording from the folder bucket.
    let html = std::fs::read_to_string(
        dir.path()
            .join(FIXTURE_BUCKET)
            .join(keys::report_html_key(&report.report_id)),
    )
    .expect("html");
    assert!(
        html.contains("src=\"../incoming/audio/match%2D42/squad%2Dvoice%2Ewav\""),
        "no player link in the HTML"
    );
    assert_eq!(html.matches("class=\"play\"").count(), 3);
}

#[tokio::test]
async fn the_report_player_loads_the_recording_and_seeks_to_a_segment_in_chromium() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let report = upload_to_report(dir.path()).await;
    let page = dir
        .path()
        .join(FIXTURE_BUCKET)
        .join(keys::report_html_key(&report.report_id));
    // A link to a segment opens the report with the player at that segment's start.
    let dom = dump_dom(&browser, &format!("{}#seg-2", file_url(&page)), 5000);
    let player = dom
        .split("<audio")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("an audio element");
    assert!(player.contains("data-duration=\"7.00\""), "{player}");
    assert!(player.contains("data-position=\"2.10\""), "{player}");
    assert!(!player.contains("data-error"), "{player}");
    assert!(dom.contains("data-item=\"seg-2\" data-start=\"2.10\""));
}

/// Transcribe as the tests need it: remembers requests, answers ConflictException (already
/// exists) for a repeated job name, and gives a failure reason.
#[derive(Default)]
struct FakeTranscribe {
    requests: Mutex<Vec<TranscriptionRequest>>,
}

#[async_trait]
impl TranscriptionJobs for FakeTranscribe {
    fn name(&self) -> &str {
        "Amazon Transcribe"
    }
    async fn start(&self, req: &TranscriptionRequest) -> moderation_core::Result<JobStart> {
        let mut seen = self.requests.lock().expect("lock");
        let exists = seen.iter().any(|r| r.job_name == req.job_name);
        seen.push(req.clone());
        Ok(if exists {
            JobStart::AlreadyExists
        } else {
            JobStart::Started
        })
    }
    async fn failure_reason(&self, _job: &str) -> moderation_core::Result<Option<String>> {
        Ok(Some(
            "The media format provided does not match the detected media format.".into(),
        ))
    }
}

#[tokio::test]
async fn duplicate_uploads_start_one_job_and_a_failed_job_reports_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, AUDIO_KEY, &wav(1.0));
    let fake = Arc::new(FakeTranscribe::default());
    let mut apps = Apps::offline(root).await;
    let jobs = fake.clone();
    apps.audio = audio_app_with_jobs(root, move |_| jobs).await;
    for _ in 0..2 {
        let out = transcribe_audio::handler(event(fixture("s3-put-audio.json")), &apps.audio)
            .await
            .expect("handled");
        assert_eq!(written(&out).len(), 1, "only the job record: {out}");
    }
    let requests = fake.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0], requests[1], "the same job both times");
    let job_from_fixture = fixture("transcribe-job-state-change-failed.json")["detail"]
        ["TranscriptionJobName"]
        .as_str()
        .expect("job")
        .to_string();
    assert_eq!(requests[0].job_name, job_from_fixture);
    assert_eq!(requests[0].media_key, AUDIO_KEY);
    assert_eq!(requests[0].media_format, "wav");
    assert_eq!(
        requests[0].languages,
        moderation_core::ports::SpeechLanguages::UsEnglish
    );
    assert_eq!(
        requests[0].output_key,
        keys::transcript_key(&requests[0].job_name)
    );
    // A COMPLETED event needs nothing (the transcript's own S3 event does the work).
    let mut completed = fixture("transcribe-job-state-change-failed.json");
    completed["detail"]["TranscriptionJobStatus"] = json!("COMPLETED");
    let out = transcribe_audio::handler(event(completed), &apps.audio)
        .await
        .expect("handled");
    assert!(written(&out).is_empty());
    // Another deployment's job (no record in this bucket) is not ours to report.
    let mut foreign = fixture("transcribe-job-state-change-failed.json");
    foreign["detail"]["TranscriptionJobName"] = json!("moderation-other-aabbccddeeff-01234567");
    let out = transcribe_audio::handler(event(foreign), &apps.audio)
        .await
        .expect("handled");
    assert!(written(&out).is_empty());

    invoke_and_follow(&apps, fixture("transcribe-job-state-change-failed.json")).await;
    let id = keys::source_id(FIXTURE_BUCKET, AUDIO_KEY);
    let report: Report = read_doc(root, &keys::report_json_key(&id));
    assert_eq!(report.status, Status::Failed);
    assert_eq!(
        report.source.uri,
        format!("s3://{FIXTURE_BUCKET}/{AUDIO_KEY}")
    );
    let msg = &report.errors.first().expect("an error").message;
    assert!(msg.contains(&job_from_fixture), "{msg}");
    assert!(
        msg.contains("does not match the detected media format"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_user_report_moderates_every_recording_of_the_conversation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "recordings/match-42/voice.wav", &wav(7.0));
    put(
        root,
        "recordings/match-42/chat.txt",
        b"gl hf\nuninstall the game you worthless idiot\n",
    );
    put(root, "recordings/match-42/notes.pdf", b"%PDF-1.4");
    put(root, "recordings/match-43/other.wav", &wav(1.0));
    let apps = apps_with_speech(root, squad_voice()).await;
    invoke_and_follow(&apps, fixture("user-report.json")).await;

    let detail: moderation_core::model::UserReport =
        serde_json::from_value(fixture("user-report.json")["detail"].clone()).expect("detail");
    let report_for = |key: &str| -> Report {
        let id = keys::user_report_id(FIXTURE_BUCKET, key, &detail.report_id);
        read_doc(root, &keys::report_json_key(&id))
    };
    for key in [
        "recordings/match-42/voice.wav",
        "recordings/match-42/chat.txt",
        "recordings/match-42/notes.pdf",
    ] {
        let r = report_for(key);
        assert_eq!(r.trigger.kind, TriggerKind::UserReport, "{key}");
        assert_eq!(r.trigger.user_report.as_ref(), Some(&detail), "{key}");
        assert_eq!(r.source.uri, format!("s3://{FIXTURE_BUCKET}/{key}"));
    }
    let voice = report_for("recordings/match-42/voice.wav");
    assert_eq!(voice.summary.violations, 2, "{:#?}", voice.items);
    let chat = report_for("recordings/match-42/chat.txt");
    assert_eq!(chat.source.kind, SourceKind::Text);
    assert_eq!(chat.summary.violations, 1, "{:#?}", chat.items);
    let pdf = report_for("recordings/match-42/notes.pdf");
    assert_eq!(pdf.status, Status::Failed);
    assert!(pdf.errors[0].message.contains("unsupported file type"));
    // Only the reported conversation was touched.
    let reports = keys_under(root, keys::REPORTS);
    assert!(
        !reports.iter().any(|k| k.contains("other-wav")),
        "{reports:?}"
    );
    // The HTML says who reported whom and why.
    let html = std::fs::read_to_string(
        root.join(FIXTURE_BUCKET)
            .join(keys::report_html_key(&voice.report_id)),
    )
    .expect("html");
    assert!(
        html.contains("Reported by <b>u-7</b> about <b>u-9</b>"),
        "{html}"
    );
}

#[tokio::test]
async fn a_user_report_on_an_unknown_or_unusable_conversation_gets_a_failed_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = apps_with_speech(root, squad_voice()).await;
    for (conversation, want) in [
        (
            "match-404",
            "no recordings under s3://moderation-demo/recordings/match-404/",
        ),
        ("../../etc", "cannot name a folder"),
        ("", "conversation_id is empty"),
    ] {
        let mut ev = fixture("user-report.json");
        ev["detail"]["conversation_id"] = json!(conversation);
        invoke_and_follow(&apps, ev).await;
        let folder = keys::conversation_folder(conversation);
        let id = keys::user_report_id(FIXTURE_BUCKET, folder.trim_end_matches('/'), "r-1");
        let report: Report = read_doc(root, &keys::report_json_key(&id));
        assert_eq!(report.status, Status::Failed, "{conversation:?}");
        assert_eq!(report.trigger.kind, TriggerKind::UserReport);
        let msg = &report.errors[0].message;
        assert!(msg.contains(want), "{conversation:?}: {msg}");
    }
}

#[tokio::test]
async fn unsupported_and_oversized_recordings_are_reported_as_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = apps_with_speech(root, squad_voice()).await;
    put(root, "incoming/audio/c/clip.aiff", b"FORM");
    let mut ev = fixture("s3-put-audio.json");
    ev["Records"][0]["s3"]["object"]["key"] = json!("incoming/audio/c/clip.aiff");
    invoke_and_follow(&apps, ev).await;
    let report: Report = read_doc(
        root,
        &keys::report_json_key(&keys::source_id(
            FIXTURE_BUCKET,
            "incoming/audio/c/clip.aiff",
        )),
    );
    assert_eq!(report.status, Status::Failed);
    assert!(report.errors[0]
        .message
        .contains("unsupported audio file type \"aiff\""));

    let mut ev = fixture("s3-put-audio.json");
    ev["Records"][0]["s3"]["object"]["size"] = json!(3_000_000_000u64);
    invoke_and_follow(&apps, ev).await;
    let report: Report = read_doc(
        root,
        &keys::report_json_key(&keys::source_id(FIXTURE_BUCKET, AUDIO_KEY)),
    );
    assert_eq!(report.status, Status::Failed);
    assert!(report.errors[0]
        .message
        .contains("over the 2147483648 byte limit"));
    // Undecodable audio fails the offline job with the decoder's reason.
    put(root, "incoming/audio/c/empty.wav", b"");
    let mut ev = fixture("s3-put-audio.json");
    ev["Records"][0]["s3"]["object"]["key"] = json!("incoming/audio/c/empty.wav");
    invoke_and_follow(&apps, ev).await;
    let report: Report = read_doc(
        root,
        &keys::report_json_key(&keys::source_id(
            FIXTURE_BUCKET,
            "incoming/audio/c/empty.wav",
        )),
    );
    assert_eq!(report.status, Status::Failed);
    assert!(
        report.errors[0].message.contains("empty recording"),
        "{:?}",
        report.errors
    );
}

#[tokio::test]
async fn transcribe_side_files_and_folders_under_transcripts_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = apps_with_speech(root, squad_voice()).await;
    for key in [
        "transcripts/.write_access_check_file.temp",
        "transcripts/notes.txt",
        "transcripts/sub/x.json",
    ] {
        put(root, key, b"{}");
        let mut ev = fixture("s3-put-transcript.json");
        ev["Records"][0]["s3"]["object"]["key"] = json!(key);
        let out = transcribe_audio::handler(event(ev), &apps.audio)
            .await
            .expect("handled");
        assert!(written(&out).is_empty(), "{key}: {out}");
    }
    assert!(keys_under(root, keys::SCREENED).is_empty());
    assert!(keys_under(root, keys::FAILED).is_empty());
}

const DOCUMENTED_TRANSCRIPT: &str = r#"{"jobName":"x","accountId":"111122223333","status":"COMPLETED",
 "results":{"transcripts":[{"transcript":"Yeah, ***** ******. You are an idiot."}],"items":[],
 "toxicity_detection":[
  {"text":"Yeah, ***** ******.","toxicity":0.7638,"categories":{"profanity":0.9913,"hate_speech":0.0382,
   "sexual":0.0016,"insult":0.0137,"violence_or_threat":0.0020,"graphic":0.0004,"harassment_or_abuse":0.0208},
   "start_time":8.92,"end_time":21.45},
  {"text":"You are an idiot.","toxicity":0.81,"categories":{"profanity":0.1,"hate_speech":0.01,"sexual":0.0,
   "insult":0.93,"violence_or_threat":0.0,"graphic":0.0,"harassment_or_abuse":0.2},
   "start_time":21.5,"end_time":23.1}]}}"#;

#[tokio::test]
async fn transcripts_without_a_job_record_or_with_defects_still_reach_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = apps_with_speech(root, squad_voice()).await;
    // Transcribe's documented output, for a job this chain has no record of.
    let key = fixture_key("s3-put-transcript.json");
    put(root, &key, DOCUMENTED_TRANSCRIPT.as_bytes());
    invoke_and_follow(&apps, fixture("s3-put-transcript.json")).await;
    let job = keys::id_from_document_key(&key, keys::TRANSCRIPTS).expect("job");
    let id = keys::id_from_job_name(&job).expect("id");
    let report: Report = read_doc(root, &keys::report_json_key(&id));
    assert_eq!(report.status, Status::Partial);
    assert!(
        report.errors[0].message.contains("no job record"),
        "{:?}",
        report.errors
    );
    assert_eq!(report.items.len(), 2);
    assert_eq!(report.items[0].start_time, Some(8.92));
    assert!((report.items[0].categories.profanity - 0.9913).abs() < 1e-12);
    assert_eq!(report.items[1].verdict, Some(Verdict::Violation));

    // A truncated transcript: a failed report that names the defect.
    put(root, &key, &DOCUMENTED_TRANSCRIPT.as_bytes()[..120]);
    invoke_and_follow(&apps, fixture("s3-put-transcript.json")).await;
    let report: Report = read_doc(root, &keys::report_json_key(&id));
    assert_eq!(report.status, Status::Failed);
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.message.contains("not valid JSON")),
        "{:?}",
        report.errors
    );
}

#[tokio::test]
async fn job_events_and_user_reports_arrive_through_sqs_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(
        root,
        "recordings/match-42/chat.txt",
        b"you worthless idiot\n",
    );
    let apps = apps_with_speech(root, squad_voice()).await;
    let sqs = json!({"Records":[
        {"messageId":"m-1","eventSource":"aws:sqs","attributes":{"ApproximateReceiveCount":"1"},
         "body": fixture("user-report.json").to_string()},
        {"messageId":"m-2","eventSource":"aws:sqs","attributes":{"ApproximateReceiveCount":"1"},
         "body": "{\"detail-type\":\"User Report\",\"source\":\"moderation.user-report\",\"detail\":{}}"}]});
    let out = transcribe_audio::handler(event(sqs), &apps.audio)
        .await
        .expect("batch response");
    // The malformed report fails alone; the good one was screened.
    assert_eq!(out["batchItemFailures"], json!([{"itemIdentifier":"m-2"}]));
    let id = keys::user_report_id(FIXTURE_BUCKET, "recordings/match-42/chat.txt", "r-1");
    assert!(keys_under(root, keys::SCREENED).contains(&keys::screened_key(&id)));
}

/// Transcribe that refuses some recordings: permanently (`broken`) or for now (`busy`).
struct Picky;

#[async_trait]
impl TranscriptionJobs for Picky {
    fn name(&self) -> &str {
        "Amazon Transcribe"
    }
    async fn start(&self, req: &TranscriptionRequest) -> moderation_core::Result<JobStart> {
        if req.media_key.contains("broken") {
            return Err(moderation_core::Error::Input(
                "BadRequestException: the media file is corrupt".into(),
            ));
        }
        if req.media_key.contains("long") {
            return Err(moderation_core::Error::service(
                "transcribe",
                moderation_core::error::ServiceErrorKind::TooLarge,
                "LimitExceededException: Your input file is too long.",
            ));
        }
        if req.media_key.contains("busy") {
            return Err(moderation_core::Error::service(
                "transcribe",
                moderation_core::error::ServiceErrorKind::Throttled,
                "LimitExceededException",
            ));
        }
        Ok(JobStart::Started)
    }
    async fn failure_reason(&self, _job: &str) -> moderation_core::Result<Option<String>> {
        Ok(None)
    }
}

#[tokio::test]
async fn one_bad_recording_does_not_hide_the_rest_of_a_user_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for key in [
        "recordings/match-42/a-broken.wav",
        "recordings/match-42/b-fine.wav",
    ] {
        put(root, key, &wav(1.0));
    }
    put(
        root,
        "recordings/match-42/c-chat.txt",
        b"you worthless idiot\n",
    );
    let mut apps = Apps::offline(root).await;
    apps.audio = audio_app_with_jobs(root, |_| Arc::new(Picky)).await;
    transcribe_audio::handler(event(fixture("user-report.json")), &apps.audio)
        .await
        .expect("handled");
    let id = |key: &str| keys::user_report_id(FIXTURE_BUCKET, key, "r-1");
    let broken: moderation_core::model::StageDocument = read_doc(
        root,
        &keys::screened_key(&id("recordings/match-42/a-broken.wav")),
    );
    assert_eq!(broken.status, Status::Failed);
    assert!(broken.errors[0].message.contains("media file is corrupt"));
    // The recordings after it were still moderated.
    let fine = keys::job_name(&id("recordings/match-42/b-fine.wav"), None);
    assert!(keys_under(root, keys::JOBS).contains(&keys::job_record_key(&fine)));
    assert!(keys_under(root, keys::SCREENED)
        .contains(&keys::screened_key(&id("recordings/match-42/c-chat.txt"))));

    // A retryable failure redelivers the report, after the others were done.
    put(root, "recordings/match-42/d-busy.wav", &wav(1.0));
    std::fs::remove_dir_all(root.join(FIXTURE_BUCKET).join(keys::SCREENED)).expect("rm");
    let err = transcribe_audio::handler(event(fixture("user-report.json")), &apps.audio)
        .await
        .expect_err("redelivery wanted");
    assert!(err.is_retryable(), "{err}");
    assert!(keys_under(root, keys::SCREENED)
        .contains(&keys::screened_key(&id("recordings/match-42/c-chat.txt"))));
}

#[tokio::test]
async fn a_user_reports_chat_log_after_one_that_used_the_time_is_reported_not_screened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // Far more than two seconds of screening, then a short log.
    let long: String = (0..200_000)
        .map(|i| format!("round {i}: rotate to the north gate and hold\n"))
        .collect();
    put(root, "recordings/match-42/a-chat.txt", long.as_bytes());
    put(
        root,
        "recordings/match-42/b-chat.txt",
        b"you worthless idiot\n",
    );
    let apps = Apps::offline(root).await;
    // Not redelivered: that would screen the long log first again and run out again.
    transcribe_audio::handler(
        moderation_tests::event_due_in(fixture("user-report.json"), 2_000),
        &apps.audio,
    )
    .await
    .expect("handled without a retry");
    let doc = |key: &str| -> moderation_core::model::StageDocument {
        let id = keys::user_report_id(FIXTURE_BUCKET, key, "r-1");
        read_doc(root, &keys::screened_key(&id))
    };
    let long = doc("recordings/match-42/a-chat.txt");
    // The long log is reported as far as it got.
    assert_eq!(long.status, Status::Failed);
    assert!(
        !long.items.is_empty() && long.items.len() < 200_000,
        "{}",
        long.items.len()
    );
    assert!(
        long.errors
            .iter()
            .any(|e| e.message.contains("stopped at the function's time limit")),
        "{:?}",
        long.errors
    );
    let short = doc("recordings/match-42/b-chat.txt");
    assert_eq!(short.status, Status::Failed);
    assert!(short.items.is_empty());
    let why = &short.errors[0].message;
    assert!(
        why.starts_with("recordings/match-42/b-chat.txt: not screened (no time left"),
        "{why}"
    );
}

#[tokio::test]
async fn silence_is_not_clean_and_folder_markers_are_not_recordings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, AUDIO_KEY, &wav(3.0));
    let apps = apps_with_speech(root, Arc::new(Scripted(Vec::new()))).await;
    invoke_and_follow(&apps, fixture("s3-put-audio.json")).await;
    let report: Report = read_doc(
        root,
        &keys::report_json_key(&keys::source_id(FIXTURE_BUCKET, AUDIO_KEY)),
    );
    assert_eq!(report.status, Status::Partial);
    assert!(report.items.is_empty());
    assert!(report.errors[0]
        .message
        .contains("no speech was recognised"));

    let mut marker = fixture("s3-put-audio.json");
    marker["Records"][0]["s3"]["object"]["key"] = json!("incoming/audio/match-43/");
    let out = transcribe_audio::handler(event(marker), &apps.audio)
        .await
        .expect("handled");
    assert!(written(&out).is_empty(), "{out}");
}

#[tokio::test]
async fn a_failed_job_with_an_unreadable_record_is_still_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let fake = Arc::new(FakeTranscribe::default());
    let mut apps = Apps::offline(root).await;
    apps.audio = audio_app_with_jobs(root, move |_| fake).await;
    let job = fixture("transcribe-job-state-change-failed.json")["detail"]["TranscriptionJobName"]
        .as_str()
        .expect("job")
        .to_string();
    put(root, &keys::job_record_key(&job), b"{not json");
    invoke_and_follow(&apps, fixture("transcribe-job-state-change-failed.json")).await;
    let id = keys::id_from_job_name(&job).expect("id");
    let report: Report = read_doc(root, &keys::report_json_key(&id));
    assert_eq!(report.status, Status::Failed);
    let msg = &report.errors[0].message;
    assert!(
        msg.contains("unreadable") && msg.contains("media format"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_recording_transcribe_refuses_gets_a_failed_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let key = "incoming/audio/match-42/five-hours-long.wav";
    put(root, key, &wav(1.0));
    let mut apps = Apps::offline(root).await;
    apps.audio = audio_app_with_jobs(root, |_| Arc::new(Picky)).await;
    let mut ev = fixture("s3-put-audio.json");
    ev["Records"][0]["s3"]["object"]["key"] = json!(key);
    invoke_and_follow(&apps, ev).await;
    let report: Report = read_doc(
        root,
        &keys::report_json_key(&keys::source_id(FIXTURE_BUCKET, key)),
    );
    assert_eq!(report.status, Status::Failed);
    assert!(
        report.errors[0].message.contains("too long"),
        "{:?}",
        report.errors
    );
    assert!(
        keys_under(root, keys::FAILED).is_empty(),
        "a report, not a dead letter"
    );
}

#[tokio::test]
async fn other_languages_offline_are_reported_not_passed() {
    // The offline speech model is English-only. Asked for Spanish alone it transcribes nothing
    // and the report says why; asked to identify among languages that include US English it
    // transcribes as English and the report says a person should listen.
    for (languages, status, want) in [
        ("es-US", Status::Failed, "transcribes English only"),
        (
            "es-US,en-US",
            Status::Partial,
            "AUDIO_LANGUAGES is es-US,en-US but offline transcription transcribed the recording as US English only",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        put(root, AUDIO_KEY, &wav(7.0));
        let mut apps = Apps::offline(root).await;
        apps.audio = offline_audio_app_in(root, Ok(squad_voice()), languages).await;
        invoke_and_follow(&apps, fixture("s3-put-audio.json")).await;
        let report: Report = read_doc(
            root,
            &keys::report_json_key(&keys::source_id(FIXTURE_BUCKET, AUDIO_KEY)),
        );
        assert_eq!(report.status, status, "{languages}: {:?}", report.errors);
        assert!(
            report.errors.iter().any(|e| e.message.contains(want)),
            "{languages}: {:?}",
            report.errors
        );
        if status == Status::Partial {
            // Still moderated: the threat in the English transcript is caught.
            assert_eq!(report.source.language.as_deref(), Some("en-US"));
            assert!(report
                .items
                .iter()
                .any(|i| i.verdict == Some(Verdict::Violation)));
        }
    }
}
