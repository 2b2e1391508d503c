//! Word lists shared by language identification, evasion reveal and the address check:
//! common English chat words, second-person words, and the single words of the default
//! forbidden-term list. Data only, so any module may use it without an import cycle.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The default forbidden-term list (the rule filter's, see `rules`).
pub const DEFAULT_TERMS: &str = include_str!("../../data/forbidden-terms.txt");

/// Common English function words and chat words. A line where at least a third of the words
/// are on this list is English whatever an identifier says (chat slang confuses them).
#[rustfmt::skip]
pub(crate) const ENGLISH: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "back",
    "be", "because", "been", "before", "but", "by", "can", "cant", "can't", "come", "could",
    "did", "didnt", "didn't", "do", "does", "dont", "don't", "down", "for", "from", "get", "go",
    "going", "gonna", "got", "had", "has", "have", "he", "her", "here", "him", "his", "how", "i",
    "if", "im", "i'm", "in", "into", "is", "it", "its", "it's", "just", "know", "last", "let",
    "lets", "let's", "like", "me", "my", "need", "no", "not", "now", "of", "off", "on", "one",
    "only", "or", "our", "out", "over", "play", "please", "pls", "plz", "really", "right", "see",
    "she", "should", "so", "some", "still", "take", "than", "that", "thats", "that's", "the",
    "their", "them", "then", "there", "they", "think", "this", "time", "to", "too", "up", "us",
    "very", "want", "was", "we", "well", "were", "what", "when", "where", "which", "who", "why",
    "will", "with", "would", "yeah", "yes", "you", "your", "youre", "you're", "u", "ur", "ya",
    "yo", "lol", "lmao", "lmfao", "rofl", "gg", "ggs", "ez", "wp", "gl", "hf", "glhf", "brb",
    "afk", "idk", "imo", "tbh", "ngl", "fr", "btw", "omg", "wtf", "bro", "bruh", "dude", "guys",
    "noob", "nub", "team", "game", "match", "round", "win", "won", "lost", "lose", "nice", "good",
    "bad", "lag", "server", "ping", "mid", "top", "bot", "jungle", "push", "heal", "tank",
    "carry", "ult", "nerf", "buff", "op", "thanks", "thx", "ty", "np", "ok", "okay", "yep",
    "nope", "hey", "hi", "hello", "sup", "lets", "again", "ranked", "queue", "mic", "chat",
    "people", "person", "guy", "man", "girl", "boy", "kid", "kids", "friend", "friends", "wrong",
    "button", "eat", "race", "day", "night", "today", "tonight", "tomorrow", "week", "year",
    "new", "old", "big", "small", "little", "long", "short", "high", "low", "first", "next",
    "never", "always", "every", "everyone", "someone", "anyone", "nobody", "something",
    "anything", "nothing", "thing", "things", "way", "lot", "much", "many", "more", "most",
    "less", "better", "best", "worse", "worst", "same", "other", "another", "crap", "damn",
    "hell", "shit", "fuck", "fucking", "ass", "make", "made", "give", "gave", "say", "said",
    "tell", "told", "look", "feel", "try", "keep", "put", "leave", "call", "work", "home",
    "house", "school", "mom", "dad", "money", "free", "buy", "sell", "trade", "gold", "coins",
    "account", "password", "link", "click", "send", "dm", "add", "join", "help", "stop", "start",
    "done", "ready", "wait", "sorry", "thank", "love", "hate", "kill", "dead", "die", "hard",
    "easy", "fun", "funny", "stupid", "dumb", "idiot", "trash", "cool", "great", "awesome",
    "pretty", "sure", "maybe", "also", "even", "ever", "yet", "though", "he's", "hes", "she's",
    "shes", "we're", "they're", "i'll", "ill", "you'll", "we'll", "i've", "isn't", "wasn't",
    "won't", "doesn't", "aren't", "there's", "what's", "damage", "hit", "shot", "dps", "hp",
    "mana", "boss", "loot", "level", "gear", "skin", "yourself", "myself", "himself", "herself",
    "themselves", "ourselves", "yourselves",
];

/// Words that address the reader.
pub(crate) const SECOND_PERSON: &[&str] = &[
    "you",
    "u",
    "yu",
    "your",
    "ur",
    "yours",
    "youre",
    "you're",
    "yourself",
    "urself",
    "yourselves",
    "yall",
    "y'all",
];

/// Whether `word` (lower case) is a common English chat word.
pub(crate) fn is_english(word: &str) -> bool {
    ENGLISH.contains(&word)
}

/// The default forbidden-term list's one-word terms of four letters or more: words no
/// ordinary message holds, so one read backwards is a reversed slur or swear word.
pub(crate) fn is_abusive_term(word: &str) -> bool {
    static TERMS: OnceLock<HashSet<String>> = OnceLock::new();
    TERMS
        .get_or_init(|| {
            DEFAULT_TERMS
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once(char::is_whitespace).map(|(_, t)| t.trim()))
                .filter(|t| !t.contains(char::is_whitespace) && t.chars().count() >= 4)
                .map(str::to_lowercase)
                .collect()
        })
        .contains(word)
}
