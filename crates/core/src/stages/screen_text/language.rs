//! Each message's language: the pre-filter, the identifier for the lines it cannot settle, and
//! Translate for those not in English while the upload's budget lasts.

use futures::stream::{self, StreamExt};
use tracing::warn;

use crate::error::Result;
use crate::model::{ErrorEntry, Usage};
use crate::ports::{Answer, Identified, LanguageIdentifier, Translator};
use crate::text::language::{guess, Guess};
use crate::text::segment::chunk_text;

use super::state::UploadState;
use super::{ScreenDeps, STAGE};

/// One identifier call's answer per text.
type IdentifyResult = Result<Vec<Answer>>;

/// What became of one message's language.
#[derive(Debug, Default)]
pub(super) struct LanguageOf {
    /// `None` for English (or a line the identifier could not place offline).
    pub language: Option<Identified>,
    pub translation: Option<String>,
    /// Why a person must look: no translator, a failed call, the budget spent.
    pub problem: Option<String>,
}

/// Where a text's language problems are recorded: the document's errors and the message's
/// own `problem`.
struct Problems<'a> {
    ids: &'a [&'a str],
    errors: &'a mut Vec<ErrorEntry>,
}

impl Problems<'_> {
    fn record(&mut self, out: &mut [LanguageOf], i: usize, why: String) {
        self.errors
            .push(ErrorEntry::new(STAGE, Some(self.ids[i]), why.clone()));
        out[i].problem = Some(why);
    }
}

/// What the pre-filter settles alone, and the texts it leaves to the identifier. With a
/// translator (AWS) the service names the source language: the trigram model confuses related
/// languages on short lines (ru/uk/bg, kanji-only ja/zh).
fn prefilter(texts: &[&str], with_translator: bool) -> (Vec<LanguageOf>, Vec<usize>) {
    let mut out: Vec<LanguageOf> = Vec::with_capacity(texts.len());
    let mut unsure: Vec<usize> = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let mut l = LanguageOf::default();
        match guess(t) {
            Guess::English => {}
            Guess::Other(_) if with_translator => unsure.push(i),
            Guess::Other(id) => l.language = Some(id),
            Guess::Unsure => unsure.push(i),
        }
        out.push(l);
    }
    (out, unsure)
}

/// The identifier's answers for the `unsure` texts, in calls of its batch size.
async fn identify_unsure(
    texts: &[&str],
    unsure: Vec<usize>,
    languages: &dyn LanguageIdentifier,
    max_concurrency: usize,
) -> Vec<(Vec<usize>, IdentifyResult)> {
    let batch = languages.batch_size().max(1);
    let calls: Vec<Vec<usize>> = unsure.chunks(batch).map(<[usize]>::to_vec).collect();
    stream::iter(calls)
        .map(|idx| async move {
            let docs: Vec<String> = idx.iter().map(|i| texts[*i].to_string()).collect();
            let r = languages.identify(&docs).await;
            (idx, r)
        })
        .buffer_unordered(max_concurrency.max(1))
        .collect()
        .await
}

/// One identifier call's answers onto `out`: a language, or a problem for each text when the
/// call failed or answered for the wrong number of texts.
fn apply_identified(
    out: &mut [LanguageOf],
    idx: Vec<usize>,
    result: IdentifyResult,
    texts: &[&str],
    languages: &dyn LanguageIdentifier,
    usage: &mut Usage,
    problems: &mut Problems<'_>,
) {
    match result {
        Ok(found) if found.len() == idx.len() => {
            usage.language_units += idx
                .iter()
                .map(|i| languages.billing_units(texts[*i]))
                .sum::<u64>();
            for (i, answer) in idx.into_iter().zip(found) {
                match answer {
                    Answer::English => {}
                    Answer::Other(id) => out[i].language = Some(id),
                    Answer::Unknown(why) => problems.record(
                        out,
                        i,
                        format!("language not identified ({why}); scored as English"),
                    ),
                }
            }
        }
        Ok(found) => {
            let why = format!(
                "language not identified: {} returned {} answers for {} texts",
                languages.name(),
                found.len(),
                idx.len()
            );
            for i in idx {
                problems.record(out, i, why.clone());
            }
        }
        Err(e) => {
            warn!(error = %e, texts = idx.len(), "language identification failed");
            for i in idx {
                let why = format!("language not identified ({e}); scored as English");
                problems.record(out, i, why);
            }
        }
    }
}

/// Each text's language: the pre-filter, then the identifier in its batch size for the lines
/// the pre-filter cannot settle.
async fn identify_each(
    texts: &[&str],
    deps: &ScreenDeps<'_>,
    max_concurrency: usize,
    usage: &mut Usage,
    problems: &mut Problems<'_>,
) -> Vec<LanguageOf> {
    let (mut out, unsure) = prefilter(texts, deps.translator.is_some());
    let results = identify_unsure(texts, unsure, deps.languages, max_concurrency).await;
    for (idx, result) in results {
        apply_identified(
            &mut out,
            idx,
            result,
            texts,
            deps.languages,
            usage,
            problems,
        );
    }
    out
}

/// Every text in the language the source names: nothing is identified per message.
fn known_language(count: usize, known: &Identified) -> Vec<LanguageOf> {
    (0..count)
        .map(|_| LanguageOf {
            language: (!known.is_english()).then(|| known.clone()),
            ..LanguageOf::default()
        })
        .collect()
}

/// The texts not in English, with their language codes.
fn foreign(out: &[LanguageOf]) -> Vec<(usize, String)> {
    out.iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i, l.language.as_ref()?.code.clone())))
        .collect()
}

