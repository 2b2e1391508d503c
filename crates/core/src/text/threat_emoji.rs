//! A weapon emoji aimed at the reader ("🔫💀 you're next"): a threat with no threatening word
//! for a scorer or a term list to find. Narrow on purpose, since shooters' chat uses 🔫 for a
//! good shot: the weapon, a second-person word, and a death emoji or a threat cue ("next",
//! "dead", "watch") together.

use crate::model::RuleHit;
use crate::text::words::SECOND_PERSON;

/// The rule name a hit carries, in the `<category>:<term>` shape of the term list's.
pub const RULE: &str = "violence_or_threat:weapon emoji aimed at a person";

const WEAPONS: &[char] = &['🔫', '🔪', '🗡', '⚔', '🪓', '💣', '🧨', '🏹'];
const DEATH: &[char] = &['💀', '☠', '⚰', '🪦', '🩸'];
const CUES: &[&str] = &[
    "next", "dead", "die", "watch", "find", "coming", "tonight", "end", "hunt", "blood", "pay",
];

/// The hit, quoting the weapon and the word it is aimed with; `None` without all three parts.
pub fn aimed_weapon(text: &str) -> Option<RuleHit> {
    let weapon = text.chars().find(|c| WEAPONS.contains(c))?;
    let words: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '\u{2019}'))
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('\u{2019}', "'").to_lowercase())
        .collect();
    let person = words.iter().find(|w| SECOND_PERSON.contains(&w.as_str()))?;
    let cue = text.chars().any(|c| DEATH.contains(&c))
        || words.iter().any(|w| CUES.contains(&w.as_str()));
    cue.then(|| RuleHit {
        rule: RULE.to_string(),
        matched: format!("{weapon} … {person}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weapon_aimed_at_you_with_a_cue_is_a_threat() {
        for text in [
            "🔫💀 you're next",
            "🔪 watch your back",
            "you 🔫🔫 dead",
            "u r next 💣",
            "🗡️ you’re dead tonight",
        ] {
            let hit = aimed_weapon(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(hit.rule, RULE);
        }
    }

    #[test]
    fn a_good_shot_or_a_skull_alone_is_not() {
        for text in [
            "nice shot 🔫 you carried",
            "💀💀 you're hilarious",
            "🔫 next round is ours",
            "lol 💀",
            "🔪🍰 cake time",
        ] {
            assert_eq!(aimed_weapon(text), None, "{text}");
        }
    }
}
