//! Is a message's swearing aimed at a person?
//!
//! Policies usually allow casual swearing ("this lag is shit") but judge swearing *at someone*
//! ("fuck you", "stfu noob", "dumb b*tch") as an insult. Comprehend and the offline lexicons
//! report both as `profanity`; this module finds the cue that tells them apart, so that the
//! retrieval query asks for the insult sections and the rules evaluator applies them.
//!
//! Deliberately narrow: swearing that takes "you" as its object ("fuck you"), an imperative said
//! only to someone ("stfu", "fuck off"), an insulting noun after "you", a mention or an
//! insulting adjective ("dumb b*tch"), or a swear word up to three words after "you" or a
//! mention in a message that is not a question ("you fucking idiot"). Excited praise between
//! them ("you're fucking amazing") and swearing at a thing ("fuck this game you guys") are not
//! insults.

use crate::model::Item;

/// What an object verb must take to be aimed: the person, not "you're"/"your".
const OBJECT_PERSON: &[&str] = &["you", "u", "yu", "yourself", "urself", "yall", "y'all"];

/// Said only to someone.
const IMPERATIVES: &[&str] = &[
    "stfu", "gtfo", "foad", "kys", "diaf", "fuckyou", "fuku", "fuckoff", "fkoff",
];

/// Two-word phrases said only to someone: "fuck off", "eat shit".
const IMPERATIVE_PAIRS: &[(&str, &str)] = &[
    ("fuck", "off"),
    ("fck", "off"),
    ("fk", "off"),
    ("piss", "off"),
    ("sod", "off"),
    ("eat", "shit"),
    ("get", "fucked"),
    ("suck", "my"),
];

/// Swear words and their common spellings after [`token`] folds digits and drops `*`.
const SWEAR_STEMS: &[&str] = &[
    "fuck", "fuk", "fck", "fk", "fuq", "phuck", "shit", "sht", "bitch", "btch", "cunt", "cnt",
    "piss", "damn", "dick", "cock", "twat", "wank", "bastard", "ass", "arse", "prick", "slut",
    "whore", "hoe", "retard", "crap",
];

/// Only whole words ("assassin", "shoe", "scrap" are not swearing); the rest also as stems.
const WHOLE_WORD_SWEARS: &[&str] = &["ass", "arse", "hoe", "cock", "dick", "piss", "crap"];

/// Swearing that takes a person as its object: "fuck you", "screw u".
const OBJECT_VERBS: &[&str] = &[
    "fuck", "fuk", "fck", "fk", "fuq", "phuck", "f", "eff", "screw", "frick", "frak", "sod",
];

/// Nouns that are insults when said of a person (plurals are matched too).
const PERSON_NOUNS: &[&str] = &[
    "bitch",
    "btch",
    "cunt",
    "whore",
    "slut",
    "hoe",
    "bastard",
    "asshole",
    "arsehole",
    "prick",
    "twat",
    "wanker",
    "motherfucker",
    "cocksucker",
    "dickhead",
    "douche",
    "douchebag",
    "jackass",
    "dumbass",
    "dipshit",
    "shithead",
    "fucker",
    "retard",
];

/// Adjectives that make a following person noun an insult wherever it stands ("dumb b*tch").
const INSULTING_ADJECTIVES: &[&str] = &[
    "dumb",
    "stupid",
    "fat",
    "ugly",
    "worthless",
    "useless",
    "pathetic",
    "lazy",
    "filthy",
    "dirty",
    "braindead",
    "ignorant",
    "toxic",
];

/// Weaker leads ("such a", "what a", "fucking", "little") count only in a message that
/// addresses someone or is no more than the insult ("what a prick"): "this boss is such a
/// bitch" and "i'm such a dumbass" are not aimed.
const WEAK_LEADS: &[&str] = &["such", "what", "absolute", "little", "fucking", "fkn"];

/// Excitement and praise: beside them, "you" and a swear word are admiration.
const PRAISE: &[&str] = &[
    "amazing", "awesome", "insane", "clutch", "carried", "carry", "goat", "legend", "beast",
    "cracked", "nice", "great", "good", "best", "love", "clean", "smashed", "sick", "won", "proud",
    "thanks", "thank", "congrats", "hype", "awsome", "fast", "right",
];

/// A message that asks ("are you fucking kidding me", "did you see that shit") rather than
/// calls someone something.
const QUESTION_STARTS: &[&str] = &[
    "are", "did", "do", "does", "can", "could", "would", "will", "what", "how", "why", "where",
    "who", "is", "was", "have", "has",
];

/// Words that make the swearing's object a thing: "fuck this game you guys".
const THING_OBJECTS: &[&str] = &["this", "that", "it", "the", "these", "those", "my"];

/// One word, lower-cased, digits folded to the letters they stand for and `*`/`.` dropped.
/// `!` is a letter only inside a word ("sh!t"); at either end it is punctuation ("you!").
fn token(word: &str) -> String {
    word.trim_matches(|c: char| matches!(c, '!' | '.' | '?' | '~'))
        .chars()
        .filter_map(|c| match c.to_ascii_lowercase() {
            '0' => Some('o'),
            '1' | '!' => Some('i'),
            '3' => Some('e'),
            '4' | '@' => Some('a'),
            '5' | '$' => Some('s'),
            '7' => Some('t'),
            '*' | '.' => None,
            c if c.is_alphanumeric() || c == '\'' => Some(c),
            _ => None,
        })
        .collect::<String>()
        .trim_matches('\'')
        .to_string()
}

