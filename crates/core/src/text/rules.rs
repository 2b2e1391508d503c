//! The rule filter: a forbidden-term list matched after normalisation that defeats common
//! evasion (case, leetspeak, stretched letters, separators between letters, Unicode
//! confusables, full-width forms, diacritics) while staying word-boundary aware, so "class" and
//! "Scunthorpe" are not hits.

use std::collections::{BTreeMap, HashMap};

use decancer::{Options, Translation};

use crate::error::{Error, Result};
use crate::model::RuleHit;

/// The default list, compiled in so every binary has a filter without extra files.
pub const DEFAULT_TERMS: &str = crate::text::words::DEFAULT_TERMS;

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

#[derive(Debug, Clone)]
pub struct RuleFilter {
    matcher: PhraseMatcher,
    /// `<category>:<term>` per phrase of the matcher.
    rules: Vec<String>,
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
