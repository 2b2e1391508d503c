//! Chat in other languages through the real AWS adapters against the loopback fake: Comprehend
//! identifies the language, Translate turns it into English, the English is scored and judged,
//! and the report keeps the original beside the translation.

use std::time::Duration;

use moderation_core::chain::delivery::run_chain;
use moderation_core::chain::keys;
use moderation_core::model::{Report, Verdict};
use moderation_tests::fake_aws::{sdk_config, FakeAws, Faults};
use moderation_tests::{
    apps_on_fake_aws_translating, chromium_or_skip, dispatch, dump_dom, file_url, read_doc,
    workspace_root, FIXTURE_BUCKET,
};

fn stage_world_chat(root: &std::path::Path) -> String {
    let key = "incoming/text/world-chat.jsonl";
    let dest = root.join(FIXTURE_BUCKET).join(key);
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    std::fs::copy(
        workspace_root().join("events/uploads/world-chat.jsonl"),
        &dest,
    )
    .expect("copy");
    key.to_string()
}

async fn moderate(faults: Faults) -> (Report, FakeAws) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (report, fake) = moderate_in(dir.path(), faults).await;
    (report, fake)
}

async fn moderate_in(root: &std::path::Path, faults: Faults) -> (Report, FakeAws) {
    let fake = FakeAws::start(faults, 11).await;
    let sdk = sdk_config(&fake.url(), Duration::from_secs(2)).await;
    let apps = apps_on_fake_aws_translating(root, &sdk).await;
    let key = stage_world_chat(root);
    run_chain(FIXTURE_BUCKET, vec![key.clone()], |stage, obj| {
        let a = &apps;
        async move { dispatch(a, stage, &obj.key).await }
    })
    .await
    .expect("chain runs");
    let id = keys::source_id(FIXTURE_BUCKET, &key);
    (read_doc(root, &keys::report_json_key(&id)), fake)
}

fn item<'a>(r: &'a Report, id: &str) -> &'a moderation_core::model::Item {
    r.items.iter().find(|i| i.id == id).expect("item")
}

#[tokio::test]
async fn a_spanish_threat_is_scored_on_its_translation_and_judged_a_violation() {
    let (report, fake) = moderate(Faults::default()).await;
    let threat = item(&report, "line-9");
    assert_eq!(threat.language.as_deref(), Some("es"), "{threat:?}");
    assert!(
        threat
            .translation
            .as_deref()
            .is_some_and(|t| t.contains("kill you")),
        "{threat:?}"
    );
    assert!(threat.text.starts_with("te voy a encontrar"));
    assert_eq!(threat.verdict, Some(Verdict::Violation), "{threat:?}");
    // A friendly Spanish line is translated and passes like English would.
    let hello = item(&report, "line-3");
    assert_eq!(hello.language.as_deref(), Some("es"));
    assert_eq!(hello.verdict, Some(Verdict::BelowThreshold), "{hello:?}");
    // Short English lines cost no language call and are not held for their language.
    for id in ["line-2", "line-4", "line-6", "line-28"] {
        let i = item(&report, id);
        assert_eq!(i.language, None, "{i:?}");
        assert_eq!(i.verdict, Some(Verdict::BelowThreshold), "{i:?}");
    }
    assert!(report.usage.translated_characters > 0, "{:?}", report.usage);
    assert!(fake.ok_calls("TranslateText") >= 1);
    // The pre-filter settled most lines; only the unsure ones went to Comprehend.
    assert!(fake.ok_calls("BatchDetectDominantLanguage") <= 2);
}

#[tokio::test]
async fn throttled_translation_holds_the_message_for_a_person() {
    // Every Translate call throttled: the SDK's retries run out, and no message in another
    // language passes; English lines are judged as usual.
    let faults = Faults {
        throttle: 1.0,
        only: Some("TranslateText"),
        ..Faults::default()
    };
    let (report, _fake) = moderate(faults).await;
    let foreign: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.language.is_some())
        .collect();
    assert!(foreign.len() >= 5, "{foreign:?}");
    for i in foreign {
        assert_eq!(i.translation, None, "{i:?}");
        assert!(
            matches!(i.verdict, Some(Verdict::NeedsReview | Verdict::Violation)),
            "{i:?}"
        );
        assert!(
            i.review_reason
                .as_deref()
                .is_some_and(|r| r.contains("translation failed")),
            "{i:?}"
        );
    }
    assert_eq!(item(&report, "line-19").verdict, Some(Verdict::Violation));
    assert_eq!(
        item(&report, "line-2").verdict,
        Some(Verdict::BelowThreshold)
    );
    assert!(report
        .errors
        .iter()
        .any(|e| e.message.contains("translation failed")));
}

