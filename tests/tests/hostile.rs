//! Hostile input, each with its documented outcome (docs/failure-behaviour.md).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moderation_core::chain::keys::{self, Stage};
use moderation_core::model::{DeadLetter, Report, Status, Verdict};
use moderation_core::ports::{JudgeRequest, Judgement, PolicyJudge};
use moderation_offline::{FolderStore, PolicyIndex, RulesJudge};
use moderation_tests::fake_aws::{sdk_config, FakeAws, Faults};
use moderation_tests::{
    apps_on_fake_aws, event, keys_under, read_doc, run_chain_via_sqs, with_offline_vars, Apps,
    FIXTURE_BUCKET,
};
use serde_json::json;

/// Bytes from a fixed xorshift stream (no NUL): the same "random" file on every run.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 255 + 1) as u8
        })
        .collect()
}

fn put(root: &Path, key: &str, body: &[u8]) {
    let path = root.join(FIXTURE_BUCKET).join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, body).expect("write");
}

fn report_for(root: &Path, key: &str) -> Report {
    read_doc(
        root,
        &keys::report_json_key(&keys::source_id(FIXTURE_BUCKET, key)),
    )
}

async fn moderate(root: &Path, apps: &Apps, key: &str) -> Vec<String> {
    run_chain_via_sqs(apps, root, &[key.to_string()], 3).await
}

/// S3 notifications encode keys (`+` for space, `%2B` for plus); each decodes to its object.
#[tokio::test]
async fn awkward_keys_reach_their_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = Apps::offline(dir.path()).await;
    let key = "incoming/text/match chat+1 100% é.txt";
    put(dir.path(), key, b"you are such an idiot\n");
    assert!(moderate(dir.path(), &apps, key).await.is_empty());
    let r = report_for(dir.path(), key);
    assert_eq!(r.source.uri, format!("s3://{FIXTURE_BUCKET}/{key}"));
    assert_eq!(r.summary.violations, 1);
}

/// `..` in a key cannot be a folder path offline: a dead letter names it, nothing else runs.
#[tokio::test]
async fn a_path_escaping_key_is_dead_lettered_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = Apps::offline(dir.path()).await;
    let key = "incoming/text/../../outside.txt";
    let dlq = moderate(dir.path(), &apps, key).await;
    assert!(
        dlq.is_empty(),
        "a permanent failure is acknowledged once recorded"
    );
    let letters = keys_under(dir.path(), keys::FAILED);
    assert_eq!(letters.len(), 1);
    let letter: DeadLetter = read_doc(dir.path(), &letters[0]);
    assert_eq!(
        (letter.stage.as_str(), letter.input_key.as_str()),
        ("screen-text", key)
    );
    assert!(letter.reason.contains("`..`"), "{}", letter.reason);
    assert!(!dir.path().join("outside.txt").exists());
}

