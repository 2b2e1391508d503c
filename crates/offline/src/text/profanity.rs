//! Pure-Rust evaluator for the `alt-profanity-check` 1.9.1 model (MIT, see
//! `data/PROFANITY-MODEL-LICENSE.md`): sklearn `TfidfVectorizer` + `CalibratedClassifierCV`
//! of sigmoid-calibrated linear SVMs, exported by `scripts/export_profanity_model.py`.
//! `probability` reproduces sklearn's `predict_proba(...)[:, 1]`, summing in sklearn's order.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::error::Error;

/// The only token pattern the hand-written tokenizer below implements.
const TOKEN_PATTERN: &str = r"(?u)\b\w\w+\b";
const FORMAT: u32 = 1;

/// Where the weights came from, as recorded by the export script.
#[derive(Debug, Clone, Deserialize)]
pub struct ProfanityModelSource {
    pub package: String,
    pub version: String,
    pub sha256: String,
    pub licence: String,
}

#[derive(Deserialize)]
struct RawModel {
    format: u32,
    source: ProfanityModelSource,
    vectorizer: RawVectorizer,
    classifiers: Vec<RawClassifier>,
}

#[derive(Deserialize)]
struct RawVectorizer {
    lowercase: bool,
    token_pattern: String,
    ngram_range: (u32, u32),
    norm: Option<String>,
    use_idf: bool,
    sublinear_tf: bool,
    binary: bool,
    stop_words: Vec<String>,
    vocabulary: HashMap<String, u32>,
    idf: Vec<f64>,
}

#[derive(Deserialize)]
struct RawClassifier {
    coef: Vec<f64>,
    intercept: f64,
    sigmoid_a: f64,
    sigmoid_b: f64,
}

#[derive(Debug, Clone, Copy)]
struct Calibration {
    intercept: f64,
    a: f64,
    b: f64,
}

#[derive(Debug, Clone)]
pub struct ProfanityModel {
    source: ProfanityModelSource,
    /// term -> column; stop words are dropped here once, which equals sklearn's
    /// per-call filtering because only unigrams are supported.
    columns: HashMap<String, u32>,
    idf: Vec<f64>,
    /// Column-major (`col * n_classifiers + k`) so one pass over a text's features
    /// updates every classifier's score from adjacent memory.
    weights: Vec<f64>,
    calibrations: Vec<Calibration>,
}

impl ProfanityModel {
    /// Parses and validates an exported model (2 MB; parse once and keep it).
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let raw: RawModel = serde_json::from_slice(bytes).map_err(Error::ProfanityParse)?;
        let v = raw.vectorizer;
        check_supported(raw.format, &v)?;
        check_vocabulary(&v.vocabulary, v.idf.len())?;
        let (weights, calibrations) = column_major(&raw.classifiers, v.idf.len())?;
        Ok(Self {
            source: raw.source,
            columns: without_stop_words(v.vocabulary, &v.stop_words),
            idf: v.idf,
            weights,
            calibrations,
        })
    }

    /// The model committed in `data/profanity-model.json`.
    pub fn embedded() -> Result<Self, Error> {
        Self::from_json(include_bytes!("../../data/profanity-model.json"))
    }

    pub fn source(&self) -> &ProfanityModelSource {
        &self.source
    }

    /// Probability (0..=1) that `text` is profane/offensive, as sklearn's `predict_proba`.
    pub fn probability(&self, text: &str) -> f64 {
        let lower = text.to_lowercase();
        let mut cols: Vec<u32> = Vec::new();
        for_each_token(&lower, |token| {
            if let Some(&col) = self.columns.get(token) {
                cols.push(col);
            }
        });
        // sklearn's CSR rows are sorted by column; keep its summation order.
        cols.sort_unstable();
        let mut features: Vec<(usize, f64)> = Vec::with_capacity(cols.len());
        for col in cols {
            let col = col as usize;
            match features.last_mut() {
                Some((last, count)) if *last == col => *count += 1.0,
                _ => features.push((col, 1.0)),
            }
        }
        let mut sum_sq = 0.0;
        for (col, value) in &mut features {
            *value *= self.idf[*col];
            sum_sq += *value * *value;
        }
        // sklearn leaves all-zero rows untouched instead of dividing by zero.
        if sum_sq != 0.0 {
            let norm = sum_sq.sqrt();
            for (_, value) in &mut features {
                *value /= norm;
            }
        }

        let k = self.calibrations.len();
        let mut scores = vec![0.0; k];
        for &(col, value) in &features {
            let row = &self.weights[col * k..(col + 1) * k];
            for (score, &w) in scores.iter_mut().zip(row) {
                *score += value * w;
            }
        }
        let mut total = 0.0;
        for (score, cal) in scores.iter().zip(&self.calibrations) {
            // sklearn: expit(-(a * decision + b)).
            total += 1.0 / (1.0 + (cal.a * (score + cal.intercept) + cal.b).exp());
        }
        total / k as f64
    }
}

