//! Text written backwards ("flesruoy llik"), whole or one word at a time: a scorer reads
//! nonsense, a person reads it at a glance.

use crate::text::words::{is_abusive_term, is_english};

/// Lower-cased words of letters and apostrophes.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| w.chars().any(char::is_alphabetic))
        .map(str::to_lowercase)
        .collect()
}

fn known(word: &str) -> bool {
    is_english(word) || is_abusive_term(word)
}

fn reversed(s: &str) -> String {
    s.chars().rev().collect()
}

/// The message read backwards when that reads as words and the message as written does not
/// (more than twice the known words, and at least half its words known); else each word
/// whose reverse is a forbidden term (and which is no English word itself) turned round.
/// `None` when neither applies.
pub(super) fn unreverse(text: &str) -> Option<String> {
    let forward = words(text);
    if forward.is_empty() {
        return None;
    }
    let backward_text = reversed(text);
    let backward = words(&backward_text);
    let known_forward = forward.iter().filter(|w| known(w)).count();
    let known_backward = backward.iter().filter(|w| known(w)).count();
    if known_backward > 2 * known_forward && 2 * known_backward >= backward.len() {
        return Some(backward_text);
    }
    let mut changed = false;
    let turned: Vec<String> = text
        .split(' ')
        .map(|token| {
            let word: String = token.chars().filter(|c| c.is_alphabetic()).collect();
            let word = word.to_lowercase();
            let back = reversed(&word);
            if !known(&word) && back != word && is_abusive_term(&back) {
                changed = true;
                reversed(token)
            } else {
                token.to_string()
            }
        })
        .collect();
    changed.then(|| turned.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backwards_messages_and_words_are_turned_round() {
        assert_eq!(unreverse("flesruoy llik").as_deref(), Some("kill yourself"));
        assert_eq!(
            unreverse("!toidi na er'uoy").as_deref(),
            Some("you're an idiot!")
        );
        assert_eq!(
            unreverse("gg wp, tihsllub").as_deref(),
            Some("gg wp, bullshit")
        );
    }

    #[test]
    fn ordinary_chat_and_palindromes_stay_as_written() {
        for text in [
            "gg wp",
            "now we won",
            "stop the pots",
            "hola a todos, alguien para la mazmorra?",
            "level up at noon",
            "xX_Slayer_Xx joined",
            "dog god",
        ] {
            assert_eq!(unreverse(text), None, "{text}");
        }
    }
}
