//! The offline detector with a second signal: all-MiniLM-L6-v2 sentence embeddings and a
//! trained per-label head ([`crate::text::head`]) beside the linear profanity model and
//! lexicons.
//! The lexicons are precise; the head generalises to abuse phrased in ways no lexicon lists.
//! Category scores are the higher of the two; the head's `scam` (a rule category, not one of
//! Comprehend's seven) becomes a rule hit (`scam:embedding head`, the probability beside the
//! text) so that the gate and the policy evaluator see it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use moderation_core::model::{Category, RuleHit};
use moderation_core::ports::{SegmentLimits, ToxicityDetector, ToxicityScore};
use moderation_core::Result as CoreResult;

use crate::error::Error;
use crate::policy::semantic::MiniLm;
use crate::text::detector::OfflineDetector;
use crate::text::exemplars::{self, ExemplarScorer};
use crate::text::head::Head;

pub const NAME: &str =
    "offline-toxicity (alt-profanity-check 1.9.1 + lexicons + all-MiniLM-L6-v2 trained head)";

/// The score of a head detection at its decision point (it rises to 1 with the probability).
pub const DETECTED: f64 = 0.7;

/// Repeated lines ("gg", "lol") are embedded once; the cache is dropped when it fills.
const CACHE_LINES: usize = 20_000;

struct Inner {
    model: MiniLm,
    head: Head,
    base: OfflineDetector,
    cache: Mutex<HashMap<String, Vec<f32>>>,
    /// Built on first use: embedding the exemplars costs about a second.
    exemplars: OnceLock<ExemplarScorer>,
}

#[derive(Clone)]
pub struct EmbeddingDetector {
    inner: Arc<Inner>,
}

impl EmbeddingDetector {
    pub fn new(model: MiniLm, head: Head, base: OfflineDetector) -> Result<Self, Error> {
        let probe = model.embed(&["probe"])?;
        let dim = probe.first().map_or(0, Vec::len);
        if dim != head.dim {
            return Err(Error::HeadShape(format!(
                "the head expects {}-dimensional embeddings, the model gives {dim}",
                head.dim
            )));
        }
        Ok(EmbeddingDetector {
            inner: Arc::new(Inner {
                model,
                head,
                base,
                cache: Mutex::new(HashMap::new()),
                exemplars: OnceLock::new(),
            }),
        })
    }

    /// The model in `dir` with the committed head and lexicons.
    pub fn load(dir: &std::path::Path) -> Result<Self, Error> {
        Self::new(
            MiniLm::load(dir)?,
            Head::embedded()?,
            OfflineDetector::embedded()?,
        )
    }

    /// Head probabilities per label for each text (blocking: runs the model).
    pub fn head_probabilities(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let head = &self.inner.head;
        Ok(self
            .embeddings(texts)?
            .iter()
            .map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    head.predict(e)
                }
            })
            .collect())
    }

    /// The exemplar scorer, built from the shipped exemplars on first use.
    fn exemplars(&self) -> Result<&ExemplarScorer, Error> {
        if let Some(s) = self.inner.exemplars.get() {
            return Ok(s);
        }
        let rows = exemplars::parse(exemplars::DEFAULT_EXEMPLARS)?;
        let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
        let vectors = self.inner.model.embed(&texts)?;
        let ordinary = self
            .inner
            .head
            .bank
            .as_ref()
            .map(|b| b.unlabelled_rows())
            .unwrap_or_default();
        let kinds = rows.into_iter().map(|(k, _)| k).collect();
        let scorer = ExemplarScorer::new(kinds, vectors, ordinary);
        Ok(self.inner.exemplars.get_or_init(|| scorer))
    }

    /// Unit embeddings for each text, from the cache where the text was seen (blocking).
    fn embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let inner = &self.inner;
        let mut vectors: Vec<Option<Vec<f32>>> = {
            let cache = inner.cache.lock().unwrap_or_else(|p| p.into_inner());
            texts.iter().map(|t| cache.get(*t).cloned()).collect()
        };
        let missing: Vec<&str> = texts
            .iter()
            .zip(&vectors)
            .filter(|(_, v)| v.is_none())
            .map(|(t, _)| *t)
            .collect();
        if !missing.is_empty() {
            // Similar lengths batch together: less padding in each forward pass.
            let mut order: Vec<usize> = (0..missing.len()).collect();
            order.sort_by_key(|i| missing[*i].len());
            let sorted: Vec<&str> = order.iter().map(|i| missing[*i]).collect();
            let embedded = inner.model.embed(&sorted)?;
            let mut by_text: HashMap<&str, Vec<f32>> = HashMap::new();
            for (t, e) in sorted.iter().zip(embedded) {
                by_text.insert(t, e);
            }
            let mut cache = inner.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() + by_text.len() > CACHE_LINES {
                cache.clear();
            }
            for (t, v) in texts.iter().zip(vectors.iter_mut()) {
                if v.is_none() {
                    if let Some(e) = by_text.get(t) {
                        cache.insert(t.to_string(), e.clone());
                        *v = Some(e.clone());
                    }
                }
            }
        }
        Ok(vectors.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Scores for each text: lexicons and the linear model, raised by the head.
    pub fn score_all(&self, texts: &[&str]) -> Result<Vec<ToxicityScore>, Error> {
        let vectors = self.embeddings(texts)?;
        let exemplars = self.exemplars()?;
        let head = &self.inner.head;
        Ok(texts
            .iter()
            .zip(vectors)
            .map(|(text, e)| {
                let p = if e.is_empty() {
                    Vec::new()
                } else {
                    head.predict(&e)
                };
                let mut score = self.inner.base.score(text);
                score.signals = exemplars.signals(&e);
                for (i, (label, prob)) in head.labels.iter().zip(&p).enumerate() {
                    // A label counts from its decision point, where cross-validation measured
                    // precision 0.9: a detection scores DETECTED and up, enough to clear the
                    // gate and a policy bar set that high. Under the point a probability ranks
                    // an item but cannot lift it over a 0.5 gate.
                    let point = f64::from(head.threshold(i));
                    let prob = f64::from(*prob);
                    let detected = prob >= point;
                    let signal = if detected {
                        DETECTED + (1.0 - DETECTED) * (prob - point) / (1.0 - point).max(1e-6)
                    } else {
                        prob * 0.49 / point
                    };
                    match Category::parse(label) {
                        Some(c) => score.categories.raise(c, signal),
                        None if detected => score.rule_hits.push(RuleHit {
                            rule: format!("{label}{}", crate::text::head::RULE_SUFFIX),
                            matched: format!(
                                "{} (p {prob:.2})",
                                text.chars().take(120).collect::<String>()
                            ),
                        }),
                        None => {}
                    }
                }
                score.toxicity = score.categories.max();
                score
            })
            .collect())
    }
}

