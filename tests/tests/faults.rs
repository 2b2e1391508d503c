//! Fault injection: a 5,000-message upload through the real AWS adapters against a fake AWS
//! that throttles, fails and hangs. Every message must come out exactly once, the verdicts of
//! calls that succeeded must not change, and nothing that failed may pass as clean.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use moderation_core::chain::keys;
use moderation_core::model::{Report, Verdict};
use moderation_tests::fake_aws::{sdk_config, FakeAws, Faults, Stats};
use moderation_tests::{apps_on_fake_aws, keys_under, read_doc, run_chain_via_sqs, FIXTURE_BUCKET};

const MESSAGES: usize = 5_000;
const MAX_RECEIVE: u32 = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);

fn write_upload(root: &Path) -> String {
    let key = "incoming/text/big-match.txt";
    let path = root.join(FIXTURE_BUCKET).join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let text: String = (0..MESSAGES)
        .map(|i| moderation_tests::chat_message(i) + "\n")
        .collect();
    std::fs::write(&path, text).expect("write upload");
    key.to_string()
}

struct Run {
    report: Report,
    dlq: Vec<String>,
    dead_letters: Vec<String>,
    stats: Stats,
}

async fn run(faults: Faults, seed: u64) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = write_upload(dir.path());
    let fake = FakeAws::start(faults, seed).await;
    let sdk = sdk_config(&fake.url(), ATTEMPT_TIMEOUT).await;
    let apps = apps_on_fake_aws(dir.path(), &sdk, 16).await;
    let dlq = run_chain_via_sqs(&apps, dir.path(), std::slice::from_ref(&key), MAX_RECEIVE).await;
    let id = keys::source_id(FIXTURE_BUCKET, &key);
    Run {
        report: read_doc(dir.path(), &keys::report_json_key(&id)),
        dlq,
        dead_letters: keys_under(dir.path(), keys::FAILED),
        stats: fake.stats(),
    }
}

fn verdicts(r: &Report) -> BTreeMap<String, Verdict> {
    r.items
        .iter()
        .map(|i| (i.id.clone(), i.verdict.expect("every item has a verdict")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_messages_survive_throttling_server_errors_and_timeouts() {
    let baseline = run(Faults::default(), 1).await;
    let base = verdicts(&baseline.report);
    assert_eq!(base.len(), MESSAGES);
    assert!(
        baseline.report.errors.is_empty(),
        "{:?}",
        &baseline.report.errors[..3.min(baseline.report.errors.len())]
    );
    assert!(baseline.dlq.is_empty() && baseline.dead_letters.is_empty());
    let violations = base.values().filter(|v| **v == Verdict::Violation).count();
    assert!(violations > MESSAGES / 3, "{violations}");

    let scenarios = [
        (
            "30% throttling",
            Faults {
                throttle: 0.30,
                ..Faults::default()
            },
        ),
        (
            "10% server errors",
            Faults {
                server_error: 0.10,
                ..Faults::default()
            },
        ),
        (
            "5% timeouts",
            Faults {
                timeout: 0.05,
                hang: Duration::from_secs(1),
                ..Faults::default()
            },
        ),
        (
            "all three at once",
            Faults {
                throttle: 0.30,
                server_error: 0.10,
                timeout: 0.05,
                hang: Duration::from_secs(1),
                ..Faults::default()
            },
        ),
    ];
    for (i, (name, faults)) in scenarios.into_iter().enumerate() {
        let r = run(faults, 100 + i as u64).await;
        let got = verdicts(&r.report);
        // Every input message appears exactly once.
        assert_eq!(r.report.items.len(), MESSAGES, "{name}");
        assert_eq!(
            got.keys().collect::<BTreeSet<_>>(),
            base.keys().collect::<BTreeSet<_>>(),
            "{name}: item ids"
        );
        assert!(r.stats.faults > 0, "{name}: no fault was injected");
        let failed: BTreeSet<&str> = r
            .report
            .errors
            .iter()
            .filter_map(|e| e.item.as_deref())
            .chain(
                r.report
                    .items
                    .iter()
                    .filter(|i| i.review_reason.is_some())
                    .map(|i| i.id.as_str()),
            )
            .collect();
        let mut changed = 0;
        for item in &r.report.items {
            let v = got[&item.id];
            if failed.contains(item.id.as_str()) {
                // A failure is visible and never clean.
                assert!(
                    v == Verdict::NeedsReview || v == Verdict::Violation,
                    "{name}: {} failed but is {v:?}",
                    item.id
                );
            } else {
                assert_eq!(
                    v, base[&item.id],
                    "{name}: {} changed without an error",
                    item.id
                );
            }
            changed += usize::from(v != base[&item.id]);
        }
        // A message that exhausted its deliveries left a dead letter naming it.
        for key in &r.dlq {
            assert!(
                !r.dead_letters.is_empty(),
                "{name}: {key} reached the DLQ without failed/"
            );
        }
        eprintln!(
            "{name}: {} faults injected, {} items with errors, {changed} verdicts differ from the baseline, {} messages in the DLQ, requests {:?}",
            r.stats.faults,
            failed.len(),
            r.dlq.len(),
            r.stats.requests
        );
    }
}

/// Redelivery: the same event three times costs one LLM call per item, not three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thrice_delivered_upload_is_judged_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "incoming/text/lobby-chat.txt";
    let path = dir.path().join(FIXTURE_BUCKET).join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::copy(
        moderation_tests::workspace_root().join("events/uploads/lobby-chat.txt"),
        &path,
    )
    .expect("copy");
    let fake = FakeAws::start(Faults::default(), 3).await;
    let sdk = sdk_config(&fake.url(), ATTEMPT_TIMEOUT).await;
    let apps = apps_on_fake_aws(dir.path(), &sdk, 4).await;
    for _ in 0..3 {
        let dlq = run_chain_via_sqs(&apps, dir.path(), &[key.to_string()], MAX_RECEIVE).await;
        assert!(dlq.is_empty());
    }
    let id = keys::source_id(FIXTURE_BUCKET, key);
    let report: Report = read_doc(dir.path(), &keys::report_json_key(&id));
    assert_eq!(report.summary.items, 6);
    assert_eq!(
        fake.ok_calls("Converse"),
        report.summary.evaluated,
        "one call per judged item"
    );
    assert_eq!(
        fake.ok_calls("DetectToxicContent"),
        3,
        "screening itself is repeated"
    );
}