#[tokio::test]
async fn oversized_and_odd_files_get_reports_that_say_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (cfg, e, r) = with_offline_vars(root, |v| {
        (
            screen_text::Config::from_vars(v).expect("cfg"),
            evaluate_policy::Config::from_vars(v).expect("cfg"),
            write_report::Config::from_vars(v).expect("cfg"),
        )
    });
    // A 20 MB limit so the 50 MB case runs quickly.
    let screen = screen_text::App::build(screen_text::Config {
        max_object_bytes: 20 << 20,
        ..cfg
    })
    .await
    .expect("app");
    let apps = Apps {
        audio: moderation_tests::offline_audio_app(root, Err("no audio here".into())).await,
        screen,
        image: moderation_tests::offline_image_app(root).await,
        evaluate: evaluate_policy::App::build(e).await.expect("app"),
        report: write_report::App::build(r).await.expect("app"),
    };
    let fifty_mb = "gg wp\n".repeat((50 << 20) / 6);
    let one_mb_line = format!("{} you idiot\n", "a ".repeat(512 * 1024));
    let cases: Vec<(&str, Vec<u8>, Status)> = vec![
        (
            "incoming/text/huge.txt",
            fifty_mb.into_bytes(),
            Status::Failed,
        ),
        (
            "incoming/text/one-line.txt",
            one_mb_line.into_bytes(),
            Status::Partial,
        ),
        (
            "incoming/text/latin1.txt",
            b"caf\xe9 idiot\nok\n".to_vec(),
            Status::Complete,
        ),
        (
            "incoming/text/random.txt",
            random_bytes(4096),
            Status::Failed,
        ),
        (
            "incoming/text/archive.csv",
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00bomb".to_vec(),
            Status::Failed,
        ),
        (
            "incoming/text/spaces.txt",
            b"   \n\t\n".to_vec(),
            Status::Failed,
        ),
    ];
    for (key, body, status) in cases {
        put(root, key, &body);
        assert!(moderate(root, &apps, key).await.is_empty(), "{key}");
        let rep = report_for(root, key);
        assert_eq!(rep.status, status, "{key}: {:?}", rep.errors);
        assert!(
            status == Status::Complete || !rep.errors.is_empty(),
            "{key}"
        );
        match key {
            "incoming/text/huge.txt" => {
                assert!(
                    rep.errors[0].message.contains("MAX_OBJECT_BYTES"),
                    "{:?}",
                    rep.errors
                )
            }
            "incoming/text/one-line.txt" => {
                assert_eq!(rep.items.len(), 1);
                assert_eq!(rep.items[0].verdict, Some(Verdict::NeedsReview));
                assert!(rep.items[0].text.len() <= 100_000);
            }
            "incoming/text/latin1.txt" => {
                assert_eq!(rep.items[0].text, "café idiot");
                assert!(rep.errors[0].message.contains("Windows-1252"));
                assert_eq!(rep.items[0].verdict, Some(Verdict::Violation));
            }
            "incoming/text/random.txt" => {
                assert!(rep.items.is_empty(), "{:?}", rep.items.len());
                assert!(rep.errors[0].message.contains("binary"), "{:?}", rep.errors);
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn empty_runaway_and_foreign_llm_replies_need_review() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeAws::start(Faults::default(), 9).await;
    let sdk = sdk_config(&fake.url(), Duration::from_millis(500)).await;
    let apps = apps_on_fake_aws(dir.path(), &sdk, 2).await;
    let replies = [
        ("empty", String::new()),
        (
            "runaway",
            format!(
                "<analysis>{}</analysis><answer>N</answer>",
                "blah ".repeat(20_000)
            ),
        ),
        (
            "foreign",
            "<analysis>Eso es una amenaza.</analysis><answer>Sí</answer>".to_string(),
        ),
        ("chatty", "Sure! Here is my verdict: N".to_string()),
    ];
    for (name, reply) in replies {
        fake.set_converse_reply(Some(reply));
        let key = format!("incoming/text/{name}.txt");
        put(dir.path(), &key, b"i will find you and hurt you\n");
        assert!(moderate(dir.path(), &apps, &key).await.is_empty());
        let rep = report_for(dir.path(), &key);
        let item = &rep.items[0];
        assert_eq!(item.verdict, Some(Verdict::NeedsReview), "{name}");
        assert_eq!(
            item.evaluation.as_ref().and_then(|e| e.answer.clone()),
            None,
            "{name}"
        );
        assert!(
            rep.errors.iter().any(|e| e.message.contains("not trusted")),
            "{name}"
        );
        assert!(item
            .evaluation
            .as_ref()
            .is_some_and(|e| e.analysis.len() <= 2000));
    }
}

/// Always fails for one document's items: a poison message.
struct PoisonJudge {
    calls: AtomicUsize,
}

#[async_trait]
impl PolicyJudge for PoisonJudge {
    fn model(&self) -> &str {
        moderation_offline::policy::RULES_MODEL
    }
    async fn judge(&self, req: &JudgeRequest<'_>) -> moderation_core::Result<Judgement> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if req.item.text.contains("poison") {
            return Err(moderation_core::Error::service(
                "bedrock-runtime",
                moderation_core::error::ServiceErrorKind::Unavailable,
                "ServiceUnavailableException",
            ));
        }
        RulesJudge.judge(req).await
    }
}

#[tokio::test]
async fn a_record_failing_every_delivery_is_dead_lettered_and_reported_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    put(root, "incoming/text/good.txt", b"you idiot\n");
    put(root, "incoming/text/bad.txt", b"poison idiot\n");
    for k in ["incoming/text/good.txt", "incoming/text/bad.txt"] {
        moderation_tests::deliver_via_sqs(&apps, Stage::ScreenText, k, 3).await;
    }
    let config = with_offline_vars(root, |v| {
        evaluate_policy::Config::from_vars(v).expect("cfg")
    });
    let judge = Arc::new(PoisonJudge {
        calls: AtomicUsize::new(0),
    });
    let evaluate = evaluate_policy::App::from_parts(
        Arc::new(FolderStore::new(root)),
        Arc::new(PolicyIndex::load_dir(&config.policy_dir).expect("policy")),
        judge,
        &config,
    );
    let screened = keys_under(root, keys::SCREENED);
    let record = |id: &str, key: &str, n: u32| {
        json!({"messageId": id, "eventSource": "aws:sqs",
               "attributes": {"ApproximateReceiveCount": n.to_string()},
               "body": json!({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
                   "s3":{"bucket":{"name":FIXTURE_BUCKET},"object":{"key":key}}}]}).to_string()})
    };
    let bad_key = screened
        .iter()
        .find(|k| k.contains("bad"))
        .expect("bad screened");
    let good_key = screened
        .iter()
        .find(|k| k.contains("good"))
        .expect("good screened");
    for n in 1..=3 {
        let batch =
            json!({"Records": [record("m-good", good_key, n), record("m-bad", bad_key, n)]});
        let out = evaluate_policy::handler(event(batch), &evaluate)
            .await
            .expect("batch");
        assert_eq!(
            out,
            json!({"batchItemFailures": [{"itemIdentifier": "m-bad"}]}),
            "delivery {n}"
        );
        // Before the last delivery nothing is dead-lettered yet.
        assert_eq!(
            keys_under(root, keys::FAILED).len(),
            usize::from(n == 3),
            "delivery {n}"
        );
    }
    let letters = keys_under(root, keys::FAILED);
    let letter: DeadLetter = read_doc(root, &letters[0]);
    assert_eq!(letter.stage, "evaluate-policy");
    assert_eq!(&letter.input_key, bad_key);
    assert_eq!(letter.attempts, Some(3));
    assert!(
        letter.reason.contains("failed on all 3 deliveries"),
        "{}",
        letter.reason
    );
    // The item is still in the evaluated document, marked for a person.
    let doc: moderation_core::model::StageDocument =
        read_doc(root, &bad_key.replace("screened/", "evaluated/"));
    assert_eq!(doc.items[0].verdict, Some(Verdict::NeedsReview));
}