/// The export's format and the vectorizer settings this evaluator implements (lowercased
/// unigrams of the one token pattern, l2-normalised raw-count tf-idf); anything else is refused.
fn check_supported(format: u32, v: &RawVectorizer) -> Result<(), Error> {
    let unsupported = |setting, found: String| Err(Error::ProfanityUnsupported { setting, found });
    if format != FORMAT {
        return unsupported("format", format.to_string());
    }
    if !v.lowercase {
        return unsupported("lowercase", "false".into());
    }
    if v.token_pattern != TOKEN_PATTERN {
        return unsupported("token_pattern", v.token_pattern.clone());
    }
    if v.ngram_range != (1, 1) {
        return unsupported("ngram_range", format!("{:?}", v.ngram_range));
    }
    if v.norm.as_deref() != Some("l2") {
        return unsupported("norm", format!("{:?}", v.norm));
    }
    if !v.use_idf || v.sublinear_tf || v.binary {
        return unsupported(
            "use_idf/sublinear_tf/binary",
            format!("{}/{}/{}", v.use_idf, v.sublinear_tf, v.binary),
        );
    }
    Ok(())
}

/// Every one of the `n` columns (idf values) has exactly one term.
fn check_vocabulary(vocabulary: &HashMap<String, u32>, n: usize) -> Result<(), Error> {
    if vocabulary.len() != n {
        return Err(Error::ProfanityShape(format!(
            "{} vocabulary terms but {n} idf values",
            vocabulary.len()
        )));
    }
    let mut seen = vec![false; n];
    for (term, &col) in vocabulary {
        match seen.get_mut(col as usize) {
            Some(slot) if !*slot => *slot = true,
            _ => {
                return Err(Error::ProfanityShape(format!(
                    "term {term:?} has out-of-range or duplicate column {col}"
                )))
            }
        }
    }
    Ok(())
}

/// The classifiers' coefficients column-major (`col * k + i` for classifier `i` of `k`), so
/// one pass over a text's features updates every score, and their calibrations in order.
fn column_major(
    classifiers: &[RawClassifier],
    n: usize,
) -> Result<(Vec<f64>, Vec<Calibration>), Error> {
    if classifiers.is_empty() {
        return Err(Error::ProfanityShape("no classifiers".into()));
    }
    let k = classifiers.len();
    let mut weights = vec![0.0; n * k];
    let mut calibrations = Vec::with_capacity(k);
    for (i, clf) in classifiers.iter().enumerate() {
        if clf.coef.len() != n {
            return Err(Error::ProfanityShape(format!(
                "classifier {i} has {} coefficients, expected {n}",
                clf.coef.len()
            )));
        }
        for (col, &w) in clf.coef.iter().enumerate() {
            weights[col * k + i] = w;
        }
        calibrations.push(Calibration {
            intercept: clf.intercept,
            a: clf.sigmoid_a,
            b: clf.sigmoid_b,
        });
    }
    Ok((weights, calibrations))
}

/// The vocabulary without its stop words: dropped once here, which equals sklearn's per-call
/// filtering because only unigrams are supported.
fn without_stop_words(
    vocabulary: HashMap<String, u32>,
    stop_words: &[String],
) -> HashMap<String, u32> {
    let stop: HashSet<&str> = stop_words.iter().map(String::as_str).collect();
    vocabulary
        .into_iter()
        .filter(|(term, _)| !stop.contains(term.as_str()))
        .collect()
}

