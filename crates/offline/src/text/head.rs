//! The trained head of the offline embedding detector over all-MiniLM-L6-v2 sentence
//! embeddings: one logistic regression per label, and a bank of the training lines' embeddings
//! for a k-nearest-neighbour vote. A label's probability is the geometric mean of the two, so a
//! line must both fall on the abusive side of the regression's plane and sit among abusive
//! training lines: everyday chat far from anything in the set ("can we do one more round before
//! i sleep") no longer gets the regression's confident extrapolation (measured in docs/architecture.md).
//! The labelled set (`data/detector/train.tsv`) is part of the product; `make train-detector`
//! retrains from it and writes `data/detector/head.json` and `data/detector/bank.bin` with the
//! set's sha256 and the held-out metrics.
//!
//! Training and scoring are plain Rust over `f32` vectors, so the head loads (and its
//! arithmetic is tested) without the model; only embedding needs the `semantic` feature.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The seven Comprehend categories and the policy's rule category `scam`.
pub const LABELS: [&str; 8] = [
    "profanity",
    "hate_speech",
    "sexual",
    "insult",
    "violence_or_threat",
    "graphic",
    "harassment_or_abuse",
    "scam",
];

pub const DEFAULT_TRAINING_SET: &str = include_str!("../../data/detector/train.tsv");
pub const DEFAULT_HEAD: &str = include_str!("../../data/detector/head.json");
pub const DEFAULT_BANK: &[u8] = include_bytes!("../../data/detector/bank.bin");

/// Neighbours that vote, and the power of their cosine similarity that weighs each vote.
pub const KNN_K: usize = 10;
pub const KNN_POWER: i32 = 4;

/// The end of a rule hit's name when a head label that is not a Comprehend category (`scam`)
/// fired: a classifier's judgement, not a listed term.
pub const RULE_SUFFIX: &str = ":embedding head";

/// The training lines' embeddings, stored quantised to `i8` (unit vectors: error < 0.4 % per
/// component) and held as `f32` (6 MB for 4k lines: the vote then vectorises), with each line's
/// labels as a bit mask.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bank {
    pub dim: usize,
    rows: Vec<f32>,
    masks: Vec<u16>,
}

fn quantise(c: f32) -> i8 {
    (c * 127.0).round().clamp(-127.0, 127.0) as i8
}

const BANK_MAGIC: &[u8; 8] = b"MODBANK1";

impl Bank {
    pub fn new(x: &[Vec<f32>], examples: &[Example]) -> Bank {
        let dim = x.first().map_or(0, Vec::len);
        // Quantised now, so a trained bank votes exactly as the same bank read back.
        let rows = x
            .iter()
            .flat_map(|v| v.iter().map(|c| f32::from(quantise(*c)) / 127.0))
            .collect();
        let masks = examples
            .iter()
            .map(|e| e.labels.iter().fold(0u16, |m, l| m | (1 << l)))
            .collect();
        Bank { dim, rows, masks }
    }

    pub fn len(&self) -> usize {
        self.masks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }

    /// `MODBANK1`, dim and rows as little-endian u32, then per row a u16 label mask and `dim`
    /// signed bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = BANK_MAGIC.to_vec();
        out.extend((self.dim as u32).to_le_bytes());
        out.extend((self.len() as u32).to_le_bytes());
        for (i, m) in self.masks.iter().enumerate() {
            out.extend(m.to_le_bytes());
            out.extend(
                self.rows[i * self.dim..(i + 1) * self.dim]
                    .iter()
                    .map(|c| quantise(*c) as u8),
            );
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Bank, Error> {
        let bad = |why: &str| Error::HeadShape(format!("neighbour bank: {why}"));
        let header = bytes
            .get(..16)
            .ok_or_else(|| bad("shorter than its header"))?;
        if &header[..8] != BANK_MAGIC {
            return Err(bad("not a MODBANK1 file"));
        }
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
                as usize
        };
        let (dim, n) = (word(8), word(12));
        let body = &bytes[16..];
        let expected = dim.checked_add(2).and_then(|row| n.checked_mul(row));
        if expected != Some(body.len()) || dim == 0 {
            return Err(bad(&format!(
                "{} bytes for {n} rows of dim {dim}",
                body.len()
            )));
        }
        let mut rows = Vec::with_capacity(n * dim);
        let mut masks = Vec::with_capacity(n);
        for row in body.chunks_exact(dim + 2) {
            masks.push(u16::from_le_bytes([row[0], row[1]]));
            rows.extend(row[2..].iter().map(|b| f32::from(*b as i8) / 127.0));
        }
        Ok(Bank { dim, rows, masks })
    }