/// Out of order: a late event for an older write must not replace what the newer write made.
#[tokio::test]
async fn the_newest_write_wins_over_a_late_older_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    let key = "incoming/text/edited.txt";
    let notify = |seq: &str| {
        json!({"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":FIXTURE_BUCKET},"object":{"key":key,"sequencer":seq}}}]})
    };
    let chain = |seq: &'static str| {
        let apps = &apps;
        async move {
            screen_text::handler(event(notify(seq)), &apps.screen)
                .await
                .expect("screen");
            for (stage, prefix) in [
                (Stage::EvaluatePolicy, keys::SCREENED),
                (Stage::WriteReport, keys::EVALUATED),
            ] {
                for k in keys_under(root, prefix) {
                    moderation_tests::dispatch(apps, stage, &k)
                        .await
                        .expect("stage");
                }
            }
        }
    };
    put(root, key, b"gg well played\n");
    chain("005F00000000000001").await;
    put(root, key, b"you are such an idiot\n");
    chain("005F00000000000002").await;
    assert_eq!(report_for(root, key).items[0].text, "you are such an idiot");
    // The first write's event is delivered again, late: it changes nothing.
    let out = screen_text::handler(event(notify("005F00000000000001")), &apps.screen)
        .await
        .expect("screen");
    assert_eq!(out["written"], json!([]), "{out}");
    let screened: moderation_core::model::StageDocument = read_doc(
        root,
        &keys::screened_key(&keys::source_id(FIXTURE_BUCKET, key)),
    );
    assert_eq!(
        screened.source_sequencer.as_deref(),
        Some("005F00000000000002")
    );
    assert_eq!(report_for(root, key).summary.violations, 1);
}

