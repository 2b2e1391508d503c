//! Conversation-level risk through the offline chain: labelled conversations (a tuning set the
//! patterns and weights were chosen on, a held-out set written separately and never tuned on)
//! screened as an uploaded JSONL log, the conversations over the gate compared with the labels.

use std::collections::BTreeMap;
use std::path::Path;

use moderation_core::chain::config::Vars;
use moderation_core::chain::keys::{self, Stage};
use moderation_core::model::{Conversation, ConversationCount, StageDocument};
use moderation_tests::{dispatch, read_doc, workspace_root, Apps, FIXTURE_BUCKET};

/// Conversation id → label (`grooming` or `benign`) and kind.
fn labels(set: &str) -> BTreeMap<String, (String, String)> {
    let path = workspace_root().join(format!("tests/data/conversations/{set}-labels.tsv"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// Screen `file` as an upload; the screened document's conversations and count.
async fn screen(root: &Path, apps: &Apps, file: &Path) -> (Vec<Conversation>, ConversationCount) {
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let key = format!("incoming/text/{name}");
    let dest = root.join(FIXTURE_BUCKET).join(&key);
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    std::fs::copy(file, &dest).expect("copy");
    dispatch(apps, Stage::ScreenText, &key)
        .await
        .expect("screen");
    let doc: StageDocument = read_doc(
        root,
        &keys::screened_key(&keys::source_id(FIXTURE_BUCKET, &key)),
    );
    (doc.conversations, doc.conversation_count.expect("counted"))
}

/// The detectors this build can run: the embedding one needs feature `semantic`.
fn detectors() -> Vec<Detector> {
    let mut d = vec![Detector::Lexicon];
    if cfg!(feature = "semantic") {
        d.push(Detector::Embedding);
    }
    d
}

#[derive(Debug, Default)]
struct Figures {
    tp: u32,
    fp: u32,
    fn_: u32,
    tn: u32,
    missed: Vec<String>,
    false_flags: Vec<String>,
}

impl Figures {
    fn precision(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fp).max(1))
    }
    fn recall(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1))
    }
}

/// Which offline detector screens the set: the lexicons (the Lambda functions' offline
/// default) or the embedding detector with its exemplar scorer (modctl's).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Detector {
    Lexicon,
    Embedding,
}

async fn apps(root: &Path, detector: Detector) -> Apps {
    let mut apps = Apps::offline(root).await;
    if detector == Detector::Embedding {
        let minilm = workspace_root().join(".cache/models/all-minilm-l6-v2");
        let (root, minilm) = (root.display().to_string(), minilm.display().to_string());
        let pairs = [
            ("MODERATION_BACKEND", "offline"),
            ("MODERATION_OFFLINE_ROOT", root.as_str()),
            ("MODERATION_BUCKET", FIXTURE_BUCKET),
            ("OFFLINE_DETECTOR", "embedding"),
            ("MINILM_DIR", minilm.as_str()),
        ];
        let config = screen_text::Config::from_vars(&Vars::from_pairs(&pairs)).expect("config");
        apps.screen = screen_text::App::build(config)
            .await
            .expect("embedding screen-text");
    }
    apps
}

async fn measure(set: &str, detector: Detector) -> Figures {
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = apps(dir.path(), detector).await;
    let file = workspace_root().join(format!("tests/data/conversations/{set}.jsonl"));
    let (flagged, count) = screen(dir.path(), &apps, &file).await;
    let labels = labels(set);
    assert_eq!(
        count.assessed as usize,
        labels.len(),
        "every conversation assessed"
    );
    let mut f = Figures::default();
    for (id, (label, kind)) in &labels {
        let hit = flagged.iter().any(|c| &c.id == id);
        match (label.as_str(), hit) {
            ("grooming", true) => f.tp += 1,
            ("grooming", false) => {
                f.fn_ += 1;
                f.missed.push(format!("{id} {kind}"));
            }
            (_, true) => {
                f.fp += 1;
                f.false_flags.push(format!("{id} {kind}"));
            }
            _ => f.tn += 1,
        }
    }
    f
}

#[tokio::test]
async fn tuning_sets() {
    for detector in detectors() {
        for set in ["tune", "tune2", "validate"] {
            report_tuning(
                &format!("{set} {detector:?}"),
                &measure(set, detector).await,
            );
        }
    }
}

fn report_tuning(set: &str, f: &Figures) {
    eprintln!(
        "{set}: precision {:.2} recall {:.2} (tp {} fp {} fn {} tn {}); missed {:?}; false flags {:?}",
        f.precision(),
        f.recall(),
        f.tp,
        f.fp,
        f.fn_,
        f.tn,
        f.missed,
        f.false_flags
    );
}

