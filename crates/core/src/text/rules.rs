//! The rule filter: a forbidden-term list matched after normalisation that defeats common
//! evasion (case, leetspeak, stretched letters, separators between letters, Unicode
//! confusables, full-width forms, diacritics) while staying word-boundary aware, so "class" and
//! "Scunthorpe" are not hits.

use crate::error::{Error, Result};
use crate::model::RuleHit;

/// The default list, compiled in so every binary has a filter without extra files.
pub const DEFAULT_TERMS: &str = crate::text::words::DEFAULT_TERMS;

use crate::text::phrase::PhraseMatcher;

#[derive(Debug, Clone)]
pub struct RuleFilter {
    matcher: PhraseMatcher,
    /// `<category>:<term>` per phrase of the matcher.
    rules: Vec<String>,
}

impl RuleFilter {
    /// Parse a term list: one `<category> <term...>` per line, `#` comments and blanks ignored.
    pub fn parse(list: &str) -> Result<Self> {
        let mut matcher = PhraseMatcher::default();
        let mut rules = Vec::new();
        for (n, line) in list.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (category, term) = line
                .split_once(char::is_whitespace)
                .map(|(c, t)| (c.trim(), t.trim()))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "forbidden-term list line {}: expected `<category> <term>`, got {line:?}",
                        n + 1
                    ))
                })?;
            if !is_category_name(category) {
                return Err(Error::Config(format!(
                    "forbidden-term list line {}: category {category:?} must be snake_case",
                    n + 1
                )));
            }
            if matcher.push(term).is_none() {
                return Err(Error::Config(format!(
                    "forbidden-term list line {}: term {term:?} has no letters",
                    n + 1
                )));
            }
            rules.push(format!("{category}:{}", term.to_lowercase()));
        }
        Ok(RuleFilter { matcher, rules })
    }

    pub fn default_list() -> Result<Self> {
        Self::parse(DEFAULT_TERMS)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every term found in `text`, once per term; a weapon emoji aimed at the reader
    /// ([`crate::text::threat_emoji`]), which no term list can spell; and a minor named with
    /// sexual content ([`crate::text::minor_sexual`]), which neither term is alone.
    pub fn scan(&self, text: &str) -> Vec<RuleHit> {
        self.matcher
            .find_all(text)
            .into_iter()
            .map(|m| RuleHit {
                rule: self.rules[m.phrase].clone(),
                matched: text[m.start..m.end].to_string(),
            })
            .chain(crate::text::threat_emoji::aimed_weapon(text))
            .chain(crate::text::minor_sexual::minor_and_sexual(text))
            .collect()
    }
}

/// Category names are snake_case ASCII words.
pub fn is_category_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> RuleFilter {
        RuleFilter::parse(
            "# test list\n\
             insult idiot\n\
             profanity ass\n\
             profanity cunt\n\
             violence_or_threat kill yourself\n\
             violence_or_threat kys\n\
             scam free robux\n",
        )
        .expect("valid list")
    }

    fn rules(text: &str) -> Vec<String> {
        filter().scan(text).into_iter().map(|h| h.rule).collect()
    }

    #[test]
    fn evasions_are_caught() {
        let cases = [
            ("you IDIOT", "insult:idiot"),
            ("y0u 1d10t", "insult:idiot"),
            ("what an idiooooot", "insult:idiot"),
            ("i.d.i.o.t", "insult:idiot"),
            (
                "k i l l  y o u r s e l f",
                "violence_or_threat:kill yourself",
            ),
            (
                "just k.i.l.l y.o.u.r.s.e.l.f",
                "violence_or_threat:kill yourself",
            ),
            ("kill    yourself", "violence_or_threat:kill yourself"),
            ("killyourself now", "violence_or_threat:kill yourself"),
            ("ＩＤＩＯＴ", "insult:idiot"), // full-width
            ("ìdìót", "insult:idiot"),      // diacritics
            ("іdіоt", "insult:idiot"),      // Cyrillic look-alikes
            ("k-y-s", "violence_or_threat:kys"),
            ("get FREE R0BUX here", "scam:free robux"),
            ("you're an @$$", "profanity:ass"),
            ("idiot!", "insult:idiot"),
        ];
        for (text, want) in cases {
            assert_eq!(rules(text), vec![want.to_string()], "text {text:?}");
        }
    }

    #[test]
    fn word_boundaries_prevent_false_hits() {
        for text in [
            "first class pass",
            "I live in Scunthorpe",
            "assessment of the bass",
            "skill issue, yourself included",
            "as a team",
            "a b c d",
            "idiotic",
            "I killed it yourself",
        ] {
            assert!(
                rules(text).is_empty(),
                "false hit in {text:?}: {:?}",
                rules(text)
            );
        }
    }

    #[test]
    fn matched_text_is_the_original_span() {
        let hits = filter().scan("hey Y0U 1d10t!!");
        assert_eq!(hits[0].matched, "1d10t");
        let hits = filter().scan("k i l l  y o u r s e l f ok");
        assert_eq!(hits[0].matched, "k i l l  y o u r s e l f");
        assert_eq!(hits[0].category(), "violence_or_threat");
    }

    #[test]
    fn bad_lists_name_the_line() {
        let e = RuleFilter::parse("insult idiot\nnonsense\n").expect_err("bad");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = RuleFilter::parse("Insult idiot\n").expect_err("bad");
        assert!(e.to_string().contains("snake_case"), "{e}");
    }

    #[test]
    fn default_list_parses_and_is_not_empty() {
        let f = RuleFilter::default_list().expect("default list");
        assert!(f.len() > 20);
    }
}

#[cfg(test)]
mod multilingual_tests {
    use super::*;

    #[test]
    fn terms_in_other_scripts_and_accents_match() {
        let f = RuleFilter::parse(
            "violence_or_threat убей себя\nviolence_or_threat mátate\ninsult 死ね\ninsult 傻逼\nharassment_or_abuse hurensohn\n",
        )
        .expect("list");
        for (text, rule) in [
            ("просто убей себя уже", "violence_or_threat:убей себя"),
            ("УБЕЙ СЕБЯ", "violence_or_threat:убей себя"),
            ("mátate de una vez", "violence_or_threat:mátate"),
            ("matate ya", "violence_or_threat:mátate"),
            ("お前は死ね", "insult:死ね"),
            ("死ね", "insult:死ね"),
            ("你这个傻逼", "insult:傻逼"),
            ("du h u r e n s o h n", "harassment_or_abuse:hurensohn"),
        ] {
            let hits = f.scan(text);
            assert!(hits.iter().any(|h| h.rule == rule), "{text}: {hits:?}");
        }
        for benign in ["убедись в себе", "mata el jefe", "死んだ", "smart move"] {
            assert!(f.scan(benign).is_empty(), "{benign}: {:?}", f.scan(benign));
        }
    }

    #[test]
    fn the_default_list_carries_self_harm_terms_in_other_languages() {
        let f = RuleFilter::default_list().expect("default list");
        for text in [
            "eres un manco, mátate ya",
            "vai se matar, ninguém gosta de você",
            "просто сдохни",
            "お前なんか死ね",
            "你去死吧",
            "bring dich um, du noob",
            "그냥 자살해라",
        ] {
            assert!(
                f.scan(text)
                    .iter()
                    .any(|h| h.category() == "violence_or_threat"),
                "{text}"
            );
        }
        for text in [
            "el jefe mata a todos",
            "я убил босса",
            "死んだ、もう一回",
            "matar el dragón",
        ] {
            assert!(f.scan(text).is_empty(), "{text}: {:?}", f.scan(text));
        }
    }
}