/// Round two of hostile uploads: each of these lost a message, blamed the wrong user or
/// passed abuse as clean before.
#[tokio::test]
async fn no_row_is_lost_and_no_repaired_or_evasive_text_passes_as_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    let threat = "i will find you and hurt you";
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "user,message\r\nana,you idiot\r\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "incoming/text/two-columns.csv",
            format!("user,message,text\nana,gg,\nbo,,{threat}\n").into_bytes(),
        ),
        (
            "incoming/text/two-fields.jsonl",
            format!("{{\"user\":\"bo\",\"message\":\"\",\"text\":\"{threat}\"}}\n").into_bytes(),
        ),
        (
            "incoming/text/duplicate-key.jsonl",
            format!("{{\"user\":\"bo\",\"message\":\"{threat}\",\"message\":\"gg\"}}\n")
                .into_bytes(),
        ),
        (
            "incoming/text/short-quote.csv",
            format!("user,message\nana,\"oops\nbo,gg\ncy,{threat}\ndee,ok\neve,nice\n")
                .into_bytes(),
        ),
        (
            "incoming/text/latin1-evasion.txt",
            b"k\xedll yours\xe9lf\n".to_vec(),
        ),
        ("incoming/text/utf16.csv", utf16),
        (
            "incoming/text/cr-only.txt",
            format!("gg\r{threat}\rok\r").into_bytes(),
        ),
        (
            "incoming/text/emoji.txt",
            "k🔥i🔥l🔥l y🔥o🔥u🔥r🔥s🔥e🔥l🔥f\n".as_bytes().to_vec(),
        ),
        (
            "incoming/text/rtl.txt",
            "\u{202E}flesruoy llik\u{202C}\n".as_bytes().to_vec(),
        ),
    ];
    for (key, body) in &cases {
        put(root, key, body);
        assert!(moderate(root, &apps, key).await.is_empty(), "{key}");
        let rep = report_for(root, key);
        let flagged: Vec<&moderation_core::model::Item> = rep
            .items
            .iter()
            .filter(|i| i.verdict != Some(Verdict::BelowThreshold))
            .collect();
        let texts: Vec<&str> = rep.items.iter().map(|i| i.text.as_str()).collect();
        match *key {
            "incoming/text/two-columns.csv" => {
                assert_eq!(texts, ["gg", threat]);
                assert_eq!(rep.items[1].user.as_deref(), Some("bo"));
                assert_eq!(rep.items[1].verdict, Some(Verdict::Violation));
            }
            "incoming/text/two-fields.jsonl" => {
                assert_eq!(texts, [threat]);
                assert_eq!(rep.items[0].verdict, Some(Verdict::Violation));
            }
            "incoming/text/duplicate-key.jsonl" => {
                assert_eq!(texts, [format!("{threat}\ngg")]);
                assert_eq!(rep.items[0].verdict, Some(Verdict::Violation));
            }
            "incoming/text/short-quote.csv" => {
                let who: Vec<(Option<&str>, &str)> = rep
                    .items
                    .iter()
                    .map(|i| (i.user.as_deref(), i.text.as_str()))
                    .collect();
                assert_eq!(
                    who,
                    [
                        (Some("ana"), "oops"),
                        (Some("bo"), "gg"),
                        (Some("cy"), threat),
                        (Some("dee"), "ok"),
                        (Some("eve"), "nice"),
                    ]
                );
                assert_eq!(rep.items[0].verdict, Some(Verdict::NeedsReview));
                let why = rep.items[0].review_reason.as_deref().unwrap_or_default();
                assert!(why.contains("lines 3-6"), "{why}");
                assert_eq!(rep.items[2].verdict, Some(Verdict::Violation));
                assert_eq!(rep.status, Status::Partial);
            }
            "incoming/text/latin1-evasion.txt" => {
                assert_eq!(texts, ["kíll yoursélf"]);
                assert_eq!(rep.items[0].verdict, Some(Verdict::Violation));
                assert!(rep
                    .errors
                    .iter()
                    .any(|e| e.message.contains("Windows-1252")));
            }
            "incoming/text/utf16.csv" => {
                assert_eq!(texts, ["you idiot"]);
                assert_eq!(rep.items[0].verdict, Some(Verdict::Violation));
                assert!(rep.errors.iter().any(|e| e.message.contains("UTF-16LE")));
            }
            "incoming/text/cr-only.txt" => {
                assert_eq!(texts, ["gg", threat, "ok"]);
                assert_eq!(flagged.len(), 1);
            }
            "incoming/text/emoji.txt" | "incoming/text/rtl.txt" => {
                assert_eq!(rep.items[0].verdict, Some(Verdict::Violation), "{key}");
                let revealed = rep.items[0].revealed.as_ref().expect("revealed");
                assert_eq!(revealed.text, "kill yourself");
            }
            other => unreachable!("{other}"),
        }
    }
}