/// The foreign texts the upload's translation budget still covers; the rest get a problem.
/// Translate bills by the character: past the budget a person reads the rest.
fn within_budget(
    foreign: Vec<(usize, String)>,
    texts: &[&str],
    budget: &UploadState,
    out: &mut [LanguageOf],
    problems: &mut Problems<'_>,
) -> Vec<(usize, String)> {
    let mut within = Vec::new();
    for (i, code) in foreign {
        let chars = texts[i].chars().count() as u64;
        if budget.take_translation(chars) {
            within.push((i, code));
        } else {
            let why = format!(
                "language {code}: not translated, the upload's translation budget \
                 (MAX_TRANSLATED_CHARS_PER_OBJECT) is spent"
            );
            problems.record(out, i, why);
        }
    }
    within
}

/// One text in English. Long messages go in pieces under the service's limit, split between
/// words. With the characters billed, also when a piece failed.
async fn translate_one(
    text: &str,
    code: &str,
    translator: &dyn Translator,
) -> (u64, Result<String>) {
    let mut english = Vec::new();
    let mut billed = 0u64;
    for piece in chunk_text(text, translator.max_bytes()) {
        match translator.to_english(&piece, code).await {
            Ok(t) => {
                billed += piece.chars().count() as u64;
                english.push(t);
            }
            Err(e) => return (billed, Err(e)),
        }
    }
    (billed, Ok(english.join(" ")))
}

/// Translate the texts `within` the budget, recording each translation or why it failed.
async fn translate_within(
    within: Vec<(usize, String)>,
    texts: &[&str],
    translator: &dyn Translator,
    max_concurrency: usize,
    out: &mut [LanguageOf],
    usage: &mut Usage,
    problems: &mut Problems<'_>,
) {
    let done: Vec<(usize, String, u64, Result<String>)> = stream::iter(within)
        .map(|(i, code)| async move {
            let (billed, r) = translate_one(texts[i], &code, translator).await;
            (i, code, billed, r)
        })
        .buffer_unordered(max_concurrency.max(1))
        .collect()
        .await;
    for (i, code, billed, r) in done {
        usage.translated_characters += billed;
        match r {
            Ok(english) => out[i].translation = Some(english),
            Err(e) => {
                warn!(error = %e, "translation failed");
                let why = format!("language {code}: translation failed ({e}); scored untranslated");
                problems.record(out, i, why);
            }
        }
    }
}

/// Languages for `texts` (the source's known language, or [`identify_each`]), then Translate
/// for the ones not in English, while `budget` characters last.
pub(super) async fn languages_of(
    texts: &[&str],
    ids: &[&str],
    deps: &ScreenDeps<'_>,
    max_concurrency: usize,
    budget: &UploadState,
    usage: &mut Usage,
    errors: &mut Vec<ErrorEntry>,
) -> Vec<LanguageOf> {
    let mut problems = Problems { ids, errors };
    let mut out = match &deps.known_language {
        Some(known) => known_language(texts.len(), known),
        None => identify_each(texts, deps, max_concurrency, usage, &mut problems).await,
    };
    let foreign = foreign(&out);
    let Some(translator) = deps.translator else {
        for (i, code) in foreign {
            out[i].problem = Some(format!("language {code}: no offline toxicity model"));
        }
        return out;
    };
    let within = within_budget(foreign, texts, budget, &mut out, &mut problems);
    translate_within(
        within,
        texts,
        translator,
        max_concurrency,
        &mut out,
        usage,
        &mut problems,
    )
    .await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identified(code: &str) -> Identified {
        Identified {
            code: code.into(),
            confidence: 0.99,
        }
    }

    #[test]
    fn the_budget_covers_texts_in_order_and_names_the_rest() {
        let texts = ["hola amigo", "bonjour à tous", "hallo"];
        let ids = ["m1", "m2", "m3"];
        let mut errors = Vec::new();
        let mut problems = Problems {
            ids: &ids,
            errors: &mut errors,
        };
        let mut out: Vec<LanguageOf> = (0..3).map(|_| LanguageOf::default()).collect();
        // 10 + 14 characters: the second text does not fit what the first leaves.
        let budget = UploadState::new(20);
        let foreign = vec![(0, "es".into()), (1, "fr".into()), (2, "de".into())];
        let within = within_budget(foreign, &texts, &budget, &mut out, &mut problems);
        assert_eq!(within, vec![(0, "es".to_string()), (2, "de".to_string())]);
        assert!(out[1]
            .problem
            .as_deref()
            .is_some_and(|p| p.starts_with("language fr: not translated")));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].item.as_deref(), Some("m2"));
    }

    #[test]
    fn a_known_language_is_given_to_every_text_unless_english() {
        let german = known_language(2, &identified("de"));
        assert_eq!(german.len(), 2);
        assert!(german
            .iter()
            .all(|l| l.language.as_ref().is_some_and(|l| l.code == "de")));
        assert_eq!(
            foreign(&german),
            vec![(0, "de".to_string()), (1, "de".to_string())]
        );
        let english = known_language(3, &identified("en"));
        assert!(english.iter().all(|l| l.language.is_none()));
        assert!(foreign(&english).is_empty());
    }

    #[test]
    fn the_prefilter_leaves_other_languages_to_the_service_when_it_translates() {
        let texts = [
            "hello there, how are you doing today",
            "Привет, как дела у тебя сегодня",
        ];
        let (offline, unsure_offline) = prefilter(&texts, false);
        let (online, unsure_online) = prefilter(&texts, true);
        assert!(offline[0].language.is_none() && online[0].language.is_none());
        // Whatever the offline guess is, with a translator nothing non-English is settled here.
        assert!(online.iter().all(|l| l.language.is_none()));
        assert!(unsure_online.len() >= unsure_offline.len());
        assert!(unsure_online.contains(&1));
    }
}
