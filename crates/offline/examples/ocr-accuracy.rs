//! How well the offline OCR (Tesseract, three passes) reads chat lines as players post them:
//! the pictures `crates/offline/scripts/render-ocr-set.py` renders (dark and light chat
//! screenshots, meme captions over a noisy background), each against the text drawn into it.
//! Prints, per style, the character error rate and whether screening (the offline detector +
//! the rule list, threshold 0.5) flags the read text exactly when it flags the true text. With
//! feature `semantic` (and `make models`) the detector is modctl's default, the MiniLM head;
//! without it, the lexicons the Lambda binaries run.
//!
//!   cargo run --release -p moderation-offline --features semantic --example ocr-accuracy -- target/ocr-set

use std::collections::BTreeMap;
use std::path::PathBuf;

use moderation_core::ports::{ImageInput, ImageTextReader, ToxicityDetector};
use moderation_core::text::rules::RuleFilter;
use moderation_offline::TesseractText;

#[cfg(feature = "semantic")]
fn detector() -> Result<Box<dyn ToxicityDetector>, String> {
    let dir = std::env::var_os("MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".cache/models/all-minilm-l6-v2"));
    let d = moderation_offline::text::embedding::EmbeddingDetector::load(&dir)
        .map_err(|e| format!("{e} (make models)"))?;
    Ok(Box::new(d))
}

#[cfg(not(feature = "semantic"))]
fn detector() -> Result<Box<dyn ToxicityDetector>, String> {
    let d = moderation_offline::OfflineDetector::embedded().map_err(|e| e.to_string())?;
    Ok(Box::new(d))
}

/// Lower case, letters and digits, single spaces: what the score depends on.
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[derive(Default)]
struct Tally {
    n: usize,
    cer_sum: f64,
    exact: usize,
    kept: usize,
    abuse: usize,
    abuse_flagged_truth: usize,
    abuse_flagged_read: usize,
    benign_flagged_read: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/ocr-set".into()),
    );
    let expected = std::fs::read_to_string(dir.join("expected.tsv"))
        .map_err(|e| format!("{}: {e} (render it first)", dir.display()))?;
    let detector = detector()?;
    eprintln!("detector: {}", detector.name());
    let rules = RuleFilter::default_list().map_err(|e| e.to_string())?;
    let reader = TesseractText::default();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for row in expected.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = row.splitn(4, '\t').collect();
        let [file, style, kind, truth] = cols[..] else {
            return Err(format!("bad row {row:?}"));
        };
        let bytes = std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
        let prepared = moderation_core::media::picture::prepare(&bytes, "png")?;
        let read = reader
            .lines(&ImageInput {
                prepared: &prepared,
                bucket: "ocr",
                key: file,
                version: None,
            })
            .await
            .map_err(|e| format!("{file}: {e}"))?;
        let mut text = read
            .lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        // A chat line's `name:` prefix is not part of the message.
        if style.starts_with("chat") {
            if let Some((_, rest)) = text.split_once(':') {
                text = rest.to_string();
            }
        }
        let scores = detector
            .detect(&[truth.to_string(), text.clone()])
            .await
            .map_err(|e| e.to_string())?;
        let flag = |i: usize, t: &str| {
            scores.get(i).is_some_and(|s| s.toxicity >= 0.5) || !rules.scan(t).is_empty()
        };
        let (flag_truth, flag_read) = (flag(0, truth), flag(1, &text));
        let (got, want) = (normalise(&text), normalise(truth));
        let cer = levenshtein(&got, &want) as f64 / want.chars().count().max(1) as f64;
        for key in [style.to_string(), "all".to_string()] {
            let t = tallies.entry(key).or_default();
            t.n += 1;
            t.cer_sum += cer.min(1.0);
            t.exact += usize::from(got == want);
            t.kept += usize::from(flag_truth == flag_read);
            if kind == "abuse" {
                t.abuse += 1;
                t.abuse_flagged_truth += usize::from(flag_truth);
                t.abuse_flagged_read += usize::from(flag_read);
            } else {
                t.benign_flagged_read += usize::from(flag_read);
            }
        }
        if cer > 0.2 {
            eprintln!("{file}: read {got:?}, drawn {want:?}");
        }
    }
    println!("| style | pictures | mean CER | read exactly | same flag as the true text | abuse flagged (true text / read text) | benign flagged (read) |");
    println!("|---|---|---|---|---|---|---|");
    for (style, t) in &tallies {
        println!(
            "| {style} | {} | {:.3} | {}/{} | {}/{} | {}/{} / {}/{} | {}/{} |",
            t.n,
            t.cer_sum / t.n as f64,
            t.exact,
            t.n,
            t.kept,
            t.n,
            t.abuse_flagged_truth,
            t.abuse,
            t.abuse_flagged_read,
            t.abuse,
            t.benign_flagged_read,
            t.n - t.abuse
        );
    }
    Ok(())
}