// Known divergence: chars that became letters/digits after Python's Unicode (14.0 in 3.11) are word chars here; lowercasing follows Rust's newer tables.
fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    c.is_alphanumeric()
        && NOT_PYTHON_WORD
            .binary_search_by(|&(lo, hi)| range_order(lo, hi, c))
            .is_err()
}

fn range_order(lo: char, hi: char, c: char) -> std::cmp::Ordering {
    if hi < c {
        std::cmp::Ordering::Less
    } else if lo > c {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// Python's `\w` is str.isalnum() or '_', i.e. general categories L* and N*. Rust's
/// `is_alphanumeric` also accepts Other_Alphabetic marks (Mn/Mc: Zalgo-style Latin letters,
/// Hebrew/Arabic points, Indic vowel signs) and circled/squared letters (So); these
/// sorted ranges are exactly those chars, found by comparing `is_alphanumeric` (Rust 1.95)
/// with Python 3.13's unicodedata (Unicode 15.1) over every code point.
const NOT_PYTHON_WORD: &[(char, char)] = &[
    ('\u{0345}', '\u{0345}'),
    ('\u{0363}', '\u{036F}'),
    ('\u{05B0}', '\u{05BD}'),
    ('\u{05BF}', '\u{05BF}'),
    ('\u{05C1}', '\u{05C2}'),
    ('\u{05C4}', '\u{05C5}'),
    ('\u{05C7}', '\u{05C7}'),
    ('\u{0610}', '\u{061A}'),
    ('\u{064B}', '\u{0657}'),
    ('\u{0659}', '\u{065F}'),
    ('\u{0670}', '\u{0670}'),
    ('\u{06D6}', '\u{06DC}'),
    ('\u{06E1}', '\u{06E4}'),
    ('\u{06E7}', '\u{06E8}'),
    ('\u{06ED}', '\u{06ED}'),
    ('\u{0711}', '\u{0711}'),
    ('\u{0730}', '\u{073F}'),
    ('\u{07A6}', '\u{07B0}'),
    ('\u{0816}', '\u{0817}'),
    ('\u{081B}', '\u{0823}'),
    ('\u{0825}', '\u{0827}'),
    ('\u{0829}', '\u{082C}'),
    ('\u{08D4}', '\u{08DF}'),
    ('\u{08E3}', '\u{08E9}'),
    ('\u{08F0}', '\u{0903}'),
    ('\u{093A}', '\u{093B}'),
    ('\u{093E}', '\u{094C}'),
    ('\u{094E}', '\u{094F}'),
    ('\u{0955}', '\u{0957}'),
    ('\u{0962}', '\u{0963}'),
    ('\u{0981}', '\u{0983}'),
    ('\u{09BE}', '\u{09C4}'),
    ('\u{09C7}', '\u{09C8}'),
    ('\u{09CB}', '\u{09CC}'),
    ('\u{09D7}', '\u{09D7}'),
    ('\u{09E2}', '\u{09E3}'),
    ('\u{0A01}', '\u{0A03}'),
    ('\u{0A3E}', '\u{0A42}'),
    ('\u{0A47}', '\u{0A48}'),
    ('\u{0A4B}', '\u{0A4C}'),
    ('\u{0A51}', '\u{0A51}'),
    ('\u{0A70}', '\u{0A71}'),
    ('\u{0A75}', '\u{0A75}'),
    ('\u{0A81}', '\u{0A83}'),
    ('\u{0ABE}', '\u{0AC5}'),
    ('\u{0AC7}', '\u{0AC9}'),
    ('\u{0ACB}', '\u{0ACC}'),
    ('\u{0AE2}', '\u{0AE3}'),
    ('\u{0AFA}', '\u{0AFC}'),
    ('\u{0B01}', '\u{0B03}'),
    ('\u{0B3E}', '\u{0B44}'),
    ('\u{0B47}', '\u{0B48}'),
    ('\u{0B4B}', '\u{0B4C}'),
    ('\u{0B56}', '\u{0B57}'),
    ('\u{0B62}', '\u{0B63}'),
    ('\u{0B82}', '\u{0B82}'),
    ('\u{0BBE}', '\u{0BC2}'),
    ('\u{0BC6}', '\u{0BC8}'),
    ('\u{0BCA}', '\u{0BCC}'),
    ('\u{0BD7}', '\u{0BD7}'),
    ('\u{0C00}', '\u{0C04}'),
    ('\u{0C3E}', '\u{0C44}'),
    ('\u{0C46}', '\u{0C48}'),
    ('\u{0C4A}', '\u{0C4C}'),
    ('\u{0C55}', '\u{0C56}'),
    ('\u{0C62}', '\u{0C63}'),
    ('\u{0C81}', '\u{0C83}'),
    ('\u{0CBE}', '\u{0CC4}'),
    ('\u{0CC6}', '\u{0CC8}'),
    ('\u{0CCA}', '\u{0CCC}'),
    ('\u{0CD5}', '\u{0CD6}'),
    ('\u{0CE2}', '\u{0CE3}'),
    ('\u{0CF3}', '\u{0CF3}'),
    ('\u{0D00}', '\u{0D03}'),
    ('\u{0D3E}', '\u{0D44}'),
    ('\u{0D46}', '\u{0D48}'),
    ('\u{0D4A}', '\u{0D4C}'),
    ('\u{0D57}', '\u{0D57}'),
    ('\u{0D62}', '\u{0D63}'),
    ('\u{0D81}', '\u{0D83}'),
    ('\u{0DCF}', '\u{0DD4}'),
    ('\u{0DD6}', '\u{0DD6}'),
    ('\u{0DD8}', '\u{0DDF}'),
    ('\u{0DF2}', '\u{0DF3}'),
    ('\u{0E31}', '\u{0E31}'),
    ('\u{0E34}', '\u{0E3A}'),
    ('\u{0E4D}', '\u{0E4D}'),
    ('\u{0EB1}', '\u{0EB1}'),
    ('\u{0EB4}', '\u{0EB9}'),
    ('\u{0EBB}', '\u{0EBC}'),
    ('\u{0ECD}', '\u{0ECD}'),
    ('\u{0F71}', '\u{0F83}'),
    ('\u{0F8D}', '\u{0F97}'),
    ('\u{0F99}', '\u{0FBC}'),
    ('\u{102B}', '\u{1036}'),
    ('\u{1038}', '\u{1038}'),
    ('\u{103B}', '\u{103E}'),
    ('\u{1056}', '\u{1059}'),
    ('\u{105E}', '\u{1060}'),
    ('\u{1062}', '\u{1064}'),
    ('\u{1067}', '\u{106D}'),
    ('\u{1071}', '\u{1074}'),
    ('\u{1082}', '\u{108D}'),
    ('\u{108F}', '\u{108F}'),
    ('\u{109A}', '\u{109D}'),
    ('\u{1712}', '\u{1713}'),
    ('\u{1732}', '\u{1733}'),
    ('\u{1752}', '\u{1753}'),
    ('\u{1772}', '\u{1773}'),
    ('\u{17B6}', '\u{17C8}'),
    ('\u{1885}', '\u{1886}'),
    ('\u{18A9}', '\u{18A9}'),
    ('\u{1920}', '\u{192B}'),
    ('\u{1930}', '\u{1938}'),
    ('\u{1A17}', '\u{1A1B}'),
    ('\u{1A55}', '\u{1A5E}'),
    ('\u{1A61}', '\u{1A74}'),
    ('\u{1ABF}', '\u{1AC0}'),
    ('\u{1ACC}', '\u{1ACE}'),
    ('\u{1B00}', '\u{1B04}'),
    ('\u{1B35}', '\u{1B43}'),
    ('\u{1B80}', '\u{1B82}'),
    ('\u{1BA1}', '\u{1BA9}'),
    ('\u{1BAC}', '\u{1BAD}'),
    ('\u{1BE7}', '\u{1BF1}'),
    ('\u{1C24}', '\u{1C36}'),
    ('\u{1DD3}', '\u{1DF4}'),
    ('\u{24B6}', '\u{24E9}'),
    ('\u{2DE0}', '\u{2DFF}'),
    ('\u{A674}', '\u{A67B}'),
    ('\u{A69E}', '\u{A69F}'),
    ('\u{A802}', '\u{A802}'),
    ('\u{A80B}', '\u{A80B}'),
    ('\u{A823}', '\u{A827}'),
    ('\u{A880}', '\u{A881}'),
    ('\u{A8B4}', '\u{A8C3}'),
    ('\u{A8C5}', '\u{A8C5}'),
    ('\u{A8FF}', '\u{A8FF}'),
    ('\u{A926}', '\u{A92A}'),
    ('\u{A947}', '\u{A952}'),
    ('\u{A980}', '\u{A983}'),
    ('\u{A9B4}', '\u{A9BF}'),
    ('\u{A9E5}', '\u{A9E5}'),
    ('\u{AA29}', '\u{AA36}'),
    ('\u{AA43}', '\u{AA43}'),
    ('\u{AA4C}', '\u{AA4D}'),
    ('\u{AA7B}', '\u{AA7D}'),
    ('\u{AAB0}', '\u{AAB0}'),
    ('\u{AAB2}', '\u{AAB4}'),
    ('\u{AAB7}', '\u{AAB8}'),
    ('\u{AABE}', '\u{AABE}'),
    ('\u{AAEB}', '\u{AAEF}'),
    ('\u{AAF5}', '\u{AAF5}'),
    ('\u{ABE3}', '\u{ABEA}'),
    ('\u{FB1E}', '\u{FB1E}'),
    ('\u{10376}', '\u{1037A}'),
    ('\u{10A01}', '\u{10A03}'),
    ('\u{10A05}', '\u{10A06}'),
    ('\u{10A0C}', '\u{10A0F}'),
    ('\u{10D24}', '\u{10D27}'),
    ('\u{10EAB}', '\u{10EAC}'),
    ('\u{11000}', '\u{11002}'),
    ('\u{11038}', '\u{11045}'),
    ('\u{11073}', '\u{11074}'),
    ('\u{11080}', '\u{11082}'),
    ('\u{110B0}', '\u{110B8}'),
    ('\u{110C2}', '\u{110C2}'),
    ('\u{11100}', '\u{11102}'),
    ('\u{11127}', '\u{11132}'),
    ('\u{11145}', '\u{11146}'),
    ('\u{11180}', '\u{11182}'),
    ('\u{111B3}', '\u{111BF}'),
    ('\u{111CE}', '\u{111CF}'),
    ('\u{1122C}', '\u{11234}'),
    ('\u{11237}', '\u{11237}'),
    ('\u{1123E}', '\u{1123E}'),
    ('\u{11241}', '\u{11241}'),
    ('\u{112DF}', '\u{112E8}'),
    ('\u{11300}', '\u{11303}'),
    ('\u{1133E}', '\u{11344}'),
    ('\u{11347}', '\u{11348}'),
    ('\u{1134B}', '\u{1134C}'),
    ('\u{11357}', '\u{11357}'),
    ('\u{11362}', '\u{11363}'),
    ('\u{11435}', '\u{11441}'),
    ('\u{11443}', '\u{11445}'),
    ('\u{114B0}', '\u{114C1}'),
    ('\u{115AF}', '\u{115B5}'),
    ('\u{115B8}', '\u{115BE}'),
    ('\u{115DC}', '\u{115DD}'),
    ('\u{11630}', '\u{1163E}'),
    ('\u{11640}', '\u{11640}'),
    ('\u{116AB}', '\u{116B5}'),
    ('\u{1171D}', '\u{1172A}'),
    ('\u{1182C}', '\u{11838}'),
    ('\u{11930}', '\u{11935}'),
    ('\u{11937}', '\u{11938}'),
    ('\u{1193B}', '\u{1193C}'),
    ('\u{11940}', '\u{11940}'),
    ('\u{11942}', '\u{11942}'),
    ('\u{119D1}', '\u{119D7}'),
    ('\u{119DA}', '\u{119DF}'),
    ('\u{119E4}', '\u{119E4}'),
    ('\u{11A01}', '\u{11A0A}'),
    ('\u{11A35}', '\u{11A39}'),
    ('\u{11A3B}', '\u{11A3E}'),
    ('\u{11A51}', '\u{11A5B}'),
    ('\u{11A8A}', '\u{11A97}'),
    ('\u{11C2F}', '\u{11C36}'),
    ('\u{11C38}', '\u{11C3E}'),
    ('\u{11C92}', '\u{11CA7}'),
    ('\u{11CA9}', '\u{11CB6}'),
    ('\u{11D31}', '\u{11D36}'),
    ('\u{11D3A}', '\u{11D3A}'),
    ('\u{11D3C}', '\u{11D3D}'),
    ('\u{11D3F}', '\u{11D41}'),
    ('\u{11D43}', '\u{11D43}'),
    ('\u{11D47}', '\u{11D47}'),
    ('\u{11D8A}', '\u{11D8E}'),
    ('\u{11D90}', '\u{11D91}'),
    ('\u{11D93}', '\u{11D96}'),
    ('\u{11EF3}', '\u{11EF6}'),
    ('\u{11F00}', '\u{11F01}'),
    ('\u{11F03}', '\u{11F03}'),
    ('\u{11F34}', '\u{11F3A}'),
    ('\u{11F3E}', '\u{11F40}'),
    ('\u{16F4F}', '\u{16F4F}'),
    ('\u{16F51}', '\u{16F87}'),
    ('\u{16F8F}', '\u{16F92}'),
    ('\u{16FF0}', '\u{16FF1}'),
    ('\u{1BC9E}', '\u{1BC9E}'),
    ('\u{1E000}', '\u{1E006}'),
    ('\u{1E008}', '\u{1E018}'),
    ('\u{1E01B}', '\u{1E021}'),
    ('\u{1E023}', '\u{1E024}'),
    ('\u{1E026}', '\u{1E02A}'),
    ('\u{1E08F}', '\u{1E08F}'),
    ('\u{1E947}', '\u{1E947}'),
    ('\u{1F130}', '\u{1F149}'),
    ('\u{1F150}', '\u{1F169}'),
    ('\u{1F170}', '\u{1F189}'),
];

/// `re.findall(r"(?u)\b\w\w+\b", text)`: with a greedy `\w+` between word boundaries
/// that is exactly every maximal run of at least two word characters.
fn for_each_token<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let mut start = 0;
    let mut run_chars = 0usize;
    for (i, c) in text.char_indices() {
        if is_word_char(c) {
            if run_chars == 0 {
                start = i;
            }
            run_chars += 1;
        } else {
            if run_chars >= 2 {
                f(&text[start..i]);
            }
            run_chars = 0;
        }
    }
    if run_chars >= 2 {
        f(&text[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Expected {
        text: String,
        probability: f64,
    }

    fn model() -> ProfanityModel {
        ProfanityModel::embedded().expect("embedded model loads")
    }

    fn tokens(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for_each_token(text, |t| out.push(t));
        out
    }

    #[test]
    fn matches_sklearn_predict_proba() {
        let expected: Vec<Expected> =
            serde_json::from_str(include_str!("../../data/profanity-expected.json"))
                .expect("expected file parses");
        assert!(expected.len() >= 24);
        let model = model();
        let mut worst: f64 = 0.0;
        for case in &expected {
            let got = model.probability(&case.text);
            let diff = (got - case.probability).abs();
            worst = worst.max(diff);
            assert!(
                diff <= 1e-9,
                "{:?}: rust {got} vs sklearn {}",
                case.text,
                case.probability
            );
        }
        eprintln!(
            "max |rust - sklearn| = {worst:e} over {} texts",
            expected.len()
        );
    }

    #[test]
    fn tokenizer_matches_python_findall() {
        // Expected values from Python's re.findall(r"(?u)\b\w\w+\b", s).
        assert_eq!(
            tokens("hello, wörld! a bc_d 42 x"),
            ["hello", "wörld", "bc_d", "42"]
        );
        assert_eq!(
            tokens("日本語のテキスト 迷惑"),
            ["日本語のテキスト", "迷惑"]
        );
        assert_eq!(tokens("idiot\u{0363}s \u{24d8}\u{24d3}x"), ["idiot"]);
        assert_eq!(
            tokens("__ _a i\u{0307}stanbul 😀ok😀"),
            ["__", "_a", "stanbul", "ok"]
        );
        assert!(tokens("").is_empty());
        assert!(tokens("a b c ... !!").is_empty());
    }

    #[test]
    fn stop_words_are_ignored() {
        let model = model();
        assert_eq!(model.probability("the and of"), model.probability(""));
        assert_eq!(model.source().package, "alt-profanity-check");
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"{", b"not json", b"{\"format\":1}", b"[]"] {
            assert!(matches!(
                ProfanityModel::from_json(bytes),
                Err(Error::ProfanityParse(_))
            ));
        }
        let full = include_bytes!("../../data/profanity-model.json");
        let truncated = &full[..full.len() / 2];
        assert!(matches!(
            ProfanityModel::from_json(truncated),
            Err(Error::ProfanityParse(_))
        ));
    }

    fn mutated(edit: impl FnOnce(&mut serde_json::Value)) -> Result<ProfanityModel, Error> {
        let mut value: serde_json::Value =
            serde_json::from_slice(include_bytes!("../../data/profanity-model.json"))
                .expect("model is JSON");
        edit(&mut value);
        ProfanityModel::from_json(&serde_json::to_vec(&value).expect("re-serialises"))
    }

    #[test]
    fn inconsistent_or_unsupported_models_are_rejected() {
        let shape = mutated(|v| {
            v["classifiers"][2]["coef"]
                .as_array_mut()
                .expect("coef array")
                .pop();
        });
        assert!(matches!(shape, Err(Error::ProfanityShape(_))));
        let idf = mutated(|v| {
            v["vectorizer"]["idf"]
                .as_array_mut()
                .expect("idf array")
                .push(1.0.into());
        });
        assert!(matches!(idf, Err(Error::ProfanityShape(_))));
        let dup = mutated(|v| {
            v["vectorizer"]["vocabulary"]["fuck"] = v["vectorizer"]["vocabulary"]["idiot"].clone()
        });
        assert!(matches!(dup, Err(Error::ProfanityShape(_))));
        let ngram = mutated(|v| v["vectorizer"]["ngram_range"] = serde_json::json!([1, 2]));
        assert!(matches!(ngram, Err(Error::ProfanityUnsupported { .. })));
        let pattern = mutated(|v| v["vectorizer"]["token_pattern"] = "\\w+".into());
        assert!(matches!(pattern, Err(Error::ProfanityUnsupported { .. })));
        let none = mutated(|v| v["classifiers"] = serde_json::json!([]));
        assert!(matches!(none, Err(Error::ProfanityShape(_))));
    }

    fn classifier(coef: &[f64], intercept: f64) -> RawClassifier {
        RawClassifier {
            coef: coef.to_vec(),
            intercept,
            sigmoid_a: -1.0,
            sigmoid_b: 0.5,
        }
    }

    #[test]
    fn weights_are_laid_out_column_major_with_calibrations_in_order() {
        let (weights, cals) = column_major(
            &[
                classifier(&[1.0, 2.0, 3.0], 0.1),
                classifier(&[4.0, 5.0, 6.0], 0.2),
            ],
            3,
        )
        .expect("shapes agree");
        assert_eq!(weights, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(
            cals.iter().map(|c| c.intercept).collect::<Vec<_>>(),
            [0.1, 0.2]
        );
        let short = column_major(&[classifier(&[1.0, 2.0], 0.0)], 3).expect_err("2 of 3");
        assert!(short
            .to_string()
            .contains("classifier 0 has 2 coefficients, expected 3"));
        assert!(column_major(&[], 3).is_err());
    }

    #[test]
    fn a_vocabulary_must_name_each_column_once() {
        let vocab = |pairs: &[(&str, u32)]| -> HashMap<String, u32> {
            pairs.iter().map(|(t, c)| (t.to_string(), *c)).collect()
        };
        assert!(check_vocabulary(&vocab(&[("aa", 0), ("bb", 1)]), 2).is_ok());
        let duplicate = check_vocabulary(&vocab(&[("aa", 1), ("bb", 1)]), 2).expect_err("dup");
        assert!(
            duplicate.to_string().contains("duplicate column 1"),
            "{duplicate}"
        );
        assert!(check_vocabulary(&vocab(&[("aa", 0), ("bb", 5)]), 2).is_err());
        assert!(check_vocabulary(&vocab(&[("aa", 0)]), 2).is_err());
        let kept = without_stop_words(vocab(&[("the", 0), ("idiot", 1)]), &["the".to_string()]);
        assert_eq!(kept, vocab(&[("idiot", 1)]));
    }
}
