//! Which language a chat message is in.
//!
//! The toxicity services (Comprehend, Transcribe, the offline detector) read English only: a
//! message in another language scored as English gets low scores back, a silent pass. Every
//! message is first put through [`guess`], a cheap pre-filter that settles the common cases
//! without a service call: short lines ("gg", "lol", "xD", "ty all") and lines made of common
//! English and chat words are English; a line mostly in a non-Latin script is not. The rest go
//! to a [`crate::ports::LanguageIdentifier`] (Comprehend `BatchDetectDominantLanguage` on AWS,
//! [`OfflineIdentifier`] offline).

use async_trait::async_trait;

use crate::ports::{Answer, Identified, LanguageIdentifier};
use crate::Result;

/// What the pre-filter could tell without a service.
#[derive(Debug, Clone, PartialEq)]
pub enum Guess {
    English,
    Other(Identified),
    /// Long enough and not plainly English: ask the identifier.
    Unsure,
}

/// Lines with fewer words than this are taken as English: "gg", "lol", "ez", "ty all", names
/// and emotes would otherwise be misread as Swahili or Tagalog by any identifier.
pub const MIN_WORDS: usize = 4;

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            // Phones type a curly apostrophe: "don’t" is "don't".
            w.replace('\u{2019}', "'")
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_lowercase()
        })
        .filter(|w| w.chars().any(char::is_alphabetic))
        .collect()
}

/// Latin letters outside ASCII: English chat rarely has them (a name like "José" at most).
fn has_foreign_letters(text: &str) -> bool {
    text.chars().any(|c| c.is_alphabetic() && !c.is_ascii())
}

/// How many of `w` are common English words ([`crate::text::words::is_english`]).
fn english_words(w: &[String]) -> usize {
    w.iter()
        .filter(|x| crate::text::words::is_english(x))
        .count()
}

fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic() || ('\u{00C0}'..='\u{024F}').contains(&c)
}

/// The pre-filter; see the module documentation.
pub fn guess(text: &str) -> Guess {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() < 2 {
        return Guess::English;
    }
    let latin = letters.iter().filter(|c| is_latin(**c)).count();
    if latin * 2 < letters.len() {
        // Mostly another script: not English, whatever its length. Script-level identification
        // is reliable even for one word.
        return Guess::Other(identify_text(text).unwrap_or(Identified {
            code: "und".into(),
            confidence: 0.0,
        }));
    }
    let w = words(text);
    let english = english_words(&w);
    let foreign = function_word_language(&w).map_or(0, |(_, hits)| hits);
    // Mostly English words, and not more of another language's function words than half the
    // English ones ("gg ez noob hijo de puta" is asked about).
    if english * 3 >= w.len() && foreign * 2 <= english {
        return Guess::English;
    }
    // A short line is English unless it has letters English does not use ("dzięki", "sağlık")
    // or a function word of another language and no English word ("du hurensohn").
    if w.len() < MIN_WORDS && !has_foreign_letters(text) && (foreign == 0 || english > 0) {
        return Guess::English;
    }
    Guess::Unsure
}

