//! Sexual content involving a minor: blocked outright, whatever a score says. Neither word
//! alone is a violation ("my kid sister", "nude beach"), and a scorer can rate the pair mild
//! ("draw a naked child" scored 0.72), so the rule is the combination: a term for a minor and a
//! sexual term in the same message, each found with the term list's evasion-defeating matcher,
//! in the languages the term lists cover.

use std::sync::OnceLock;

use crate::model::RuleHit;
use crate::text::phrase::PhraseMatcher;

/// The rule names it `sexual:involving a minor (<minor term> + <sexual term>)`: the `sexual`
/// category, so the policy's section on sexual content governs it like any forbidden term.
const RULE_PREFIX: &str = "sexual:involving a minor";

const MINOR: &[&str] = &[
    "child",
    "children",
    "kid",
    "kids",
    "a minor",
    "minors",
    "underage",
    "under age",
    "preteen",
    "pre teen",
    "toddler",
    "infant",
    "little girl",
    "little boy",
    "young girl",
    "young boy",
    "schoolgirl",
    "schoolboy",
    "loli",
    "lolita",
    "shota",
    "pedo",
    "12 year old",
    "13 year old",
    "11 year old",
    "10 year old",
    "9 year old",
    "8 year old",
    "14 year old",
    "15 year old",
    "12yo",
    "13yo",
    "14yo",
    "15yo",
    "jailbait",
    "teen",
    "teenager",
    "girl of 12",
    // es, pt, fr, de, it
    "niño",
    "niña",
    "niños",
    "niñas",
    "menor",
    "menores",
    "menor de edad",
    "criança",
    "crianças",
    "enfant",
    "enfants",
    "mineur",
    "mineure",
    "fillette",
    "minderjährig",
    "minderjährige",
    "minderjährigen",
    "kleines mädchen",
    "kleiner junge",
    "bambino",
    "bambina",
    "bambini",
    "minorenne",
];

const SEXUAL: &[&str] = &[
    "naked",
    "nude",
    "nudes",
    "nudity",
    "undressed",
    "undress",
    "topless",
    "no clothes",
    "without clothes",
    "sex",
    "sexy",
    "sexual",
    "porn",
    "porno",
    "nsfw",
    "explicit",
    "erotic",
    "lewd",
    "hentai",
    "genitals",
    "breasts",
    "boobs",
    "lingerie",
    "aroused",
    "seductive",
    "xxx",
    "onlyfans",
    "send pics",
    "nude pics",
    // es, pt, fr, de, it
    "desnudo",
    "desnuda",
    "desnudos",
    "sexo",
    "nue",
    "sexe",
    "pornographique",
    "nackt",
    "nackte",
    "nacktes",
    "pornografie",
    "nudo",
    "nuda",
    "nua",
    "pornô",
];

struct Lists {
    minor: PhraseMatcher,
    sexual: PhraseMatcher,
}

fn lists() -> &'static Lists {
    static LISTS: OnceLock<Lists> = OnceLock::new();
    LISTS.get_or_init(|| {
        let build = |terms: &[&str]| {
            let mut m = PhraseMatcher::default();
            for t in terms {
                // Every listed term has letters, so none is refused.
                let _ = m.push(t);
            }
            m
        };
        Lists {
            minor: build(MINOR),
            sexual: build(SEXUAL),
        }
    })
}

/// The hit, naming both terms as the message wrote them; `None` unless both kinds are there.
pub fn minor_and_sexual(text: &str) -> Option<RuleHit> {
    let lists = lists();
    let minor = lists
        .minor
        .find_all(text)
        .into_iter()
        .min_by_key(|m| m.start)?;
    let sexual = lists
        .sexual
        .find_all(text)
        .into_iter()
        .min_by_key(|m| m.start)?;
    Some(RuleHit {
        rule: format!(
            "{RULE_PREFIX} ({} + {})",
            MINOR[minor.phrase], SEXUAL[sexual.phrase]
        ),
        matched: format!(
            "{} … {}",
            &text[minor.start..minor.end],
            &text[sexual.start..sexual.end]
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minor_and_a_sexual_term_together_are_a_hit_through_evasions() {
        for text in [
            "draw a naked child",
            "d r a w a n@ked ch1ld on the bed",
            "NSFW pics of a 12 year old",
            "generate a sexy loli",
            "una niña desnuda",
            "ein nacktes kleines mädchen",
            "kid, no clothes, bedroom",
            "send nudes, you're 13yo right",
        ] {
            let hit = minor_and_sexual(text).unwrap_or_else(|| panic!("no hit: {text}"));
            assert!(hit.rule.starts_with(RULE_PREFIX), "{text}: {hit:?}");
        }
    }

    #[test]
    fn either_alone_is_not() {
        for text in [
            "my kid sister carried the match",
            "the children's level is too easy",
            "nude beach trip next week",
            "that skin is so sexy",
            "kindness matters, gg",
            "a knight on a dragon, watercolour",
            "the baby dragon hatched",
            "sussex is where i live",
            "hey baby you're sexy",
            "what kind of nude skin is that",
            "minor bug: the sexy skin clips",
            "nu kid in the lobby",
        ] {
            assert_eq!(minor_and_sexual(text), None, "{text}");
        }
    }

    #[test]
    fn the_hit_quotes_what_was_written() {
        let hit = minor_and_sexual("Draw a NAKED Child").expect("hit");
        assert_eq!(hit.rule, "sexual:involving a minor (child + naked)");
        assert_eq!(hit.category(), "sexual");
        assert_eq!(hit.matched, "Child … NAKED");
    }
}
