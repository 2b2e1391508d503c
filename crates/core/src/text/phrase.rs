//! Phrase matching under the evasion-defeating normalisation (case, leetspeak, stretched
//! letters, separators between letters, Unicode confusables, full-width forms, diacritics),
//! word-boundary aware: the building block of the rule filter, the minor-and-sexual rule and the
//! offline detector's lexicons.

use std::collections::{BTreeMap, HashMap};

use decancer::{Options, Translation};

/// Terms this short would match too much inside letter runs.
const MIN_AFFIX_TERM: usize = 4;
/// Fewer single letters than this in a row are ordinary text ("a", "I"), not an evasion.
const MIN_SPELLED_RUN: usize = 3;

#[derive(Debug, Clone)]
struct Term {
    words: Vec<String>,
    squashed: String,
}

/// Finds phrases in text under the evasion-defeating normalisation. The building block of the
/// rule filter, and of the offline detector's lexicons.
#[derive(Debug, Clone, Default)]
pub struct PhraseMatcher {
    terms: Vec<Term>,
    /// Phrases by the run-collapsed form of their first word (and of their squashed form), so
    /// a message is matched in one pass over its tokens instead of once per phrase.
    by_key: HashMap<String, Vec<usize>>,
}

/// Where phrase `phrase` (its index) matched: a byte span of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhraseMatch {
    pub phrase: usize,
    pub start: usize,
    pub end: usize,
}

impl PhraseMatcher {
    /// Add a phrase; `None` when it has no letters or digits to match.
    pub fn push(&mut self, phrase: &str) -> Option<usize> {
        let words: Vec<String> = tokenize(phrase).into_iter().map(|t| t.text).collect();
        if words.is_empty() {
            return None;
        }
        let idx = self.terms.len();
        let squashed = words.concat();
        let mut keys = vec![collapse(&words[0])];
        if words.len() > 1 {
            keys.push(collapse(&squashed));
        }
        for k in keys {
            self.by_key.entry(k).or_default().push(idx);
        }
        self.terms.push(Term { squashed, words });
        Some(idx)
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The first match of every phrase found in `text`, in phrase order.
    pub fn find_all(&self, text: &str) -> Vec<PhraseMatch> {
        let tokens = tokenize(text);
        // Spelled-out runs can hide any phrase inside them: check every phrase (rare input).
        if tokens.iter().any(|t| t.spelled) {
            return self
                .terms
                .iter()
                .enumerate()
                .filter_map(|(phrase, term)| {
                    find(term, &tokens).map(|(start, end)| PhraseMatch { phrase, start, end })
                })
                .collect();
        }
        let mut found: BTreeMap<usize, PhraseMatch> = BTreeMap::new();
        for (i, tok) in tokens.iter().enumerate() {
            let Some(candidates) = self.by_key.get(&collapse(&tok.text)) else {
                continue;
            };
            for &phrase in candidates {
                if found.contains_key(&phrase) {
                    continue;
                }
                if let Some((start, end)) = match_at(&self.terms[phrase], &tokens, i) {
                    found.insert(phrase, PhraseMatch { phrase, start, end });
                }
            }
        }
        found.into_values().collect()
    }
}

/// A token of the normalised message with the byte span it came from in the original.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    start: usize,
    end: usize,
    /// Built from letters spelled out one by one (`k.i.l.l`), so word boundaries inside it are lost.
    spelled: bool,
    /// One character of a script written without spaces (Chinese, Japanese, Thai) or with
    /// endings joined to the word (Korean): every character is its own token, so a term
    /// matches inside a sentence or a word.
    unspaced: bool,
}

/// Scripts written without spaces between words.
fn is_unspaced(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
        | '\u{0E00}'..='\u{0EFF}' // Thai, Lao
        | '\u{1000}'..='\u{109F}' // Myanmar
        | '\u{1780}'..='\u{17FF}' // Khmer
        // Hangul syllables: Korean has spaces, but endings join the word ("자살해라").
        | '\u{AC00}'..='\u{D7AF}'
    )
}

fn find(term: &Term, tokens: &[Token]) -> Option<(usize, usize)> {
    for (i, tok) in tokens.iter().enumerate() {
        if tok.spelled {
            let s = &tok.text;
            let whole = stretched(s, &term.squashed);
            let affix = term.squashed.len() >= MIN_AFFIX_TERM
                && (s.starts_with(&term.squashed) || s.ends_with(&term.squashed));
            if whole || affix {
                return Some((tok.start, tok.end));
            }
            continue;
        }
        if let Some(span) = match_at(term, tokens, i) {
            return Some(span);
        }
    }
    None
}