/// Function words of the Latin-script languages most often met in game chat: words that carry
/// no topic, so every sentence has some. Words that are also English or chat words ("die",
/// "was", "come", "me", "la", "y", "e", "da") are left out, so English chat cannot collect them.
#[rustfmt::skip]
const FUNCTION_WORDS: &[(&str, &[&str])] = &[
    ("es", &[
        "el", "los", "las", "del", "que", "una", "por", "para", "es", "pero", "muy", "porque",
        "esta", "este", "eso", "esto", "eres", "estás", "estas", "tienes", "tiene", "vas", "voy",
        "puedes", "nada", "todo", "todos", "hay", "ser", "cuando", "donde", "dónde", "qué",
        "quién", "tu", "tú", "él", "ella", "nosotros", "ustedes", "mi", "sus", "les", "nos", "te",
        "sin", "más", "también", "aquí", "ahora", "siempre", "nunca", "jugar", "juego", "hola",
        "gracias", "bien", "mal", "pues", "vete", "eres", "bueno", "otra", "otro", "hacer",
        "mejor",
    ]),
    ("pt", &[
        "você", "voce", "vc", "não", "nao", "que", "uma", "para", "pra", "com", "por", "mas",
        "muito", "isso", "esse", "essa", "isto", "está", "tá", "é", "são", "eu", "ele", "ela",
        "nós", "vocês", "seu", "sua", "meu", "minha", "dos", "das", "nos", "nas", "mais",
        "também", "agora", "sempre", "nunca", "aqui", "jogo", "jogar", "obrigado", "valeu",
        "mano", "tudo", "nada", "vai", "vou", "quem", "onde", "quando", "porque", "então", "já",
        "tem",
    ]),
    ("fr", &[
        "le", "les", "des", "une", "est", "que", "qui", "pas", "je", "tu", "il", "elle", "nous",
        "vous", "ils", "c'est", "cette", "mais", "avec", "pour", "dans", "sur", "du", "au", "aux",
        "mon", "ton", "tes", "mes", "ses", "très", "tres", "trop", "bien", "rien", "tout",
        "jamais", "toujours", "ici", "maintenant", "j'ai", "t'es", "suis", "es", "êtes", "sont",
        "fait", "faire", "jouer", "jeu", "merci", "salut", "oui", "non", "quoi", "comment",
        "pourquoi", "où", "qu'il", "n'est", "ça",
    ]),
    ("de", &[
        "der", "das", "und", "ist", "nicht", "ich", "du", "sie", "wir", "ihr", "ein", "eine",
        "einen", "dem", "mit", "auf", "für", "von", "zu", "aber", "oder", "sehr", "noch", "schon",
        "nur", "jetzt", "immer", "nie", "hier", "bist", "sind", "habe", "hast", "haben", "wird",
        "kann", "kannst", "mich", "dich", "mein", "dein", "spiel", "spielen", "danke", "hallo",
        "warum", "wie", "wer", "wo", "doch", "auch", "keine", "kein", "nichts", "alles",
        "einfach",
    ]),
    ("it", &[
        "gli", "della", "che", "non", "sono", "sei", "è", "una", "uno", "per", "con", "molto",
        "questo", "questa", "quello", "lui", "lei", "noi", "voi", "loro", "mio", "tuo", "suo",
        "del", "dei", "nel", "alla", "anche", "ora", "adesso", "sempre", "mai", "qui", "gioco",
        "giocare", "grazie", "ciao", "perché", "perche", "dove", "quando", "niente", "tutto",
        "tutti", "hai", "fare", "smetti", "proprio",
    ]),
    ("nl", &[
        "het", "een", "niet", "ik", "jij", "je", "hij", "zij", "wij", "jullie", "ze", "dat",
        "deze", "dit", "van", "met", "voor", "maar", "ook", "nog", "heel", "erg", "hier", "nu",
        "altijd", "nooit", "ben", "bent", "zijn", "heb", "hebt", "heeft", "wordt", "kan", "kun",
        "mijn", "jouw", "spel", "spelen", "bedankt", "dank", "hoi", "waarom", "hoe", "wie",
        "waar", "niks", "niets", "alles", "gewoon",
    ]),
    ("pl", &[
        "nie", "jest", "się", "sie", "że", "ze", "jak", "ale", "ona", "wy", "oni", "mój",
        "twój", "jesteś", "jestes", "bardzo", "tak", "już", "juz", "teraz", "zawsze", "nigdy",
        "tutaj", "gra", "grać", "grac", "dzięki", "dzieki", "cześć", "czesc", "dlaczego", "gdzie",
        "kto", "nic", "wszystko", "tylko", "może", "moze", "czy",
    ]),
    ("tr", &[
        "bir", "ve", "bu", "şu", "değil", "degil", "ben", "sen", "biz", "siz", "onlar", "çok",
        "cok", "ama", "için", "icin", "ile", "gibi", "daha", "şimdi", "simdi", "hiç",
        "hic", "burada", "oyun", "oyna", "teşekkürler", "tesekkurler", "merhaba", "neden",
        "nasıl", "nasil", "kim", "nerede", "hiçbir", "yok", "sana", "seni", "beni", "bana", "mı",
        "mi", "mu", "mü",
    ]),
    ("id", &[
        "yang", "dan", "ini", "itu", "tidak", "gak", "ga", "nggak", "aku", "kamu", "dia", "kami",
        "kita", "mereka", "saya", "untuk", "dengan", "dari", "sudah", "udah", "belum", "akan",
        "bisa", "sangat", "banget", "sekarang", "selalu", "terima", "kasih", "kenapa", "siapa",
        "dimana", "apa", "juga", "lagi", "aja", "dong",
    ]),
    ("sv", &[
        "och", "att", "det", "som", "är", "inte", "jag", "du", "han", "hon", "vi", "ni", "den",
        "för", "med", "på", "men", "också", "mycket", "här", "nu", "alltid", "aldrig", "min",
        "din", "spel", "spela", "tack", "hej", "varför", "hur", "vem", "ingenting", "allt",
        "bara",
    ]),
    ("ro", &[
        "și", "si", "este", "nu", "că", "eu", "tu", "ea", "noi", "voi", "pentru", "cu", "din",
        "dar", "foarte", "acum", "mereu", "niciodată", "aici", "joc", "mulțumesc", "multumesc",
        "salut", "cine", "unde", "nimic", "ești", "esti", "sunt",
    ]),
];