/// Words with a flag for a mention of a person (`@name`, not `@everyone`/`@here`).
fn words(text: &str) -> Vec<(String, bool)> {
    text.split(|c: char| c.is_whitespace() || ",;:?()[]\"".contains(c))
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mention = w.starts_with('@')
                && w.len() > 1
                && !matches!(&*w.to_lowercase(), "@everyone" | "@here" | "@all");
            (token(w), mention)
        })
        .filter(|(t, _)| !t.is_empty())
        .collect()
}

fn is_swear(t: &str) -> bool {
    SWEAR_STEMS.iter().any(|s| {
        if WHOLE_WORD_SWEARS.contains(s) {
            t == *s || t.strip_suffix("es").or_else(|| t.strip_suffix('s')) == Some(s)
        } else {
            t.starts_with(s) || t.ends_with(s)
        }
    })
}

fn is_person_noun(t: &str) -> bool {
    let singular = |t: &str| {
        t.strip_suffix("es")
            .filter(|s| PERSON_NOUNS.contains(s))
            .or_else(|| t.strip_suffix('s'))
            .map(str::to_string)
    };
    PERSON_NOUNS.contains(&t) || singular(t).is_some_and(|s| PERSON_NOUNS.contains(&s.as_str()))
}

/// The cue that shows the message's swearing is aimed at a person, if there is one.
pub fn aimed_at_person(text: &str) -> Option<String> {
    let w = words(text);
    let is = |i: usize, list: &[&str]| w.get(i).is_some_and(|(t, _)| list.contains(&t.as_str()));
    let addressed =
        |i: usize| is(i, crate::text::words::SECOND_PERSON) || w.get(i).is_some_and(|(_, m)| *m);
    let addresses_someone = (0..w.len()).any(addressed);
    if let Some((t, _)) = w.iter().find(|(t, _)| IMPERATIVES.contains(&t.as_str())) {
        return Some(format!("\"{t}\" is said to someone"));
    }
    for i in 0..w.len() {
        let t = w[i].0.as_str();
        let next = w.get(i + 1).map_or("", |(n, _)| n.as_str());
        // "shut up", "shut the fuck up".
        if t == "shut" && w[i + 1..].iter().take(3).any(|(n, _)| n == "up") {
            return Some("\"shut up\" is said to someone".into());
        }
        if IMPERATIVE_PAIRS.contains(&(t, next)) {
            return Some(format!("\"{t} {next}\" is said to someone"));
        }
        // The swearing takes the person as its object: "fuck you", "screw u".
        if OBJECT_VERBS.contains(&t)
            && (is(i + 1, OBJECT_PERSON) || w[i + 1..].first().is_some_and(|(_, m)| *m))
        {
            return Some(format!("\"{t} {next}\""));
        }
        if is_person_noun(t) {
            let window = i.saturating_sub(4)..i;
            let lead = window.clone().find(|j| {
                addressed(*j)
                    || is(*j, INSULTING_ADJECTIVES)
                    || (is(*j, WEAK_LEADS) && (addresses_someone || w.len() <= 3))
            });
            if let Some(j) = lead {
                return Some(format!("\"{} … {t}\" names a person", w[j].0));
            }
        }
    }
    // "you fucking idiot", "ur shit", "@kai you piece of shit": a swear word up to three words
    // after "you" or a mention, in a message that is not a question, with no praise between.
    if is(0, QUESTION_STARTS) || text.contains('?') {
        return None;
    }
    for j in (0..w.len()).filter(|j| addressed(*j)) {
        let window = j + 1..(j + 4).min(w.len());
        if (j + 1..(j + 5).min(w.len())).any(|i| is(i, PRAISE)) {
            continue;
        }
        if let Some(i) = window
            .into_iter()
            .find(|i| is_swear(&w[*i].0) && !is(i + 1, THING_OBJECTS))
        {
            return Some(format!("\"{}\" after \"{}\"", w[i].0, w[j].0));
        }
    }
    None
}

/// [`aimed_at_person`] on the item's text or, when it was written to evade, its revealed reading.
pub fn item_aimed_at_person(item: &Item) -> Option<String> {
    aimed_at_person(&item.text).or_else(|| {
        item.revealed
            .as_ref()
            .and_then(|r| aimed_at_person(&r.text))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swearing_at_a_person_is_aimed() {
        for t in [
            "fuck you",
            "fuck you!",
            "f*ck u",
            "screw you and your team",
            "stfu noob",
            "stfu!",
            "shut the fuck up!",
            "fuck off noob",
            "eat shit",
            "dumb b*tch",
            "ur such a dickhead",
            "you're a fucking idiot",
            "you fucking suck",
            "@kai you piece of shit",
            "fuck you, gg",
            "what a prick",
            "gg ez you fucking idiot",
            "you assholes",
            "you son of a bitch",
            "that dumb bitch on their team keeps feeding",
        ] {
            assert!(aimed_at_person(t).is_some(), "{t}");
        }
    }

    #[test]
    fn casual_and_excited_swearing_is_not() {
        for t in [
            "this game is shit",
            "fuck yeah we won",
            "holy shit you carried us",
            "you're fucking amazing",
            "son of a bitch, disconnected right before the win",
            "motherfucker, the boss one-shot me again",
            "damn that boss is hard",
            "what the fuck is this matchmaking",
            "shit shit shit im low hp",
            "the assassin class is broken",
            "did you see that? no way",
            "fuck this game you guys",
            "are you fucking kidding me",
            "did you see that shit",
            "shit, you're right",
            "damn you're fast",
            "this boss is such a bitch",
            "karma is such a bitch",
            "i'm such a dumbass",
            "@everyone fucking lag again",
        ] {
            assert_eq!(aimed_at_person(t), None, "{t}");
        }
    }
}