/// One malformed record beside good ones: the good records are moderated, the delivery fails
/// (so the bad one reaches the DLQ or the on-failure destination rather than vanishing).
#[tokio::test]
async fn a_malformed_s3_record_does_not_drop_its_neighbours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    put(root, "incoming/text/a.txt", b"you idiot\n");
    put(root, "incoming/text/b.txt", b"gg\n");
    let good = |key: &str| {
        json!({"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
               "s3":{"bucket":{"name":FIXTURE_BUCKET},"object":{"key":key}}})
    };
    let bad = json!({"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{}}});
    let payload =
        json!({"Records": [good("incoming/text/a.txt"), bad, good("incoming/text/b.txt")]});
    let err = screen_text::handler(event(payload.clone()), &apps.screen)
        .await
        .expect_err("the bad record fails the direct invocation");
    assert!(err.to_string().contains("event"), "{err}");
    assert_eq!(keys_under(root, keys::SCREENED).len(), 2);
    // Wrapped in SQS: only that message is reported failed, after its good records ran.
    let sqs = json!({"Records": [{"messageId": "m-1", "eventSource": "aws:sqs",
        "attributes": {"ApproximateReceiveCount": "1"}, "body": payload.to_string()}]});
    let out = screen_text::handler(event(sqs), &apps.screen)
        .await
        .expect("batch");
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
    );
}

/// Round three, through the whole chain: every case a hostile user found in CSV shapes,
/// misplaced JSON text and evasion ends flagged (a violation or held for a person), never
/// `below_threshold` or `no_violation`, and every record of a file is an item or a note.
#[tokio::test]
async fn threats_hidden_by_file_shapes_and_evasion_are_never_passed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let apps = Apps::offline(root).await;
    let cases: Vec<(&str, &str, usize)> = vec![
        (
            "incoming/text/quoted-newline.csv",
            "user,message\nbob,\"hey\nI am going to kill you and your whole family tonight, ok\"\nana,gg\n",
            2,
        ),
        (
            "incoming/text/unquoted-commas.csv",
            "user,message\nbob,hello everyone, kill yourself you worthless idiot\n",
            1,
        ),
        (
            "incoming/text/misplaced.jsonl",
            "{\"user\":\"a\",\"message\":null,\"data\":{\"text\":\"i will kill you\"}}\n\
             {\"user\":\"b\",\"message\":\"\",\"attachments\":[\"kill yourself loser\"]}\n\
             {\"user\":\"c\",\"message\":\"   \",\"meta\":{\"reply\":\"go die in a fire\"}}\n\
             {\"user\":\"i will find you and hurt you\",\"message\":\"\"}\n",
            4,
        ),
        ("incoming/text/reversed.txt", "flesruoy llik\n", 1),
        ("incoming/text/braille.txt", "⠅⠊⠇⠇⠀⠽⠕⠥⠗⠎⠑⠇⠋\n", 1),
        ("incoming/text/weapon.txt", "🔫💀 you're next\n", 1),
        (
            "incoming/text/split.jsonl",
            "{\"user\":\"bob\",\"message\":\"i am going to\"}\n\
             {\"user\":\"bob\",\"message\":\"kill\"}\n\
             {\"user\":\"bob\",\"message\":\"you\"}\n",
            3,
        ),
    ];
    for (key, body, records) in &cases {
        put(root, key, body.as_bytes());
        assert!(moderate(root, &apps, key).await.is_empty(), "{key}");
        let rep = report_for(root, key);
        assert_eq!(
            rep.summary.items as usize, *records,
            "{key}: {:?}",
            rep.items
        );
        let passed: Vec<&moderation_core::model::Item> = rep
            .items
            .iter()
            .filter(|i| {
                matches!(
                    i.verdict,
                    Some(Verdict::BelowThreshold | Verdict::NoViolation)
                )
            })
            .collect();
        match *key {
            "incoming/text/quoted-newline.csv" => {
                assert_eq!(rep.items[0].user.as_deref(), Some("bob"));
                assert_eq!(rep.items[0].verdict, Some(Verdict::Violation));
                assert_eq!(passed.len(), 1, "only the gg passes");
            }
            "incoming/text/split.jsonl" => {
                assert!(passed.len() <= 2, "{passed:?}");
                assert_ne!(rep.items[2].verdict, Some(Verdict::BelowThreshold));
                let joined = rep.items[2].revealed.as_ref().expect("joined");
                assert_eq!(joined.lines, ["line-1", "line-2", "line-3"]);
            }
            _ => {
                let threats = rep.items.iter().filter(|i| i.text != "gg").count();
                assert!(passed.is_empty() && threats > 0, "{key}: {passed:?}");
            }
        }
    }
}
