//! The offline toxicity detector: the alt-profanity-check linear model for overall offensive
//! language, plus category lexicons so the seven categories carry meaning (a threat without a
//! swear word still scores high on `violence_or_threat`).

use async_trait::async_trait;
use moderation_core::model::{Category, CategoryScores};
use moderation_core::ports::{SegmentLimits, ToxicityDetector, ToxicityScore};
use moderation_core::text::phrase::PhraseMatcher;
use moderation_core::Result as CoreResult;

use crate::error::Error;
use crate::text::profanity::ProfanityModel;

pub const DEFAULT_LEXICON: &str = include_str!("../../data/lexicon.txt");

/// Category lexicons with a weight per phrase.
#[derive(Debug, Clone)]
pub struct Lexicon {
    matcher: PhraseMatcher,
    entries: Vec<(Category, f64)>,
}

impl Lexicon {
    /// Parse `<category> <weight> <phrase>` lines; `#` comments and blank lines are ignored.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut matcher = PhraseMatcher::default();
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| Error::Lexicon {
                line: n + 1,
                reason,
            };
            let mut parts = line.splitn(3, char::is_whitespace);
            let (cat, weight, phrase) = match (parts.next(), parts.next(), parts.next()) {
                (Some(c), Some(w), Some(p)) => (c, w, p.trim()),
                _ => {
                    return Err(bad(format!(
                        "expected `<category> <weight> <phrase>`: {line:?}"
                    )))
                }
            };
            let category =
                Category::parse(cat).ok_or_else(|| bad(format!("unknown category {cat:?}")))?;
            let weight: f64 = weight
                .parse()
                .ok()
                .filter(|w| (0.0..=1.0).contains(w))
                .ok_or_else(|| bad(format!("weight {weight:?} is not a number in [0, 1]")))?;
            matcher
                .push(phrase)
                .ok_or_else(|| bad(format!("phrase {phrase:?} has no letters")))?;
            entries.push((category, weight));
        }
        Ok(Lexicon { matcher, entries })
    }

    /// Per-category scores: matches combine as 1 - Π(1 - w).
    pub fn score(&self, text: &str) -> CategoryScores {
        let mut miss = [1.0f64; 7];
        for m in self.matcher.find_all(text) {
            let (cat, w) = self.entries[m.phrase];
            let slot = Category::ALL.iter().position(|c| *c == cat).unwrap_or(0);
            miss[slot] *= 1.0 - w;
        }
        let mut scores = CategoryScores::default();
        for (i, c) in Category::ALL.iter().enumerate() {
            scores.set(*c, 1.0 - miss[i]);
        }
        scores
    }
}

pub struct OfflineDetector {
    model: ProfanityModel,
    lexicon: Lexicon,
}

/// The most the linear model can add without a profanity-lexicon match (below the default
/// threshold of 0.5).
const MODEL_ONLY_CAP: f64 = 0.45;

pub const NAME: &str = "offline-toxicity (alt-profanity-check 1.9.1 + lexicons)";

impl OfflineDetector {
    pub fn new(model: ProfanityModel, lexicon: Lexicon) -> Self {
        OfflineDetector { model, lexicon }
    }

    /// The committed model and lexicon.
    pub fn embedded() -> Result<Self, Error> {
        Ok(Self::new(
            ProfanityModel::embedded()?,
            Lexicon::parse(DEFAULT_LEXICON)?,
        ))
    }

    pub fn score(&self, text: &str) -> ToxicityScore {
        let mut categories = self.lexicon.score(text);
        // The model puts plain English near 0.44, so only its excess over 0.5 is evidence of
        // offensive language; scaled so a certain 1.0 maps to 0.9.
        let p = self.model.probability(text);
        let mut model_signal = ((p - 0.5) / 0.5).clamp(0.0, 1.0) * 0.9;
        // It also fires on game words and mild insults ("kill the boss first": 0.94), so
        // without a profanity-lexicon match it may rank an item but never lift it over the
        // default threshold; the category lexicons carry the rest.
        if categories.profanity == 0.0 {
            model_signal = model_signal.min(MODEL_ONLY_CAP);
        }
        categories.raise(Category::Profanity, model_signal);
        ToxicityScore {
            toxicity: categories.max(),
            categories,
            rule_hits: Vec::new(),
            signals: Vec::new(),
        }
    }
}