    /// The rows of lines with no label: the ordinary chat the detector was trained on.
    pub fn unlabelled_rows(&self) -> Vec<Vec<f32>> {
        self.rows
            .chunks_exact(self.dim.max(1))
            .zip(&self.masks)
            .filter(|(_, m)| **m == 0)
            .map(|(r, _)| r.to_vec())
            .collect()
    }

    /// Per label, the similarity-weighted share of the `k` nearest lines that carry it.
    pub fn vote(&self, embedding: &[f32], labels: usize) -> Vec<f32> {
        let mut near: Vec<(f32, u16)> = Vec::with_capacity(KNN_K + 1);
        for (row, mask) in self.rows.chunks_exact(self.dim.max(1)).zip(&self.masks) {
            let sim = dot_lanes(row, embedding);
            if near.len() < KNN_K || sim > near[near.len() - 1].0 {
                let at = near.partition_point(|(s, _)| *s >= sim);
                near.insert(at, (sim, *mask));
                near.truncate(KNN_K);
            }
        }
        let weight = |s: f32| s.max(0.0).powi(KNN_POWER);
        let total: f32 = near.iter().map(|(s, _)| weight(*s)).sum();
        (0..labels)
            .map(|l| {
                if total <= 0.0 {
                    return 0.0;
                }
                near.iter()
                    .filter(|(_, m)| m & (1 << l) != 0)
                    .map(|(s, _)| weight(*s))
                    .sum::<f32>()
                    / total
            })
            .collect()
    }
}

/// One labelled line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Indexes into [`LABELS`]; empty for a benign (`none`) line.
    pub labels: Vec<usize>,
    pub text: String,
    pub source: String,
}

impl Example {
    pub fn has(&self, label: usize) -> bool {
        self.labels.contains(&label)
    }
}