/// How many words of `w` each language's function-word list holds: the best language and its
/// count.
fn function_word_language(w: &[String]) -> Option<(&'static str, usize)> {
    FUNCTION_WORDS
        .iter()
        .map(|(code, list)| {
            let hits = w.iter().filter(|x| list.contains(&x.as_str())).count();
            (*code, hits)
        })
        .max_by_key(|(_, hits)| *hits)
        .filter(|(_, hits)| *hits > 0)
}

/// Latin-script languages common in game chat: the trigram model chooses among these for a
/// Latin-script line, so a Portuguese line with a few accents is not read as Afrikaans.
const LATIN_CHAT: &[whatlang::Lang] = {
    use whatlang::Lang::*;
    &[
        Eng, Spa, Por, Fra, Deu, Ita, Nld, Pol, Tur, Swe, Dan, Nob, Fin, Ces, Slk, Hun, Ron, Hrv,
        Slv, Lit, Lav, Est, Ind, Vie, Tgl, Cat,
    ]
};

/// [`identify_text`] restricted to [`LATIN_CHAT`].
fn identify_latin(text: &str) -> Option<Identified> {
    whatlang::Detector::with_allowlist(LATIN_CHAT.to_vec())
        .detect(text)
        .map(identified)
}

/// The trigram identifier's reading of one text, mapped to ISO 639-1.
pub fn identify_text(text: &str) -> Option<Identified> {
    whatlang::detect(text).map(identified)
}

fn identified(info: whatlang::Info) -> Identified {
    Identified {
        code: iso639_1(info.lang().code()).to_string(),
        confidence: info.confidence(),
    }
}

/// The trigram model below this confidence is not trusted to call a Latin-script line foreign:
/// on short chat it is often wrong (English slang read as Catalan or Azerbaijani).
pub const MIN_CONFIDENCE: f64 = 0.6;

/// The trigram model's bar for a line of plain ASCII letters with no English word at all.
pub const UNMARKED_CONFIDENCE: f64 = 0.2;

/// Offline identification of a line [`guess`] could not settle. Function words decide first:
/// two or more of one language's, and more than the line's English words, make it that
/// language.
/// Otherwise the trigram model decides when it is confident. `None` means English or unknown.
pub fn identify_offline(text: &str) -> Option<Identified> {
    let w = words(text);
    let english = english_words(&w);
    let latin = identify_latin(text);
    if let Some((code, hits)) = function_word_language(&w) {
        // One function word is enough in a line with no English word when the trigram model
        // names the same language ("du hurensohn").
        let agreed = hits == 1 && english == 0 && latin.as_ref().is_some_and(|l| l.code == code);
        if (hits >= 2 && hits > english) || agreed {
            return Some(Identified {
                code: code.into(),
                confidence: hits as f64 / w.len().max(1) as f64,
            });
        }
    }
    // The trigram model alone only with a sign the line is not English: letters English does
    // not use ("ü", "ñ", "ę"; then any confidence will do), or a function word of the
    // language it names and a confident model.
    let marked = has_foreign_letters(text);
    latin.filter(|i| {
        let named = FUNCTION_WORDS
            .iter()
            .any(|(code, list)| *code == i.code && w.iter().any(|x| list.contains(&x.as_str())));
        let no_english = english == 0;
        marked
            || (named && i.confidence >= MIN_CONFIDENCE)
            || (no_english && w.len() >= MIN_WORDS && i.confidence >= UNMARKED_CONFIDENCE)
    })
}

