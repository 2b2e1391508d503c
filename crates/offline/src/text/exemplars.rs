//! Conversation signals by similarity, in the manner of Roblox's Sentinel: a message carries
//! a signal when its embedding is close to one of that signal's exemplars (lines written for
//! this project, `data/conversation/exemplars.tsv`) and closer to it than to any ordinary chat
//! line (the detector's benign training lines). It finds the paraphrases no word pattern
//! lists ("ur folks dont need to know"); the contrast keeps "gg, what rank are you" out.

use moderation_core::model::SignalKind;

use crate::error::Error;
use crate::text::head::dot_lanes;

pub const DEFAULT_EXEMPLARS: &str = include_str!("../../data/conversation/exemplars.tsv");

/// A message this close (cosine) to an exemplar may carry its signal…
pub const MIN_SIMILARITY: f32 = 0.62;
/// …when it is at least this much closer to it than to any ordinary line.
pub const MIN_MARGIN: f32 = 0.04;

/// Parse `<signal>\t<line>` rows; `#` comments and blank lines skipped. Errors name the line.
pub fn parse(tsv: &str) -> Result<Vec<(SignalKind, String)>, Error> {
    let mut out = Vec::new();
    for (n, line) in tsv.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| Error::HeadShape(format!("exemplars line {}: {why}", n + 1));
        let (kind, text) = line
            .split_once('\t')
            .ok_or_else(|| bad("expected `<signal>\\t<line>`"))?;
        let kind = SignalKind::parse(kind.trim()).ok_or_else(|| bad("unknown signal"))?;
        if text.trim().is_empty() {
            return Err(bad("no line"));
        }
        out.push((kind, text.trim().to_string()));
    }
    Ok(out)
}

/// Exemplar and ordinary-line embeddings, unit length, and the rule that reads them.
#[derive(Debug, Clone, Default)]
pub struct ExemplarScorer {
    kinds: Vec<SignalKind>,
    exemplars: Vec<Vec<f32>>,
    ordinary: Vec<Vec<f32>>,
}

impl ExemplarScorer {
    /// `exemplars` (each with its signal) against `ordinary` lines.
    pub fn new(
        kinds: Vec<SignalKind>,
        exemplars: Vec<Vec<f32>>,
        ordinary: Vec<Vec<f32>>,
    ) -> ExemplarScorer {
        ExemplarScorer {
            kinds,
            exemplars,
            ordinary,
        }
    }

    pub fn len(&self) -> usize {
        self.exemplars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exemplars.is_empty()
    }

    /// The signals `embedding` carries, each once, sorted.
    pub fn signals(&self, embedding: &[f32]) -> Vec<SignalKind> {
        let ordinary = self
            .ordinary
            .iter()
            .map(|o| dot_lanes(o, embedding))
            .fold(f32::MIN, f32::max);
        let mut best: Vec<(SignalKind, f32)> = Vec::new();
        for (kind, e) in self.kinds.iter().zip(&self.exemplars) {
            let sim = dot_lanes(e, embedding);
            match best.iter_mut().find(|(k, _)| k == kind) {
                Some((_, s)) => *s = s.max(sim),
                None => best.push((*kind, sim)),
            }
        }
        let mut out: Vec<SignalKind> = best
            .into_iter()
            .filter(|(_, s)| *s >= MIN_SIMILARITY && *s >= ordinary + MIN_MARGIN)
            .map(|(k, _)| k)
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_exemplars_parse_and_cover_every_signal() {
        let rows = parse(DEFAULT_EXEMPLARS).expect("parses");
        for k in SignalKind::ALL {
            assert!(rows.iter().any(|(r, _)| *r == k), "{}", k.as_str());
        }
    }

    #[test]
    fn bad_rows_name_the_line() {
        let e = parse("# c\nsecrecy no tab\n")
            .expect_err("no tab")
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse("bogus\tline\n").expect_err("kind").to_string();
        assert!(e.contains("unknown signal"), "{e}");
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn a_signal_needs_closeness_and_a_margin_over_ordinary_chat() {
        let scorer = ExemplarScorer::new(
            vec![SignalKind::Secrecy],
            vec![unit(&[1.0, 0.0, 0.0])],
            vec![unit(&[0.0, 1.0, 0.0])],
        );
        assert_eq!(
            scorer.signals(&unit(&[0.9, 0.1, 0.0])),
            vec![SignalKind::Secrecy]
        );
        // Close to the exemplar, but as close to an ordinary line.
        assert!(scorer.signals(&unit(&[1.0, 1.0, 0.0])).is_empty());
        // Far from everything.
        assert!(scorer.signals(&unit(&[0.0, 0.0, 1.0])).is_empty());
    }
}