/// Parse `labels<TAB>text<TAB>source` lines (`#` comments, blank lines ignored). Labels are
/// comma-separated names from [`LABELS`], or `none`.
pub fn parse_tsv(text: &str) -> Result<Vec<Example>, Error> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| Error::TrainingSet {
            line: n + 1,
            reason,
        };
        let mut fields = line.split('\t');
        let (Some(labels), Some(text), Some(source), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad(
                "expected three tab-separated fields: labels, text, source".into(),
            ));
        };
        let labels = match labels.trim() {
            "none" => Vec::new(),
            list => list
                .split(',')
                .map(|l| {
                    LABELS
                        .iter()
                        .position(|k| *k == l.trim())
                        .ok_or_else(|| bad(format!("unknown label {l:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if text.trim().is_empty() {
            return Err(bad("empty text".into()));
        }
        out.push(Example {
            labels,
            text: text.trim().to_string(),
            source: source.trim().to_string(),
        });
    }
    Ok(out)
}

/// The fixed split: a line is held out (never trained on) when the first byte of the sha256 of
/// its lower-cased text is below 52 (about 20 %). Adding lines never moves old ones across.
pub fn is_held_out(text: &str) -> bool {
    Sha256::digest(text.trim().to_lowercase().as_bytes())[0] < 52
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Per-label logistic regressions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub labels: Vec<String>,
    pub dim: usize,
    /// `labels.len()` rows of `dim` weights.
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
    /// Per-label decision points, chosen by cross-validation on the training lines (see
    /// [`choose_thresholds`]); empty means 0.5 for every label.
    #[serde(default)]
    pub thresholds: Vec<f32>,
    /// What it was trained on, for audit: the set's sha256 and how many lines were used.
    pub training_set_sha256: String,
    pub trained_lines: usize,
    pub held_out_lines: usize,
    pub embedding_model: String,
    /// sha256 of the neighbour bank written beside the head; empty when there is none.
    #[serde(default)]
    pub bank_sha256: String,
    #[serde(skip)]
    pub bank: Option<Bank>,
}

/// Training settings: L2 strength, epochs of full-batch gradient descent, learning rate.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub l2: f32,
    pub epochs: usize,
    pub learning_rate: f32,
    /// Positive lines weigh `(negatives / positives) ^ balance`: 0 is unweighted, 1 balanced.
    pub balance: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            l2: 1e-4,
            epochs: 3000,
            learning_rate: 8.0,
            balance: 0.5,
        }
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// A dot product in eight running sums, which the compiler turns into SIMD (a single sum
/// must keep its order and stays scalar): the neighbour vote is 4k of these per line.
pub(crate) fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((l, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *l += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Head {
    /// The committed head and its neighbour bank.
    pub fn embedded() -> Result<Self, Error> {
        Self::from_json(DEFAULT_HEAD)?.with_bank(DEFAULT_BANK)
    }

    /// Attach the bank the head was trained with (its sha256 must match).
    pub fn with_bank(mut self, bytes: &[u8]) -> Result<Self, Error> {
        let sha = sha256_hex(bytes);
        if sha != self.bank_sha256 {
            return Err(Error::HeadShape(format!(
                "neighbour bank sha256 {sha} is not the {} the head was trained with",
                self.bank_sha256
            )));
        }
        let bank = Bank::from_bytes(bytes)?;
        if bank.dim != self.dim {
            return Err(Error::HeadShape(format!(
                "neighbour bank has dim {}, the head {}",
                bank.dim, self.dim
            )));
        }
        self.bank = Some(bank);
        Ok(self)
    }

    pub fn from_json(text: &str) -> Result<Self, Error> {
        let head: Head = serde_json::from_str(text).map_err(Error::HeadParse)?;
        // The bank stores each line's labels as a 16-bit mask.
        let shape_ok = head.labels.len() <= 16
            && head.weights.len() == head.labels.len()
            && head.bias.len() == head.labels.len()
            && head.weights.iter().all(|w| w.len() == head.dim);
        if !shape_ok {
            return Err(Error::HeadShape(format!(
                "{} labels, {} weight rows, {} biases, dim {}",
                head.labels.len(),
                head.weights.len(),
                head.bias.len(),
                head.dim
            )));
        }
        Ok(head)
    }

    /// Fit one logistic regression per label. `x` are unit-length embeddings.
    pub fn train(x: &[Vec<f32>], examples: &[Example], opts: TrainOptions) -> Head {
        let dim = x.first().map_or(0, Vec::len);
        let n = x.len().max(1) as f32;
        let mut weights = Vec::with_capacity(LABELS.len());
        let mut bias = Vec::with_capacity(LABELS.len());
        for label in 0..LABELS.len() {
            let y: Vec<f32> = examples
                .iter()
                .map(|e| if e.has(label) { 1.0 } else { 0.0 })
                .collect();
            let positives = y.iter().filter(|v| **v > 0.5).count().max(1) as f32;
            let pos_weight = ((y.len() as f32 - positives).max(1.0) / positives).powf(opts.balance);
            let mut w = vec![0.0f32; dim];
            let mut b = 0.0f32;
            let mut grad = vec![0.0f32; dim];
            for _ in 0..opts.epochs {
                grad.iter_mut().for_each(|g| *g = 0.0);
                let mut grad_b = 0.0f32;
                for (xi, yi) in x.iter().zip(&y) {
                    let weight = if *yi > 0.5 { pos_weight } else { 1.0 };
                    let err = weight * (sigmoid(dot(&w, xi) + b) - yi);
                    for (g, v) in grad.iter_mut().zip(xi) {
                        *g += err * v;
                    }
                    grad_b += err;
                }
                for (wj, gj) in w.iter_mut().zip(&grad) {
                    *wj -= opts.learning_rate * (gj / n + opts.l2 * *wj);
                }
                b -= opts.learning_rate * grad_b / n;
            }
            weights.push(w);
            bias.push(b);
        }
        Head {
            labels: LABELS.iter().map(|s| s.to_string()).collect(),
            dim,
            weights,
            bias,
            thresholds: Vec::new(),
            training_set_sha256: String::new(),
            trained_lines: x.len(),
            held_out_lines: 0,
            embedding_model: String::new(),
            bank_sha256: String::new(),
            bank: Some(Bank::new(x, examples)),
        }
    }

    /// The decision point of label `i`.
    pub fn threshold(&self, i: usize) -> f32 {
        self.thresholds.get(i).copied().unwrap_or(0.5)
    }

    /// The probability of each label, in `labels` order: the regression's, and with a bank the
    /// geometric mean of the regression's and the neighbours' vote.
    pub fn predict(&self, embedding: &[f32]) -> Vec<f32> {
        let linear = self
            .weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| sigmoid(dot(w, embedding) + b));
        match &self.bank {
            Some(bank) if !bank.is_empty() => linear
                .zip(bank.vote(embedding, self.labels.len()))
                .map(|(p, v)| (p * v).sqrt())
                .collect(),
            _ => linear.collect(),
        }
    }
}

/// The share of flagged lines that must be abusive when the decision point is chosen.
pub const TARGET_PRECISION: f64 = 0.9;

/// Out-of-fold probabilities by `folds`-fold cross-validation (fold = index mod `folds`).
pub fn cross_validate(
    x: &[Vec<f32>],
    examples: &[Example],
    folds: usize,
    opts: TrainOptions,
) -> Vec<Vec<f32>> {
    let mut out = vec![Vec::new(); x.len()];
    for fold in 0..folds {
        let (train_x, train_e): (Vec<Vec<f32>>, Vec<Example>) = x
            .iter()
            .zip(examples)
            .enumerate()
            .filter(|(i, _)| i % folds != fold)
            .map(|(_, (v, e))| (v.clone(), e.clone()))
            .unzip();
        let head = Head::train(&train_x, &train_e, opts);
        for (i, v) in x.iter().enumerate().filter(|(i, _)| i % folds == fold) {
            out[i] = head.predict(v);
        }
    }
    out
}

/// One decision point for every label: of 0.40..=0.90, the one with the best "any abuse" F1
/// among those whose precision on `probs` reaches [`TARGET_PRECISION`] (the most precise when
/// none does). Per-label points chosen for per-label precision were tried: they count a threat
/// read as harassment as an error, and cost a third of the recall for no precision.
pub fn choose_threshold(probs: &[Vec<f32>], examples: &[Example]) -> f32 {
    let grid: Vec<f32> = (0..=10).map(|k| 0.4 + 0.05 * k as f32).collect();
    let scored: Vec<(f32, LabelMetrics)> = grid
        .iter()
        .map(|t| (*t, evaluate(probs, examples, *t).1))
        .collect();
    scored
        .iter()
        .filter(|(_, m)| m.precision() >= TARGET_PRECISION)
        .max_by(|a, b| a.1.f1().total_cmp(&b.1.f1()))
        .or_else(|| {
            scored
                .iter()
                .max_by(|a, b| a.1.precision().total_cmp(&b.1.precision()))
        })
        .map_or(0.5, |(t, _)| *t)
}

/// Precision, recall and F1 of one label at a decision threshold.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LabelMetrics {
    pub true_pos: usize,
    pub false_pos: usize,
    pub false_neg: usize,
}

impl LabelMetrics {
    /// `true_pos / (true_pos + other)`; 1 when nothing was predicted (or nothing was there).
    fn share(&self, other: usize) -> f64 {
        match self.true_pos + other {
            0 => 1.0,
            d => self.true_pos as f64 / d as f64,
        }
    }

    pub fn precision(&self) -> f64 {
        self.share(self.false_pos)
    }

    pub fn recall(&self) -> f64 {
        self.share(self.false_neg)
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    fn count(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.true_pos += 1,
            (true, false) => self.false_pos += 1,
            (false, true) => self.false_neg += 1,
            (false, false) => {}
        }
    }
}

/// Per-label metrics, plus "any abuse" (some label predicted vs some label true), of
/// predictions `probs[i][label]` at `threshold`.
pub fn evaluate(
    probs: &[Vec<f32>],
    examples: &[Example],
    threshold: f32,
) -> (Vec<LabelMetrics>, LabelMetrics) {
    evaluate_at(probs, examples, &[threshold; LABELS.len()])
}

/// [`evaluate`] with a decision point per label.
pub fn evaluate_at(
    probs: &[Vec<f32>],
    examples: &[Example],
    thresholds: &[f32],
) -> (Vec<LabelMetrics>, LabelMetrics) {
    let mut per = vec![LabelMetrics::default(); LABELS.len()];
    let mut any = LabelMetrics::default();
    for (p, e) in probs.iter().zip(examples) {
        let mut predicted_any = false;
        for (label, m) in per.iter_mut().enumerate() {
            let t = thresholds.get(label).copied().unwrap_or(0.5);
            let predicted = p.get(label).is_some_and(|v| *v >= t);
            predicted_any |= predicted;
            m.count(predicted, e.has(label));
        }
        any.count(predicted_any, !e.labels.is_empty());
    }
    (per, any)
}

/// A Markdown table of `evaluate`'s result.
pub fn metrics_table(per: &[LabelMetrics], any: &LabelMetrics) -> String {
    let mut out =
        String::from("| label | precision | recall | F1 | support |\n|---|---|---|---|---|\n");
    let row = |name: &str, m: &LabelMetrics| {
        format!(
            "| {name} | {:.2} | {:.2} | {:.2} | {} |\n",
            m.precision(),
            m.recall(),
            m.f1(),
            m.true_pos + m.false_neg
        )
    };
    for (label, m) in LABELS.iter().zip(per) {
        out.push_str(&row(label, m));
    }
    out.push_str(&row("any abuse", any));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_set_parses_and_covers_every_label() {
        let set = parse_tsv(DEFAULT_TRAINING_SET).expect("parses");
        assert!(set.len() >= 1500, "{}", set.len());
        for (i, label) in LABELS.iter().enumerate() {
            let n = set.iter().filter(|e| e.has(i)).count();
            assert!(n >= 60, "{label}: {n}");
        }
        let benign = set.iter().filter(|e| e.labels.is_empty()).count();
        assert!(benign >= 500, "{benign}");
        let held = set.iter().filter(|e| is_held_out(&e.text)).count();
        let share = held as f64 / set.len() as f64;
        assert!((0.15..0.25).contains(&share), "{share}");
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_tsv("insult\tyou idiot\town\nthreat\tx\town\n").expect_err("label");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_tsv("insult\tyou idiot\n").expect_err("fields");
        assert!(e.to_string().contains("three"), "{e}");
    }

    #[test]
    fn training_separates_a_toy_problem() {
        // Two clusters on the unit circle, one per label.
        let examples: Vec<Example> = (0..40)
            .map(|i| Example {
                labels: if i % 2 == 0 { vec![0] } else { Vec::new() },
                text: format!("{i}"),
                source: String::new(),
            })
            .collect();
        let x: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let a = if i % 2 == 0 { 0.3f32 } else { 2.8 } + (i as f32) * 0.001;
                vec![a.cos(), a.sin()]
            })
            .collect();
        let head = Head::train(&x, &examples, TrainOptions::default());
        let probs: Vec<Vec<f32>> = x.iter().map(|v| head.predict(v)).collect();
        let (per, _) = evaluate(&probs, &examples, 0.5);
        assert_eq!(per[0].f1(), 1.0, "{per:?}");
        let bank = head.bank.as_ref().expect("trained with a bank").to_bytes();
        let mut saved = head.clone();
        saved.bank_sha256 = sha256_hex(&bank);
        let json = serde_json::to_string(&saved).expect("serialises");
        let loaded = Head::from_json(&json)
            .and_then(|h| h.with_bank(&bank))
            .expect("loads");
        assert_eq!(loaded.predict(&x[0]), saved.predict(&x[0]));
        assert!(Head::from_json(&json)
            .expect("loads")
            .with_bank(&bank[..bank.len() - 1])
            .is_err());
        assert!(Bank::from_bytes(b"MODBANK1\x02\0\0\0\x05\0\0\0").is_err());
    }

    #[test]
    fn the_committed_head_matches_the_committed_set() {
        let head = Head::embedded().expect("head loads");
        assert_eq!(head.labels, LABELS);
        assert_eq!(
            head.training_set_sha256,
            sha256_hex(DEFAULT_TRAINING_SET.as_bytes()),
            "train.tsv changed: run `make train-detector`"
        );
    }
}