#[tokio::test]
async fn the_report_shows_the_original_beside_its_translation() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (report, _fake) = moderate_in(dir.path(), Faults::default()).await;
    let html = dir
        .path()
        .join(FIXTURE_BUCKET)
        .join(keys::report_html_key(&report.report_id));
    let dom = dump_dom(&browser, &file_url(&html), 0);
    let translated = report
        .items
        .iter()
        .filter(|i| i.translation.is_some())
        .count();
    assert!(translated >= 3, "{translated}");
    assert_eq!(
        dom.matches("<div class=\"bilingual\">").count(),
        translated,
        "{dom}"
    );
    assert!(
        dom.contains("<p class=\"text\" lang=\"es\">te voy a encontrar"),
        "{dom}"
    );
    assert!(dom.contains("I'm going to find you and I'm going to kill you"));
    assert!(dom.contains("<span class=\"lang\" title=\"language of the original\">ru</span>"));
    assert!(dom.contains("characters translated"));
}

/// An identifier that cannot tell one text, and a translator that echoes.
struct Stubs;

#[async_trait::async_trait]
impl moderation_core::ports::LanguageIdentifier for Stubs {
    fn name(&self) -> &str {
        "stub"
    }
    fn batch_size(&self) -> usize {
        25
    }
    async fn identify(
        &self,
        texts: &[String],
    ) -> moderation_core::Result<Vec<moderation_core::ports::Answer>> {
        use moderation_core::ports::{Answer, Identified};
        Ok(texts
            .iter()
            .map(|t| {
                if t.contains("???") {
                    Answer::Unknown("item error".into())
                } else {
                    Answer::Other(Identified {
                        code: "es".into(),
                        confidence: 0.9,
                    })
                }
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl moderation_core::ports::Translator for Stubs {
    fn name(&self) -> &str {
        "stub"
    }
    fn max_bytes(&self) -> usize {
        10_000
    }
    async fn to_english(&self, text: &str, _source: &str) -> moderation_core::Result<String> {
        Ok(format!("english: {text}"))
    }
}

#[tokio::test]
async fn an_unidentified_line_and_one_past_the_budget_are_held_for_a_person() {
    use moderation_core::stages::screen_text::{screen_messages_within, ScreenDeps};
    use moderation_core::text::parse::ParsedMessage;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = moderation_offline::FolderStore::new(dir.path());
    let detector = moderation_offline::OfflineDetector::embedded().expect("detector");
    let rules = moderation_core::text::rules::RuleFilter::default_list().expect("rules");
    let deps = ScreenDeps {
        store: &store,
        detector: &detector,
        rules: &rules,
        languages: &Stubs,
        translator: Some(&Stubs),
        known_language: None,
        progress: None,
        time_limit: None,
    };
    let lines = [
        "qué tal la partida de hoy amigos",
        "zzkx qwpt ??? vmmr lrrp",
        "otra partida más por favor amigos",
    ];
    let messages = lines
        .iter()
        .enumerate()
        .map(|(i, t)| ParsedMessage {
            id: format!("line-{}", i + 1),
            text: t.to_string(),
            ..Default::default()
        })
        .collect();
    // Budget for the first line only.
    let budget = lines[0].chars().count() as u64;
    let (items, errors, usage) = screen_messages_within(messages, &deps, 0.5, 2, budget).await;
    assert_eq!(
        items[0].translation.as_deref(),
        Some("english: qué tal la partida de hoy amigos")
    );
    assert_eq!(
        items[0].verdict,
        Some(Verdict::BelowThreshold),
        "{:?}",
        items[0]
    );
    assert_eq!(usage.translated_characters, budget);
    assert_eq!(
        items[1].verdict,
        Some(Verdict::NeedsReview),
        "{:?}",
        items[1]
    );
    assert!(items[1]
        .review_reason
        .as_deref()
        .is_some_and(|r| r.contains("language not identified (item error)")));
    assert_eq!(
        items[2].verdict,
        Some(Verdict::NeedsReview),
        "{:?}",
        items[2]
    );
    assert!(items[2]
        .review_reason
        .as_deref()
        .is_some_and(|r| r.contains("MAX_TRANSLATED_CHARS_PER_OBJECT")));
    assert_eq!(errors.len(), 2, "{errors:?}");
}

/// Transcribe as far as starting a job goes: remembers the requests.
#[derive(Default)]
struct StartedJobs(std::sync::Mutex<Vec<moderation_core::ports::TranscriptionRequest>>);

#[async_trait::async_trait]
impl moderation_core::ports::TranscriptionJobs for StartedJobs {
    fn name(&self) -> &str {
        "Amazon Transcribe"
    }
    async fn start(
        &self,
        req: &moderation_core::ports::TranscriptionRequest,
    ) -> moderation_core::Result<moderation_core::ports::JobStart> {
        self.0.lock().expect("lock").push(req.clone());
        Ok(moderation_core::ports::JobStart::Started)
    }
    async fn failure_reason(&self, _job: &str) -> moderation_core::Result<Option<String>> {
        Ok(None)
    }
}

#[tokio::test]
async fn a_spanish_recording_is_identified_translated_and_judged_on_its_english() {
    use moderation_core::ports::SpeechLanguages;
    use moderation_tests::{audio_app_on_fake_aws_translating, event, fixture};
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let fake = FakeAws::start(Faults::default(), 12).await;
    let sdk = sdk_config(&fake.url(), Duration::from_secs(2)).await;
    let jobs = std::sync::Arc::new(StartedJobs::default());
    let mut apps = apps_on_fake_aws_translating(root, &sdk).await;
    apps.audio = audio_app_on_fake_aws_translating(root, &sdk, "es-US,en-US", jobs.clone()).await;

    // The upload starts a job that identifies the language, without toxicity detection.
    let upload = fixture("s3-put-audio-spanish.json");
    let recording = upload["Records"][0]["s3"]["object"]["key"]
        .as_str()
        .expect("key")
        .to_string();
    let dest = root.join(FIXTURE_BUCKET).join(&recording);
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    std::fs::write(&dest, b"RIFF").expect("write");
    transcribe_audio::handler(event(upload), &apps.audio)
        .await
        .expect("job started");
    let requests = jobs.0.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].languages,
        SpeechLanguages::Identify(vec!["es-US".into(), "en-US".into()])
    );

    // Transcribe writes the transcript where the job said; its S3 event is the fixture.
    let transcript = fixture("s3-put-transcript-spanish.json");
    let transcript_key = transcript["Records"][0]["s3"]["object"]["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(requests[0].output_key, transcript_key);
    let dest = root.join(FIXTURE_BUCKET).join(&transcript_key);
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    std::fs::copy(
        workspace_root().join("events/transcripts/plaza-voice-es.json"),
        dest,
    )
    .expect("copy transcript");
    run_chain(FIXTURE_BUCKET, vec![transcript_key], |stage, obj| {
        let a = &apps;
        async move { dispatch(a, stage, &obj.key).await }
    })
    .await
    .expect("chain runs");
    let id = keys::source_id(FIXTURE_BUCKET, &recording);
    let report: Report = read_doc(root, &keys::report_json_key(&id));

    assert_eq!(report.source.language.as_deref(), Some("es-US"));
    assert_eq!(report.items.len(), 3, "{:?}", report.items);
    let threat = &report.items[1];
    assert!(threat.text.starts_with("Te voy a encontrar"), "{threat:?}");
    assert_eq!(threat.language.as_deref(), Some("es"));
    assert!(
        threat
            .translation
            .as_deref()
            .is_some_and(|t| t.contains("kill you")),
        "{threat:?}"
    );
    assert_eq!(
        (threat.start_time, threat.end_time),
        (Some(3.1), Some(6.17))
    );
    assert_eq!(threat.verdict, Some(Verdict::Violation), "{threat:?}");
    for friendly in [&report.items[0], &report.items[2]] {
        assert_eq!(friendly.language.as_deref(), Some("es"));
        assert_eq!(
            friendly.verdict,
            Some(Verdict::BelowThreshold),
            "{friendly:?}"
        );
    }
    assert!(report.usage.translated_characters > 0, "{:?}", report.usage);
    // Transcribe named the language: nothing was asked of Comprehend about it.
    assert_eq!(fake.ok_calls("BatchDetectDominantLanguage"), 0);
    assert_eq!(report.usage.language_units, 0);

    // The moderator sees the spoken language, and each sentence beside its English.
    if let Some(browser) = chromium_or_skip() {
        let html = root
            .join(FIXTURE_BUCKET)
            .join(keys::report_html_key(&report.report_id));
        let dom = dump_dom(&browser, &file_url(&html), 0);
        assert!(
            dom.contains("spoken language <span class=\"lang\">es-US</span>"),
            "{dom}"
        );
        assert!(dom.contains("Te voy a encontrar y te voy a matar"));
        assert!(dom.contains("I'm going to find you and I'm going to kill you"));
    }
}