/// The held-out set: written by another author, never read while the patterns, exemplars,
/// weights and gate were chosen. Only its figures are printed. The bar is for the embedding
/// detector with its exemplar scorer (modctl's default); the word patterns alone (what the
/// functions use offline) have a floor of their own.
#[tokio::test]
async fn held_out_conversations_meet_the_bar() {
    for detector in detectors() {
        let f = measure("heldout", detector).await;
        eprintln!(
            "held-out {detector:?}: precision {:.2} recall {:.2} (tp {} fp {} fn {} tn {})",
            f.precision(),
            f.recall(),
            f.tp,
            f.fp,
            f.fn_,
            f.tn
        );
        let (p, r) = match detector {
            Detector::Embedding => (0.8, 0.9),
            Detector::Lexicon => (0.9, 0.6),
        };
        assert!(
            f.recall() >= r && f.precision() >= p,
            "held-out {detector:?}: precision {:.2} recall {:.2}",
            f.precision(),
            f.recall()
        );
    }
}

/// The whole offline chain on a hostile thread: the conversation is judged against the
/// policy's grooming section with its passage cited, listed in the report JSON, and shown in
/// the page (in Chromium) with the evidence marked, the ages named and the players' text inert.
#[tokio::test]
async fn a_flagged_conversation_reaches_the_report_and_the_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = Apps::offline(dir.path()).await;
    let key = "incoming/text/hostile-thread.jsonl";
    let dest = dir.path().join(FIXTURE_BUCKET).join(key);
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    std::fs::copy(
        workspace_root().join("tests/data/conversations/hostile-thread.jsonl"),
        &dest,
    )
    .expect("copy");
    moderation_core::chain::delivery::run_chain(
        FIXTURE_BUCKET,
        vec![key.to_string()],
        |stage, obj| {
            let apps = &apps;
            async move { dispatch(apps, stage, &obj.key).await }
        },
    )
    .await
    .expect("chain");
    let id = keys::source_id(FIXTURE_BUCKET, key);
    let json: serde_json::Value = read_doc(dir.path(), &keys::report_json_key(&id));
    let convs = json["conversations"].as_array().expect("conversations[]");
    assert_eq!(convs.len(), 1, "{convs:?}");
    let c = &convs[0];
    assert_eq!(c["id"], "match-<b>7</b>");
    assert_eq!(c["verdict"], "violation", "{c}");
    assert_eq!(
        c["users"],
        serde_json::json!(["helper<script>", "kid_2014"])
    );
    assert_eq!(
        c["evidence"],
        serde_json::json!(["line-1", "line-3", "line-5"])
    );
    let names: Vec<&str> = c["signals"]
        .as_array()
        .expect("signals")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"secrecy") && names.contains(&"image_request"),
        "{names:?}"
    );
    let refs = c["evaluation"]["references"]
        .as_array()
        .expect("references");
    assert!(
        refs.iter()
            .any(|r| r["text"].as_str().is_some_and(|t| t.contains("Grooming"))),
        "{refs:?}"
    );
    assert_eq!(json["summary"]["conversations"]["assessed"], 2);
    assert_eq!(json["summary"]["conversations"]["violations"], 1);

    let Some(browser) = moderation_tests::chromium_or_skip() else {
        return;
    };
    let page = dir
        .path()
        .join(FIXTURE_BUCKET)
        .join(keys::report_html_key(&id));
    let dom = moderation_tests::dump_dom(&browser, &moderation_tests::file_url(&page), 0);
    assert_eq!(
        dom.matches("class=\"item conversation violation\"").count(),
        1,
        "{dom}"
    );
    assert_eq!(dom.matches("<li class=\"evidence\"").count(), 3, "{dom}");
    assert!(dom.contains("(under-13)") && dom.contains("(18+)"), "{dom}");
    assert!(dom.contains("data-k=\"conversations\">1<"), "{dom}");
    assert!(
        !dom.contains("<script") && !dom.contains("<img"),
        "player text made elements"
    );
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"), "{dom}");
}

/// Ordinary game chat (the sample uploads: trash talk, threats, scams, other languages) has
/// no conversation over the gate, and the item verdicts are what they were: signals add to a
/// conversation's risk, never to a line's verdict.
#[tokio::test]
async fn ordinary_sample_chat_flags_no_conversation() {
    for detector in detectors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let apps = apps(dir.path(), detector).await;
        let keys = moderation_tests::stage_uploads(dir.path());
        let mut assessed = 0;
        for key in keys {
            dispatch(&apps, Stage::ScreenText, &key)
                .await
                .expect("screen");
            let doc: StageDocument = read_doc(
                dir.path(),
                &keys::screened_key(&keys::source_id(FIXTURE_BUCKET, &key)),
            );
            let count = doc.conversation_count.expect("counted");
            assessed += count.assessed;
            assert!(
                doc.conversations.is_empty(),
                "{key} ({detector:?}): {:?}",
                doc.conversations
            );
        }
        assert!(assessed >= 4, "{assessed}");
    }
}
