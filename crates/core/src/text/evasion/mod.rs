//! Reading a message the way a person sees it on screen, when it was written to slip past
//! automated scoring: symbols or emoji between letters ("k🔥i🔥l🔥l"), a right-to-left
//! override around reversed text, invisible characters (zero-width, tags, variation
//! selectors), letters written with look-alike symbols (mathematical alphanumerics, regional
//! indicators, circled and squared letters, small capitals), look-alikes from another script
//! inside a Latin word, stacked combining marks (Zalgo), letters spelled out one by one,
//! Braille letters, and text written backwards (`reversed`).
//!
//! The revealed text is scored and rule-scanned beside the original (the higher score wins),
//! so ordinary text is unaffected and only messages whose words change cost a second look.

mod reversed;

use crate::model::Revealed;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Evasion classes, as named in reports.
pub const BIDI_OVERRIDE: &str = "bidi_override";
pub const INVISIBLE: &str = "invisible_characters";
pub const LETTER_SYMBOLS: &str = "letter_symbols";
pub const MIXED_SCRIPT: &str = "mixed_script";
pub const STACKED_MARKS: &str = "stacked_marks";
pub const SEPARATED_LETTERS: &str = "separated_letters";
pub const BRAILLE: &str = "braille";
pub const REVERSED: &str = "reversed_text";

/// `None` when the text reads the same (same words) once evasions are undone.
pub fn reveal(original: &str) -> Option<Revealed> {
    let text = original;
    let mut found: Vec<&'static str> = Vec::new();
    let mut note = |class: &'static str| {
        if !found.contains(&class) {
            found.push(class);
        }
    };
    let text = undo_bidi(text, &mut note);
    let text = drop_invisible(&text, &mut note);
    let text = map_letter_symbols(&text, &mut note);
    let text = unmix_scripts(&text, &mut note);
    let text = strip_stacked_marks(&text, &mut note);
    let text = braille_letters(&text, &mut note);
    let mut revealed = join_separated_letters(&text, &mut note);
    if let Some(turned) = reversed::unreverse(&revealed) {
        note(REVERSED);
        revealed = turned;
    }
    if words(&revealed) == words(original) {
        return None;
    }
    let text = revealed;
    Some(Revealed {
        text,
        evasions: found.iter().map(|s| s.to_string()).collect(),
        lines: Vec::new(),
    })
}

/// Lower-cased alphanumeric words: what a scorer reads.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn is_strong_rtl(c: char) -> bool {
    matches!(c as u32, 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF | 0x10800..=0x10FFF | 0x1E800..=0x1EFFF)
}