/// The offline identifier: whatlang's trigram model (pure Rust, 70 languages). `None` when it is
/// not confident, and such a line is treated as English.
#[derive(Debug, Default, Clone)]
pub struct OfflineIdentifier;

#[async_trait]
impl LanguageIdentifier for OfflineIdentifier {
    fn name(&self) -> &str {
        "whatlang 0.18 (offline)"
    }

    fn batch_size(&self) -> usize {
        256
    }

    /// No evidence of another language is English here: offline there is nobody to ask.
    async fn identify(&self, texts: &[String]) -> Result<Vec<Answer>> {
        Ok(texts
            .iter()
            .map(|t| identify_offline(t).map_or(Answer::English, Answer::from_identified))
            .collect())
    }
}

/// ISO 639-3 (whatlang) to 639-1 (Comprehend, Translate) where a two-letter code exists.
fn iso639_1(code: &str) -> &str {
    match code {
        "eng" => "en",
        "rus" => "ru",
        "cmn" => "zh",
        "spa" => "es",
        "por" => "pt",
        "ita" => "it",
        "ben" => "bn",
        "fra" => "fr",
        "deu" => "de",
        "ukr" => "uk",
        "kat" => "ka",
        "ara" => "ar",
        "hin" => "hi",
        "jpn" => "ja",
        "heb" => "he",
        "yid" => "yi",
        "pol" => "pl",
        "amh" => "am",
        "jav" => "jv",
        "kor" => "ko",
        "nob" => "no",
        "dan" => "da",
        "swe" => "sv",
        "fin" => "fi",
        "tur" => "tr",
        "nld" => "nl",
        "hun" => "hu",
        "ces" => "cs",
        "ell" => "el",
        "bul" => "bg",
        "bel" => "be",
        "mar" => "mr",
        "kan" => "kn",
        "ron" => "ro",
        "slv" => "sl",
        "hrv" => "hr",
        "srp" => "sr",
        "mkd" => "mk",
        "lit" => "lt",
        "lav" => "lv",
        "est" => "et",
        "tam" => "ta",
        "vie" => "vi",
        "urd" => "ur",
        "tha" => "th",
        "guj" => "gu",
        "uzb" => "uz",
        "pan" => "pa",
        "aze" => "az",
        "ind" => "id",
        "tel" => "te",
        "pes" => "fa",
        "mal" => "ml",
        "ori" => "or",
        "mya" => "my",
        "nep" => "ne",
        "sin" => "si",
        "khm" => "km",
        "tuk" => "tk",
        "aka" => "ak",
        "zul" => "zu",
        "sna" => "sn",
        "afr" => "af",
        "lat" => "la",
        "slk" => "sk",
        "cat" => "ca",
        "tgl" => "tl",
        "hye" => "hy",
        "cym" => "cy",
        "epo" => "eo",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other(text: &str) -> Option<String> {
        match guess(text) {
            Guess::Other(i) => Some(i.code),
            _ => None,
        }
    }

    #[test]
    fn short_and_chatty_lines_are_english_without_a_call() {
        for t in [
            "gg",
            "lol",
            "xD",
            "ty all",
            "gg ez noob",
            "brb 5 min",
            "😂😂😂",
            "ok",
            "nice shot bro, that was clean",
            "can we do one more round before i sleep",
        ] {
            assert_eq!(guess(t), Guess::English, "{t}");
        }
    }

    #[test]
    fn other_scripts_are_identified_even_when_short() {
        assert_eq!(
            other("ты вообще не умеешь играть, удали игру").as_deref(),
            Some("ru")
        );
        assert!(other("иди отсюда").is_some_and(|c| c != "en"));
        assert_eq!(other("お前は本当に下手だな").as_deref(), Some("ja"));
        assert!(other("你好").is_some());
    }

    #[tokio::test]
    async fn latin_lines_in_other_languages_are_identified() {
        let id = OfflineIdentifier;
        for (t, code) in [
            ("eres un inútil, deberías dejar de jugar para siempre", "es"),
            ("você é muito ruim nesse jogo, desinstala isso agora", "pt"),
            ("du bist so schlecht, hör einfach auf zu spielen", "de"),
            ("tu es vraiment nul, arrête de jouer à ce jeu", "fr"),
        ] {
            assert_eq!(guess(t), Guess::Unsure, "{t}");
            let got = id.identify(&[t.to_string()]).await.expect("identify");
            assert!(
                matches!(&got[0], Answer::Other(i) if i.code == code),
                "{t}: {got:?}"
            );
        }
    }
}

/// Measured on labelled sets: `tests/data/multilingual-chat.tsv` (260 lines in 19 languages
/// other than English, 40 % abusive, plus 20 English lines carrying foreign words; written for
/// this project, and read while the function-word rule was tuned) and English chat that never
/// saw the identifier (the detector's training set, two of its evaluation sets, the sample logs).
#[cfg(test)]
mod measured {
    use super::*;
    use crate::text::rules::RuleFilter;

    fn workspace_file(path: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn foreign(text: &str) -> Option<Identified> {
        match guess(text) {
            Guess::English => None,
            Guess::Other(i) => Some(i),
            Guess::Unsure => identify_offline(text).filter(|i| !i.is_english()),
        }
    }

    #[test]
    fn english_chat_is_not_sent_to_review_for_its_language() {
        let mut lines = Vec::new();
        for f in [
            "crates/offline/data/detector/train.tsv",
            "tests/data/detector-eval.tsv",
            "tests/data/detector-eval-2.tsv",
        ] {
            let text = workspace_file(f);
            lines.extend(
                text.lines()
                    .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                    .filter_map(|l| l.split('\t').nth(1).map(str::to_string)),
            );
        }
        lines.extend(
            workspace_file("events/uploads/lobby-chat.txt")
                .lines()
                .map(str::to_string),
        );
        let flagged: Vec<&String> = lines.iter().filter(|l| foreign(l).is_some()).collect();
        // Measured: none.
        assert!(lines.len() > 4_000, "{}", lines.len());
        assert!(
            flagged.len() * 1000 <= lines.len(),
            "{} of {} English lines read as another language: {flagged:?}",
            flagged.len(),
            lines.len()
        );
    }

    #[test]
    fn other_languages_are_identified_and_their_abuse_is_not_passed() {
        let rules = RuleFilter::default_list().expect("rules");
        let text = workspace_file("tests/data/multilingual-chat.tsv");
        let (mut n, mut found, mut exact, mut abusive, mut held) = (0, 0, 0, 0, 0);
        let mut english_misread = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let cols: Vec<&str> = line.split('\t').collect();
            let (lang, label, t) = (cols[0], cols[1], cols[2]);
            let got = foreign(t);
            if lang == "en" {
                if got.is_some() {
                    english_misread.push(t);
                }
                continue;
            }
            n += 1;
            found += usize::from(got.is_some());
            exact += usize::from(got.as_ref().is_some_and(|i| i.code == lang));
            if label == "abusive" {
                abusive += 1;
                // Offline, an identified line goes to review; a rule hit goes to the policy check.
                held += usize::from(got.is_some() || !rules.scan(t).is_empty());
            }
        }
        eprintln!(
            "{n} lines: identified {found} ({exact} with the right code); abusive held {held} of {abusive}"
        );
        assert!(english_misread.is_empty(), "{english_misread:?}");
        // Measured: 205 of 260 identified (191 exactly), abusive held 92 of 104; the rest are
        // mostly lines of two or three words in plain ASCII ("guten abend zusammen"), taken as
        // English on purpose.
        assert!(found * 100 >= n * 75, "identified {found} of {n}");
        assert!(exact * 100 >= n * 70, "right code {exact} of {n}");
        assert!(
            held * 100 >= abusive * 80,
            "abusive held {held} of {abusive}"
        );
    }
}