/// The term starting at ordinary (not spelled) token `i`: its words in sequence, or a
/// multi-word term written as one word ("killyourself").
fn match_at(term: &Term, tokens: &[Token], i: usize) -> Option<(usize, usize)> {
    let n = term.words.len();
    let tok = &tokens[i];
    if i + n <= tokens.len()
        && term
            .words
            .iter()
            .zip(&tokens[i..i + n])
            .all(|(w, t)| !t.spelled && stretched(&t.text, w))
    {
        return Some((tok.start, tokens[i + n - 1].end));
    }
    if n > 1 && stretched(&tok.text, &term.squashed) {
        return Some((tok.start, tok.end));
    }
    None
}

/// Runs of a repeated character collapsed to one ("idiooot" → "idiot").
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// True when `token` is `term` with some letters repeated ("idiooot" for "idiot"), or equal.
fn stretched(token: &str, term: &str) -> bool {
    let (a, b) = (runs(token), runs(term));
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.0 == y.0 && x.1 >= y.1)
}

fn runs(s: &str) -> Vec<(char, usize)> {
    let mut out: Vec<(char, usize)> = Vec::new();
    for c in s.chars() {
        match out.last_mut() {
            Some((last, n)) if *last == c => *n += 1,
            _ => out.push((c, 1)),
        }
    }
    out
}

fn is_leet_symbol(c: char) -> bool {
    matches!(c, '@' | '$' | '!')
}

fn leet(c: char) -> char {
    match c {
        '1' | '!' => 'i',
        '0' => 'o',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        other => other,
    }
}

/// Map one character to its plain lower-case form(s): confusables and full-width forms via
/// decancer, diacritics dropped, everything lower-cased.
fn normalise_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    match decancer::cure_char(c, Options::default()) {
        Translation::Character(t) => out.extend(t.to_lowercase()),
        Translation::String(s) => out.extend(s.chars().flat_map(char::to_lowercase)),
        Translation::None => {}
    }
}

/// Split into normalised word tokens with their original spans; runs of single letters
/// separated by punctuation or spaces are joined into one spelled token.
fn tokenize(text: &str) -> Vec<Token> {
    let mut raw: Vec<Token> = Vec::new();
    // Normalised characters of the current word, each with the end of its original character.
    let mut cur: Vec<(char, usize)> = Vec::new();
    let mut cur_start = 0usize;
    let mut buf = String::new();
    for (pos, c) in text.char_indices() {
        if is_unspaced(c) {
            if !cur.is_empty() {
                raw.extend(finish_token(&cur, cur_start));
                cur.clear();
            }
            raw.push(Token {
                text: c.to_string(),
                start: pos,
                end: pos + c.len_utf8(),
                spelled: false,
                unspaced: true,
            });
            continue;
        }
        buf.clear();
        normalise_char(c, &mut buf);
        let word_char = !buf.is_empty()
            && buf
                .chars()
                .all(|n| n.is_alphanumeric() || is_leet_symbol(n));
        if word_char {
            if cur.is_empty() {
                cur_start = pos;
            }
            let end = pos + c.len_utf8();
            cur.extend(buf.chars().map(|n| (n, end)));
        } else if !cur.is_empty() {
            raw.extend(finish_token(&cur, cur_start));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        raw.extend(finish_token(&cur, cur_start));
    }
    join_spelled(raw)
}

fn finish_token(chars: &[(char, usize)], start: usize) -> Option<Token> {
    // Trailing "!" is punctuation far more often than an "i".
    let keep = chars.iter().rposition(|(c, _)| *c != '!')? + 1;
    let chars = &chars[..keep];
    // Plain numbers ("2024") stay numbers; anything with a letter or leet symbol is decoded.
    let decode = chars
        .iter()
        .any(|(c, _)| c.is_alphabetic() || is_leet_symbol(*c));
    let text: String = chars
        .iter()
        .map(|(c, _)| if decode { leet(*c) } else { *c })
        .collect();
    Some(Token {
        text,
        start,
        end: chars[keep - 1].1,
        spelled: false,
        unspaced: false,
    })
}

fn join_spelled(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut run: Vec<Token> = Vec::new();
    let flush = |run: &mut Vec<Token>, out: &mut Vec<Token>| {
        if run.len() >= MIN_SPELLED_RUN {
            out.push(Token {
                text: run.iter().map(|t| t.text.as_str()).collect(),
                start: run[0].start,
                end: run[run.len() - 1].end,
                spelled: true,
                unspaced: false,
            });
        } else {
            out.append(run);
        }
        run.clear();
    };
    for t in tokens {
        if t.text.chars().count() == 1 && !t.unspaced {
            run.push(t);
        } else {
            flush(&mut run, &mut out);
            out.push(t);
        }
    }
    flush(&mut run, &mut out);
    out
}