#[async_trait]
impl ToxicityDetector for OfflineDetector {
    fn name(&self) -> &str {
        NAME
    }

    fn limits(&self) -> SegmentLimits {
        // Local scoring has no request limits; chunks only keep one huge line from dominating.
        SegmentLimits {
            max_segments: 64,
            max_segment_bytes: 4096,
            max_request_bytes: 256 * 1024,
        }
    }

    async fn detect(&self, segments: &[String]) -> CoreResult<Vec<ToxicityScore>> {
        Ok(segments.iter().map(|s| self.score(s)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> OfflineDetector {
        OfflineDetector::embedded().expect("embedded model and lexicon load")
    }

    #[test]
    fn threats_without_swearing_score_as_threats() {
        let s = detector().score("i will find you and hurt you");
        assert!(s.categories.violence_or_threat >= 0.9, "{s:?}");
        assert!(s.categories.profanity < 0.5, "{s:?}");
        assert_eq!(s.toxicity, s.categories.max());
    }

    #[test]
    fn plain_text_is_clean() {
        for t in [
            "the quick brown fox jumps over the lazy dog",
            "gg wp",
            "nice shot, well played",
        ] {
            let s = detector().score(t);
            assert!(s.toxicity < 0.3, "{t}: {s:?}");
        }
    }

    #[test]
    fn categories_are_separated() {
        let d = detector();
        let insult = d.score("you are such an idiot");
        assert!(insult.categories.insult >= 0.8, "{insult:?}");
        let harass = d.score("nobody likes you, uninstall");
        assert!(harass.categories.harassment_or_abuse >= 0.9, "{harass:?}");
        let evasive = d.score("k i l l  y o u r s e l f");
        assert!(evasive.categories.harassment_or_abuse >= 0.9, "{evasive:?}");
        let swear = d.score("this fucking lag");
        assert!(swear.categories.profanity >= 0.9, "{swear:?}");
        assert!(swear.categories.insult < 0.5, "{swear:?}");
    }

    /// Sentences written apart from the lexicon and the samples: everyday game chat that
    /// shares words with abuse must stay under the default threshold.
    #[test]
    fn held_out_benign_chat_stays_below_the_threshold() {
        let d = detector();
        for t in [
            "I had to uninstall the driver and reinstall it",
            "did that hurt you? fall damage is brutal",
            "we're in the loser bracket now",
            "kill the boss first, then loot",
            "this game is killing me, so many deaths",
            "shoot, I missed the jump",
            "take out the trash mobs before the elite",
            "that was a stupid mistake by me",
            "worthless loot drop again",
            "you can see it with the naked eye",
            "get out of the zone before it closes",
            "I'm dead lol, revive me",
        ] {
            let s = d.score(t);
            assert!(s.toxicity < 0.5, "{t}: {s:?}");
        }
    }

    /// Abuse written apart from the lexicon's own examples and the samples.
    #[test]
    fn held_out_abuse_scores_in_the_right_category() {
        let d = detector();
        let cases = [
            ("i'm going to break your legs", Category::ViolenceOrThreat),
            ("you're worthless trash", Category::Insult),
            ("go back to your country", Category::HateSpeech),
            ("send nudes now", Category::Sexual),
            (
                "I will shoot you when you log off",
                Category::ViolenceOrThreat,
            ),
            ("everyone laughs at you, you loser", Category::Insult),
            (
                "you should quit, nobody likes you",
                Category::HarassmentOrAbuse,
            ),
        ];
        for (t, cat) in cases {
            let s = d.score(t);
            assert!(s.categories.get(cat) >= 0.6, "{t}: {s:?}");
        }
    }

    #[test]
    fn bad_lexicon_lines_are_named() {
        let e = Lexicon::parse("insult 0.5 idiot\nthreat 0.9 boo\n").expect_err("bad category");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Lexicon::parse("insult 2 idiot\n").expect_err("bad weight");
        assert!(e.to_string().contains("weight"), "{e}");
    }
}