#[async_trait]
impl ToxicityDetector for EmbeddingDetector {
    fn name(&self) -> &str {
        NAME
    }

    fn limits(&self) -> SegmentLimits {
        // One forward pass per request; MiniLM reads at most 256 tokens, so longer chunks would
        // only be truncated.
        SegmentLimits {
            max_segments: 32,
            max_segment_bytes: 1024,
            max_request_bytes: 32 * 1024,
        }
    }

    async fn detect(&self, segments: &[String]) -> CoreResult<Vec<ToxicityScore>> {
        let this = self.clone();
        let texts = segments.to_vec();
        // The forward pass is CPU-bound: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            this.score_all(&refs)
        })
        .await
        .map_err(|e| moderation_core::Error::Input(format!("embedding task failed: {e}")))?
        .map_err(moderation_core::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    use moderation_core::text::rules::RuleFilter;

    use super::*;
    use crate::text::head::{
        evaluate_at, is_held_out, metrics_table, parse_tsv, LabelMetrics, DEFAULT_TRAINING_SET,
        LABELS,
    };

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Loaded once; `None` (after a skip line) when the model was never fetched.
    fn detector() -> Option<&'static EmbeddingDetector> {
        static DETECTOR: OnceLock<Option<EmbeddingDetector>> = OnceLock::new();
        DETECTOR
            .get_or_init(|| {
                let dir = crate::policy::semantic::test_model_dir()?;
                Some(EmbeddingDetector::load(&dir).expect("detector loads"))
            })
            .as_ref()
    }

    /// The head alone on the held-out fifth of the training set (never trained on), at its
    /// decision point: a floor per label a little under what `make train-detector` printed.
    #[test]
    fn held_out_split_meets_the_f1_floors() {
        let Some(d) = detector() else { return };
        let held: Vec<_> = parse_tsv(DEFAULT_TRAINING_SET)
            .expect("set")
            .into_iter()
            .filter(|e| is_held_out(&e.text))
            .collect();
        let texts: Vec<&str> = held.iter().map(|e| e.text.as_str()).collect();
        let probs = d.head_probabilities(&texts).expect("scores");
        let (per, any) = evaluate_at(&probs, &held, &d.inner.head.thresholds);
        eprintln!("{}", metrics_table(&per, &any));
        // Measured at 0.50: 0.69 0.87 0.73 0.78 0.71 0.91 0.71 0.81; any abuse P 0.90 R 0.76.
        let floors = [0.63, 0.81, 0.67, 0.72, 0.65, 0.85, 0.65, 0.75];
        for ((label, m), floor) in LABELS.iter().zip(&per).zip(floors) {
            assert!(m.f1() >= floor, "{label}: F1 {:.2} < {floor}", m.f1());
        }
        assert!(
            any.precision() >= 0.88,
            "any abuse: P {:.2}",
            any.precision()
        );
        assert!(any.f1() >= 0.78, "any abuse: F1 {:.2}", any.f1());
    }

    /// The offline chain's verdict on every line of a labelled set in tests/data: rule filter,
    /// lexicons, linear model and head; the 0.5 gate; the top three policy sections for the
    /// item's retrieval query; the rules evaluator. A line counts as flagged when it ends
    /// `violation` or `needs_review`, and as abusive when it has a label other than
    /// `profanity` (casual swearing is allowed by the sample policy). The chain also scores an
    /// evasive line's revealed reading; these sets are read as written.
    fn judge_set(d: &EmbeddingDetector, file: &str) -> LabelMetrics {
        use moderation_core::model::{Item, Verdict};
        use moderation_core::ports::JudgeRequest;
        use moderation_core::stages::evaluate_policy::retrieval_query;
        use moderation_core::stages::screen_text::over_threshold;

        let text = std::fs::read_to_string(workspace().join("tests/data").join(file))
            .expect("evaluation set");
        let set = parse_tsv(&text).expect("set");
        let rules = RuleFilter::default_list().expect("rules");
        let index = crate::policy::PolicyIndex::load_dir(&workspace().join("infra/policies"))
            .expect("policy");
        let texts: Vec<&str> = set.iter().map(|e| e.text.as_str()).collect();
        let scores = d.score_all(&texts).expect("scores");
        let mut any = LabelMetrics::default();
        let mut misses = Vec::new();
        for (e, s) in set.iter().zip(scores) {
            let mut rule_hits = rules.scan(&e.text);
            rule_hits.extend(s.rule_hits);
            let item = Item {
                toxicity: s.toxicity,
                categories: s.categories,
                rule_hits,
                ..Item::new("line", e.text.clone())
            };
            let flagged = over_threshold(&item, 0.5) && {
                let passages = index.search(&retrieval_query(&item, 0.5), 3);
                let j = crate::policy::judge_by_rules(&JudgeRequest {
                    item: &item,
                    passages: &passages,
                    signals: "",
                    threshold: 0.5,
                    context: &[],
                    conversation: None,
                });
                matches!(j.verdict, Verdict::Violation | Verdict::NeedsReview)
            };
            let abusive = e.labels.iter().any(|l| LABELS[*l] != "profanity");
            match (flagged, abusive) {
                (true, true) => any.true_pos += 1,
                (true, false) => {
                    any.false_pos += 1;
                    misses.push(format!("false flag: {}", e.text));
                }
                (false, true) => {
                    any.false_neg += 1;
                    misses.push(format!("missed: {}", e.text));
                }
                (false, false) => {}
            }
        }
        // Misses are printed for the sets already read; the unseen one keeps its lines unread.
        let shown = if file == UNSEEN { Vec::new() } else { misses };
        eprintln!(
            "{file}: P {:.2} R {:.2} F1 {:.2}\n{}",
            any.precision(),
            any.recall(),
            any.f1(),
            shown.join("\n")
        );
        any
    }

    /// Written by a helper who saw neither the training set nor the other evaluation sets, after
    /// the last training round; its lines have not been read while tuning.
    const UNSEEN: &str = "detector-eval-3.tsv";

    #[test]
    fn independent_sets_get_precise_verdicts() {
        let Some(d) = detector() else { return };
        // Measured (P, R): 0.99 0.95 and 0.97 0.96 on the sets read while tuning, 0.91 0.88 on
        // the unseen one.
        for (file, p, r) in [
            ("detector-eval.tsv", 0.95, 0.90),
            ("detector-eval-2.tsv", 0.93, 0.91),
            (UNSEEN, 0.88, 0.84),
        ] {
            let any = judge_set(d, file);
            assert!(
                any.precision() >= p,
                "{file}: precision {:.2}",
                any.precision()
            );
            assert!(any.recall() >= r, "{file}: recall {:.2}", any.recall());
        }
    }

    /// The kinds of abuse the lexicons missed, and benign lines that sound violent.
    #[test]
    fn paraphrased_abuse_is_caught_and_game_talk_is_not() {
        let Some(d) = detector() else { return };
        let abusive = [
            "how old are you? send a pic in private",
            "dm me your login and I'll double your coins",
            "hope you get cancer",
        ];
        let benign = [
            "shoot me a message when you're on",
            "can we do one more round before i sleep",
            "kill the lights before the stream",
            "don't give your password to anyone",
            "hope you feel better soon",
        ];
        let scores = d.score_all(&abusive).expect("scores");
        for (t, s) in abusive.iter().zip(&scores) {
            assert!(s.toxicity >= 0.5 || !s.rule_hits.is_empty(), "{t}: {s:?}");
        }
        let scores = d.score_all(&benign).expect("scores");
        for (t, s) in benign.iter().zip(&scores) {
            assert!(s.toxicity < 0.5 && s.rule_hits.is_empty(), "{t}: {s:?}");
        }
    }
}