/// Remove bidi controls; text under a right-to-left override (U+202E … U+202C) is shown
/// reversed, so a Latin span under it is reversed back to the order the reader sees.
fn undo_bidi(text: &str, note: &mut impl FnMut(&'static str)) -> String {
    let mut out = String::with_capacity(text.len());
    // Open overrides/embeddings/isolates; `true` for a right-to-left override.
    let mut stack: Vec<bool> = Vec::new();
    let mut span: Vec<char> = Vec::new();
    let flush = |span: &mut Vec<char>, out: &mut String, note: &mut dyn FnMut(&'static str)| {
        if span.is_empty() {
            return;
        }
        if span.iter().any(|c| is_strong_rtl(*c)) {
            out.extend(span.iter());
        } else {
            if span.iter().any(|c| c.is_alphanumeric()) {
                note(BIDI_OVERRIDE);
            }
            out.extend(span.iter().rev());
        }
        span.clear();
    };
    for c in text.chars() {
        let reversing = stack.last().copied().unwrap_or(false);
        match c {
            '\u{202E}' => {
                stack.push(true);
                note(INVISIBLE);
            }
            '\u{202A}' | '\u{202B}' | '\u{202D}' | '\u{2066}' | '\u{2067}' | '\u{2068}' => {
                flush(&mut span, &mut out, note);
                stack.push(false);
                note(INVISIBLE);
            }
            '\u{202C}' | '\u{2069}' => {
                if reversing {
                    flush(&mut span, &mut out, note);
                }
                stack.pop();
                note(INVISIBLE);
            }
            '\u{200E}' | '\u{200F}' | '\u{061C}' => note(INVISIBLE),
            '\n' | '\r' => {
                // Overrides end with the paragraph.
                flush(&mut span, &mut out, note);
                stack.clear();
                out.push(c);
            }
            c if reversing => span.push(c),
            c => out.push(c),
        }
    }
    flush(&mut span, &mut out, note);
    out
}

fn is_invisible(c: char) -> bool {
    // C0 and C1 controls but tab and line breaks: a NUL inside a word shows nothing either.
    matches!(c as u32,
        0x00..=0x08 | 0x0E..=0x1F | 0x7F..=0x9F | 0x00AD | 0x034F | 0x115F | 0x1160 | 0x180B..=0x180F | 0x200B..=0x200D | 0x2060..=0x2064
        | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xE0000..=0xE007F | 0xE0100..=0xE01EF)
}

/// Zero-width characters, tag characters and variation selectors: nothing on screen, but they
/// split words for a scorer.
fn drop_invisible(text: &str, note: &mut impl FnMut(&'static str)) -> String {
    let chars: Vec<char> = text.chars().collect();
    // Whether the nearest visible character after each position is a letter, computed once
    // (a scan per invisible character would be quadratic on a line of them).
    let mut letter_after = vec![false; chars.len() + 1];
    for i in (0..chars.len()).rev() {
        letter_after[i] = if is_invisible(chars[i]) {
            letter_after[i + 1]
        } else {
            chars[i].is_alphanumeric()
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut letter_before = false;
    for (i, &c) in chars.iter().enumerate() {
        if !is_invisible(c) {
            out.push(c);
            letter_before = c.is_alphanumeric();
            continue;
        }
        // A variation selector or joiner inside an emoji sequence is ordinary; between letters
        // (or as invisible tag text) it is hiding something.
        if letter_before || letter_after[i + 1] || (0xE0000..=0xE007F).contains(&(c as u32)) {
            note(INVISIBLE);
        }
    }
    out
}

/// A letter-like symbol's plain letter: regional indicators, negative circled and squared
/// letters (no Unicode decomposition), and whatever NFKC folds to one ASCII letter or digit
/// (mathematical alphanumerics, full-width, circled, parenthesised, superscripts).
fn letter_of_symbol(c: char) -> Option<char> {
    let u = c as u32;
    let from = |base: u32| char::from_u32('a' as u32 + (u - base));
    match u {
        0x1F1E6..=0x1F1FF => from(0x1F1E6),
        0x1F150..=0x1F169 => from(0x1F150),
        0x1F170..=0x1F189 => from(0x1F170),
        _ if c.is_ascii() => None,
        _ => {
            let mut folded = std::iter::once(c).nfkc();
            match (folded.next(), folded.next()) {
                (Some(f), None) if f.is_ascii_alphanumeric() => Some(f),
                _ => None,
            }
        }
    }
}

/// Grade-1 Braille's letters a-z (U+2800 + the dot pattern).
const BRAILLE_LETTERS: [u8; 26] = [
    0x01, 0x03, 0x09, 0x19, 0x11, 0x0B, 0x1B, 0x13, 0x0A, 0x1A, 0x05, 0x07, 0x0D, 0x1D, 0x15, 0x0F,
    0x1F, 0x17, 0x0E, 0x1E, 0x25, 0x27, 0x3A, 0x2D, 0x3D, 0x35,
];

fn braille_letter(c: char) -> Option<char> {
    let dots = (c as u32).checked_sub(0x2800).filter(|d| *d < 0x40)? as u8;
    let i = BRAILLE_LETTERS.iter().position(|b| *b == dots)?;
    char::from_u32('a' as u32 + i as u32)
}

/// Braille cells spelling letters: a run of two or more that are nearly all letters is
/// words (one cell is a symbol); the blank cell between them is a space.
fn braille_letters(text: &str, note: &mut impl FnMut(&'static str)) -> String {
    let is_cell = |c: char| ('\u{2800}'..='\u{28FF}').contains(&c);
    if !text.chars().any(is_cell) {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let n = chars[i..].iter().take_while(|c| is_cell(**c)).count();
        if n == 0 {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = &chars[i..i + n];
        let letters = run.iter().filter(|c| braille_letter(**c).is_some()).count();
        let cells = run.iter().filter(|c| **c != '\u{2800}').count();
        // Braille art (dense cells, dots 7 and 8) is no spelled word.
        if letters >= 2 && letters * 10 >= cells * 9 {
            note(BRAILLE);
            out.extend(run.iter().map(|c| match braille_letter(*c) {
                Some(l) => l,
                None if *c == '\u{2800}' => ' ',
                None => *c,
            }));
        } else {
            out.extend(run);
        }
        i += n;
    }
    out
}

fn is_regional_indicator(c: char) -> bool {
    (0x1F1E6..=0x1F1FF).contains(&(c as u32))
}

fn map_letter_symbols(text: &str, note: &mut impl FnMut(&'static str)) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_regional_indicator(c) {
            // One or two are a flag ("🇧🇷"); three or more spell a word.
            let n = chars[i..]
                .iter()
                .take_while(|c| is_regional_indicator(**c))
                .count();
            let run = &chars[i..i + n];
            if n >= 3 {
                note(LETTER_SYMBOLS);
                out.extend(run.iter().filter_map(|c| letter_of_symbol(*c)));
            } else {
                out.extend(run);
            }
            i += n;
            continue;
        }
        match letter_of_symbol(c) {
            Some(l) => {
                note(LETTER_SYMBOLS);
                out.push(l);
            }
            None => out.push(c),
        }
        i += 1;
    }
    out
}

/// Letters from Latin's phonetic and small-capital blocks, used only to look like Latin.
fn is_latin_lookalike_block(c: char) -> bool {
    matches!(c as u32, 0x0250..=0x02AF | 0x1D00..=0x1DBF | 0xA730..=0xA7FF)
}

/// The ASCII letter a look-alike stands for (Cyrillic "о", Greek "ο", small capital "ᴋ").
fn ascii_lookalike(c: char) -> Option<char> {
    if c.is_ascii() || !c.is_alphabetic() {
        return None;
    }
    match decancer::cure_char(c, decancer::Options::default()) {
        decancer::Translation::Character(t) if t.is_ascii_alphanumeric() => {
            Some(t.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// Cyrillic and Greek letters drawn the same as a Latin letter.
fn homoglyph(c: char) -> Option<char> {
    Some(match c {
        'а' | 'А' | 'α' | 'Α' => 'a',
        'В' | 'Β' => 'b',
        'с' | 'С' => 'c',
        'ԁ' => 'd',
        'е' | 'Е' | 'Ε' => 'e',
        'һ' | 'Н' | 'Η' => 'h',
        'і' | 'І' | 'ι' | 'Ι' | 'ӏ' => 'i',
        'ј' | 'Ј' => 'j',
        'К' | 'κ' | 'Κ' => 'k',
        'М' | 'Μ' => 'm',
        'Ν' => 'n',
        'о' | 'О' | 'ο' | 'Ο' => 'o',
        'р' | 'Р' | 'ρ' | 'Ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' | 'Ѕ' => 's',
        'Т' | 'Τ' => 't',
        'υ' => 'u',
        'ν' => 'v',
        'ԝ' => 'w',
        'х' | 'Х' | 'Χ' => 'x',
        'у' | 'У' | 'Υ' => 'y',
        'Ζ' => 'z',
        _ => return None,
    })
}

/// Look-alikes are mapped inside words that mix them with Latin letters, and in words made
/// wholly of letters drawn like Latin ones in a message that is otherwise Latin; Russian or
/// Greek text stays as written.
fn unmix_scripts(text: &str, note: &mut impl FnMut(&'static str)) -> String {
    let latin_words = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().any(|c| c.is_ascii_alphabetic()))
        .count();
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let mut finish = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let has_ascii = word.chars().any(|c| c.is_ascii_alphabetic());
        // Accented Latin letters are how languages are written, not look-alikes.
        let foreign: Vec<char> = word
            .chars()
            .filter(|c| !c.is_ascii() && !matches!(*c as u32, 0x00C0..=0x024F | 0x1E00..=0x1EFF))
            .collect();
        let all_lookalike = !foreign.is_empty()
            && foreign
                .iter()
                .all(|c| is_combining_mark(*c) || ascii_lookalike(*c).is_some());
        let only_phonetic = foreign
            .iter()
            .all(|c| is_latin_lookalike_block(*c) || is_combining_mark(*c));
        let all_homoglyphs = !foreign.is_empty()
            && foreign
                .iter()
                .all(|c| is_combining_mark(*c) || homoglyph(*c).is_some());
        let map = all_lookalike && (has_ascii || only_phonetic);
        if map || (all_homoglyphs && latin_words > 0) {
            note(MIXED_SCRIPT);
            for c in word.chars() {
                let lookalike = foreign
                    .contains(&c)
                    .then(|| homoglyph(c).or_else(|| ascii_lookalike(c)));
                match lookalike.flatten() {
                    Some(l) => out.push(l),
                    None => out.push(c),
                }
            }
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() || is_combining_mark(c) {
            word.push(c);
        } else {
            finish(&mut word, &mut out);
            out.push(c);
        }
    }
    finish(&mut word, &mut out);
    out
}

/// Marks no orthography uses: overlays and enclosing marks.
fn is_decoration_mark(c: char) -> bool {
    matches!(c as u32, 0x0334..=0x0338 | 0x20D2..=0x20D3 | 0x20DD..=0x20E4 | 0x20E5..=0x20E6)
}

/// Zalgo: in a word where some letter carries two or more combining marks, or an overlay mark,
/// the marks are decoration, not spelling. Single accents stay (they are how many languages
/// are written).
fn strip_stacked_marks(text: &str, note: &mut impl FnMut(&'static str)) -> String {
    let decomposed: Vec<char> = text.nfd().collect();
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    while start < decomposed.len() {
        let in_word = |c: &char| c.is_alphanumeric() || is_combining_mark(*c);
        let word_len = decomposed[start..]
            .iter()
            .take_while(|c| in_word(c))
            .count();
        if word_len == 0 {
            out.push(decomposed[start]);
            start += 1;
            continue;
        }
        let word = &decomposed[start..start + word_len];
        let mut stacked = false;
        let mut run = 0;
        for c in word {
            if is_combining_mark(*c) {
                run += 1;
                stacked |= run >= 2 || is_decoration_mark(*c);
            } else {
                run = 0;
            }
        }
        if stacked {
            note(STACKED_MARKS);
            out.extend(word.iter().filter(|c| !is_combining_mark(**c)));
        } else {
            out.extend(word);
        }
        start += word_len;
    }
    out.nfc().collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunKind {
    Word,
    Space,
    Other,
}

fn runs(text: &str) -> Vec<(RunKind, String)> {
    let mut out: Vec<(RunKind, String)> = Vec::new();
    for c in text.chars() {
        let kind = if c.is_alphanumeric() || is_combining_mark(c) || is_apostrophe(c) {
            RunKind::Word
        } else if c.is_whitespace() {
            RunKind::Space
        } else {
            RunKind::Other
        };
        match out.last_mut() {
            Some((k, s)) if *k == kind => s.push(c),
            _ => out.push((kind, c.to_string())),
        }
    }
    out
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | 'ʼ')
}

fn letter_count(s: &str) -> usize {
    s.chars().filter(|c| c.is_alphanumeric()).count()
}

/// How a run of symbols between two words splits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// Ordinary writing: one punctuation mark between longer words ("re-enter",
    /// "discord.gg", "10:30", "こんにちは、元気").
    No,
    /// One punctuation mark between single letters ("k.i.l.l", "f*u*c*k"): a split when three
    /// or more letters are spelled this way ("e.g." is not).
    Spelled,
    /// Any emoji or other symbol, or repeated punctuation ("fu..ck").
    Yes,
}

/// Punctuation of the world's scripts ("、", "¿", "…", "،"): ordinary writing, like ASCII's.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c as u32,
            0x00A1..=0x00BF | 0x0589 | 0x05BE | 0x05C0 | 0x05C3 | 0x05F3 | 0x05F4 | 0x060C
            | 0x061B | 0x061F | 0x06D4 | 0x0964 | 0x0965 | 0x0E5A | 0x0E5B | 0x2010..=0x2027
            | 0x2030..=0x205E | 0x3000..=0x303F | 0xFE10..=0xFE6F | 0xFF01..=0xFF0F
            | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65)
}

fn split_kind(sep: &str, before: &str, after: &str) -> Split {
    let symbols = sep.chars().any(|c| !is_punctuation(c));
    if symbols || sep.chars().count() >= 2 {
        Split::Yes
    } else if letter_count(before) == 1 && letter_count(after) == 1 {
        Split::Spelled
    } else {
        Split::No
    }
}

/// Letters that stand for words in chat ("u r a", "c u", "i"): three of them in a row are
/// shorthand, not a spelled-out word.
fn is_shorthand_letter(s: &str) -> bool {
    matches!(
        s.to_lowercase().as_str(),
        "a" | "i" | "u" | "r" | "y" | "c" | "b" | "n" | "o"
    )
}

/// Join letters split by symbols, and runs of three or more single letters split by single
/// spaces ("k i l l"); two spaces or more stay a word break ("k i l l  y o u").
fn join_separated_letters(text: &str, note: &mut impl FnMut(&'static str)) -> String {
    let runs = runs(text);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < runs.len() {
        let (kind, s) = &runs[i];
        if *kind == RunKind::Word {
            // Symbol-split word: word (other word)+
            let mut j = i;
            let mut joined = s.clone();
            let mut strong = false;
            while j + 2 < runs.len()
                && runs[j + 1].0 == RunKind::Other
                && runs[j + 2].0 == RunKind::Word
            {
                match split_kind(&runs[j + 1].1, &runs[j].1, &runs[j + 2].1) {
                    Split::No => break,
                    Split::Spelled => {}
                    Split::Yes => strong = true,
                }
                joined.push_str(&runs[j + 2].1);
                j += 2;
            }
            if j > i && (strong || (j - i) / 2 + 1 >= 3) {
                note(SEPARATED_LETTERS);
                out.push_str(&joined);
                i = j + 1;
                continue;
            }
            // Spelled out with single spaces: three or more one-letter words.
            let mut k = i;
            while k + 2 < runs.len()
                && letter_count(&runs[k].1) == 1
                && runs[k + 1].0 == RunKind::Space
                && runs[k + 1].1 == " "
                && runs[k + 2].0 == RunKind::Word
                && letter_count(&runs[k + 2].1) == 1
            {
                k += 2;
            }
            let spelled = runs[i..=k].iter().step_by(2);
            if (k - i) / 2 + 1 >= 3 {
                if spelled.clone().all(|r| is_shorthand_letter(&r.1)) {
                    // Shorthand stays as written, and is not scanned again from its middle.
                    runs[i..=k].iter().for_each(|r| out.push_str(&r.1));
                } else {
                    note(SEPARATED_LETTERS);
                    spelled.for_each(|r| out.push_str(&r.1));
                }
                i = k + 1;
                continue;
            }
        }
        out.push_str(s);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<String> {
        reveal(text).map(|r| r.text)
    }

    #[test]
    fn each_evasion_class_reads_as_plain_words() {
        let cases = [
            (
                "k🔥i🔥l🔥l y🔥o🔥u🔥r🔥s🔥e🔥l🔥f",
                "kill yourself",
                SEPARATED_LETTERS,
            ),
            ("f*u*c*k you", "fuck you", SEPARATED_LETTERS),
            (
                "you fu..cking id..iot",
                "you fucking idiot",
                SEPARATED_LETTERS,
            ),
            ("k.i.l.l yourself", "kill yourself", SEPARATED_LETTERS),
            (
                "k i l l  y o u r s e l f",
                "kill  yourself",
                SEPARATED_LETTERS,
            ),
            (
                "\u{202E}flesruoy llik\u{202C} lol",
                "kill yourself lol",
                BIDI_OVERRIDE,
            ),
            ("ki\u{200B}ll your\u{2060}self", "kill yourself", INVISIBLE),
            ("i\u{FE0F}d\u{FE0F}i\u{FE0F}o\u{FE0F}t", "idiot", INVISIBLE),
            ("𝐤𝐢𝐥𝐥 𝐲𝐨𝐮𝐫𝐬𝐞𝐥𝐟", "kill yourself", LETTER_SYMBOLS),
            ("🇰🇮🇱🇱 yourself", "kill yourself", LETTER_SYMBOLS),
            ("ⓘⓓⓘⓞⓣ", "idiot", LETTER_SYMBOLS),
            ("🅸🅳🅸🅾🆃", "idiot", LETTER_SYMBOLS),
            ("ｉｄｉｏｔ", "idiot", LETTER_SYMBOLS),
            ("you іdіоt", "you idiot", MIXED_SCRIPT),
            ("ᴋɪʟʟ yourself", "kill yourself", MIXED_SCRIPT),
            ("i̷̢d̴̛i̸o̵͘t̶̕", "idiot", STACKED_MARKS),
            ("flesruoy llik", "kill yourself", REVERSED),
            ("gg reggin", "gg nigger", REVERSED),
            ("⠅⠊⠇⠇⠀⠽⠕⠥⠗⠎⠑⠇⠋", "kill yourself", BRAILLE),
            ("ki\u{0}ll you", "kill you", INVISIBLE),
        ];
        for (input, want, class) in cases {
            let r = reveal(input).unwrap_or_else(|| panic!("{input:?} not revealed"));
            assert_eq!(r.text, want, "{input:?}");
            assert!(
                r.evasions.iter().any(|e| e == class),
                "{input:?}: {:?}",
                r.evasions
            );
        }
    }

    #[test]
    fn ordinary_writing_is_left_alone() {
        for text in [
            "gg wp 🔥🔥",
            "❤️ thanks for the carry",
            "👨‍👩‍👧 family stream tonight",
            "re-enter the lobby at 10:30",
            "join discord.gg/abc123 for scrims",
            "e.g. the boss",
            "don't worry, it's fine",
            "привет, как дела?",
            "مرحبا كيف حالك",
            "שלום לכולם",
            "こんにちは、元気？",
            "café, élève, año, straße",
            "I am a pro",
            "u r a legend",
            "3.5 kd ratio",
            "nice!!! gg",
            "⣿⣿⣿⡿⠿⠛⠋⠉⣿⣿⣿ gg",
        ] {
            assert_eq!(read(text), None, "{text:?}");
        }
    }

    #[test]
    fn long_runs_of_single_letters_take_linear_time() {
        // Rescanning a rejected run from its middle made this quadratic (minutes).
        let text = "a ".repeat(200_000);
        assert_eq!(read(&text), None);
        // As did looking for the letters around each of a long line of invisible characters.
        let hidden = format!("k{}ill you", "\u{200B}".repeat(200_000));
        assert_eq!(read(&hidden).as_deref(), Some("kill you"));
    }

    #[test]
    fn right_to_left_language_under_an_override_is_not_reversed() {
        assert_eq!(read("\u{202E}שלום\u{202C}"), None);
    }
}
