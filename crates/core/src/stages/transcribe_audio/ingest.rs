//! A transcript arrived: the screened document of its recording, from the job record and the
//! transcript's segments (scored by Transcribe, or here through the text path).

use crate::chain::delivery::{dead_letter, Outcome};
use crate::chain::keys::{self, Stage};
use crate::error::Result;
use crate::media::transcript::{
    covered_seconds, parse_transcript, SpeechSegment, SpokenLanguage, TranscriptContent, Utterance,
};
use crate::model::{ErrorEntry, Item, ObjectRef, StageDocument, Status, Trigger, Usage, Verdict};
use crate::ports::{Identified, SpeechLanguages};
use crate::stages::screen_text::{
    over_threshold, screen_messages_within, superseded, write_screened,
};
use crate::text::parse::ParsedMessage;
use crate::text::rules::RuleFilter;

use super::{audio_doc, failed, job_record, AudioConfig, AudioDeps, STAGE};

/// `transcripts/<job>.json` arrived: parse it and write `screened/<id>.json`.
pub async fn ingest_transcript(
    obj: &ObjectRef,
    deps: &AudioDeps<'_>,
    cfg: &AudioConfig,
) -> Result<Outcome> {
    // Transcribe's `.write_access_check_file.temp`, folders and other files are not transcripts.
    let Some(job) = keys::id_from_document_key(&obj.key, keys::TRANSCRIPTS) else {
        return Ok(Outcome::Ignored(format!("{} is not a transcript", obj.key)));
    };
    let mut doc = job_doc(obj, &job, deps, cfg).await?;
    if let Some(why) = superseded(
        deps.store,
        &obj.bucket,
        &doc.id,
        doc.source_sequencer.as_deref(),
    )
    .await
    {
        return Ok(Outcome::Ignored(why));
    }
    let Some(bytes) = deps.store.get_bytes(&obj.bucket, &obj.key).await? else {
        let reason = format!("{} no longer exists", obj.uri());
        return dead_letter(deps.store, Stage::TranscribeAudio, obj, &doc.id, &reason).await;
    };
    let transcript = match parse_transcript(&bytes) {
        Ok(t) => t,
        Err(reason) => {
            let doc = failed(doc, format!("transcript {}: {reason}", obj.key));
            return write_screened(deps.store, &obj.bucket, &doc).await;
        }
    };
    let (content, language) = (transcript.content, transcript.language);
    describe_transcript(&mut doc, &content, language.as_ref());
    if let Some(problem) = language_problem(&cfg.languages, &content, deps.jobs.name()) {
        doc.status = Status::Partial;
        doc.errors.push(ErrorEntry::new(STAGE, None, problem));
    }
    add_speech(&mut doc, content, language, &obj.key, deps, cfg).await;
    write_screened(deps.store, &obj.bucket, &doc).await
}

/// The document of the recording job `job` was for, from its job record. Without a usable
/// record the speech is still moderated, under the transcript's own name, and the document
/// says what is unknown.
async fn job_doc(
    obj: &ObjectRef,
    job: &str,
    deps: &AudioDeps<'_>,
    cfg: &AudioConfig,
) -> Result<StageDocument> {
    Ok(match job_record(deps.store, &obj.bucket, job).await? {
        Ok(r) => audio_doc(
            &r.id,
            r.source.uri,
            r.source_version,
            r.source_sequencer,
            r.trigger,
            cfg,
        ),
        Err(why) => orphan_transcript_doc(obj, job, &why.reason(), cfg),
    })
}

/// The partial document of a transcript whose job record is missing or unreadable (`why`).
fn orphan_transcript_doc(
    obj: &ObjectRef,
    job: &str,
    why: &str,
    cfg: &AudioConfig,
) -> StageDocument {
    let id = keys::id_from_job_name(job).unwrap_or_else(|| job.to_string());
    let mut d = audio_doc(&id, obj.uri(), None, None, Trigger::upload(), cfg);
    d.status = Status::Partial;
    d.errors.push(ErrorEntry::new(
        STAGE,
        None,
        format!("{why}: the recording and the trigger of job {job} are unknown; the source shown is the transcript"),
    ));
    d
}

/// What the transcript says of the recording: how long the speech covers, and its language.
fn describe_transcript(
    doc: &mut StageDocument,
    content: &TranscriptContent,
    language: Option<&SpokenLanguage>,
) {
    doc.usage.transcribe_seconds = covered_seconds(content);
    doc.source.language = language.map(|l| l.code.clone());
}

/// Asked for other languages, transcribed as US English only (the offline speech model is
/// English-only): speech in another language would come out as English-sounding noise.
fn language_problem(
    languages: &SpeechLanguages,
    content: &TranscriptContent,
    transcriber: &str,
) -> Option<String> {
    let english_only = matches!(content, TranscriptContent::Scored(_));
    (!matches!(languages, SpeechLanguages::UsEnglish) && english_only).then(|| {
        format!(
            "AUDIO_LANGUAGES is {languages} but {transcriber} transcribed the recording as US \
             English only; speech in another language is not understood: a person should listen \
             to it"
        )
    })
}

/// The transcript's segments as the document's items: scored segments as they are; unscored
/// sentences through the text path. No speech at all is not "clean": it needs a person.
async fn add_speech(
    doc: &mut StageDocument,
    content: TranscriptContent,
    language: Option<SpokenLanguage>,
    key: &str,
    deps: &AudioDeps<'_>,
    cfg: &AudioConfig,
) {
    let threshold = doc.threshold;
    match content {
        // Silence, music or speech the recogniser could not make out is not "clean".
        TranscriptContent::Scored(segments) if segments.is_empty() => {
            doc.status = Status::Partial;
            doc.errors
                .push(ErrorEntry::new(STAGE, None, no_speech(key)));
        }
        TranscriptContent::Scored(segments) => {
            doc.items = segments
                .into_iter()
                .map(|s| segment_item(s, deps.rules, threshold))
                .collect();
        }
        TranscriptContent::Unscored(utterances) => {
            // Single-language identification transcribes everything in the language found.
            let known = language.map(|l| Identified::from_speech(&l.code, l.score.unwrap_or(1.0)));
            let scored = score_utterances(utterances, deps, known, threshold, cfg).await;
            add_scored_utterances(doc, scored);
        }
    }
}

fn no_speech(key: &str) -> String {
    format!(
        "transcript {key}: no speech was recognised in the recording; a person should listen to it"
    )
}

/// Sentences the text path scored, with its errors and usage; a sentence it could not score,
/// or one held for review, leaves the document partial.
fn add_scored_utterances(
    doc: &mut StageDocument,
    (items, errors, usage): (Vec<Item>, Vec<ErrorEntry>, Usage),
) {
    if !errors.is_empty() || items.iter().any(|i| i.review_reason.is_some()) {
        doc.status = Status::Partial;
    }
    doc.items = items;
    doc.errors.extend(errors);
    doc.usage.comprehend_units += usage.comprehend_units;
    doc.usage.language_units += usage.language_units;
    doc.usage.translated_characters += usage.translated_characters;
}

fn segment_item(s: SpeechSegment, rules: &RuleFilter, threshold: f64) -> Item {
    let mut item = Item {
        rule_hits: rules.scan(&s.text),
        signals: crate::text::signals::SignalPatterns::embedded().find(&s.text),
        age_band: None,
        id: s.id,
        text: s.text,
        user: None,
        timestamp: None,
        conversation: None,
        start_time: Some(s.start_time),
        end_time: Some(s.end_time),
        toxicity: s.toxicity,
        categories: s.categories,
        verdict: None,
        evaluation: None,
        review_reason: None,
        revealed: None,
        language: None,
        translation: None,
        bounding_box: None,
        decision: None,
        appeal: None,
    };
    crate::stages::conversation::add_detected_signals(&mut item, threshold);
    if !over_threshold(&item, threshold) {
        item.verdict = Some(Verdict::BelowThreshold);
    }
    item
}

/// A transcript without toxicity detection (e.g. a non-English job): its sentences are scored
/// by the text path's detector and rule filter, keeping their times.
async fn score_utterances(
    utterances: Vec<Utterance>,
    deps: &AudioDeps<'_>,
    known_language: Option<Identified>,
    threshold: f64,
    cfg: &AudioConfig,
) -> (Vec<Item>, Vec<ErrorEntry>, Usage) {
    let times: Vec<(Option<f64>, Option<f64>)> = utterances
        .iter()
        .map(|u| (u.start_time, u.end_time))
        .collect();
    let messages = utterances
        .into_iter()
        .enumerate()
        .map(|(n, u)| ParsedMessage {
            id: format!("seg-{}", n + 1),
            text: u.text,
            user: None,
            timestamp: None,
            conversation: None,
            age_band: None,
            issues: Vec::new(),
        })
        .collect();
    let (mut items, errors, usage) = screen_messages_within(
        messages,
        &deps.screen(known_language),
        threshold,
        cfg.max_concurrency,
        cfg.max_translated_chars,
    )
    .await;
    for (item, (start, end)) in items.iter_mut().zip(times) {
        item.start_time = start;
        item.end_time = end;
    }
    (items, errors, usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_without_its_job_record_is_partial_and_says_why() {
        let obj = ObjectRef::new("b", "transcripts/moderation-x.json");
        let doc = orphan_transcript_doc(
            &obj,
            "moderation-x",
            "no job record",
            &AudioConfig::default(),
        );
        assert_eq!(doc.status, Status::Partial);
        assert_eq!(doc.source.uri, obj.uri());
        assert!(
            doc.errors[0].message.starts_with(
                "no job record: the recording and the trigger of job moderation-x are unknown"
            ),
            "{:?}",
            doc.errors
        );
    }

    #[test]
    fn english_only_transcripts_of_other_languages_need_a_person() {
        let scored = TranscriptContent::Scored(Vec::new());
        let unscored = TranscriptContent::Unscored(Vec::new());
        let other = SpeechLanguages::parse("es-US").expect("languages");
        assert_eq!(
            language_problem(&SpeechLanguages::UsEnglish, &scored, "t"),
            None
        );
        assert_eq!(language_problem(&other, &unscored, "t"), None);
        let why = language_problem(&other, &scored, "offline transcription").expect("flagged");
        assert!(
            why.starts_with("AUDIO_LANGUAGES is es-US but offline transcription transcribed"),
            "{why}"
        );
    }

    #[test]
    fn utterances_held_for_review_leave_the_document_partial() {
        let mut doc = audio_doc(
            "id",
            "s3://b/k".into(),
            None,
            None,
            Trigger::upload(),
            &AudioConfig::default(),
        );
        let mut held = Item::new("seg-1", "hello");
        held.review_reason = Some("translation budget spent".into());
        let usage = Usage {
            comprehend_units: 2,
            ..Default::default()
        };
        add_scored_utterances(&mut doc, (vec![held], Vec::new(), usage));
        assert_eq!(doc.status, Status::Partial);
        assert_eq!(doc.items.len(), 1);
        assert_eq!(doc.usage.comprehend_units, 2);
        let mut clean = audio_doc(
            "id",
            "s3://b/k".into(),
            None,
            None,
            Trigger::upload(),
            &AudioConfig::default(),
        );
        add_scored_utterances(
            &mut clean,
            (vec![Item::new("seg-1", "hi")], Vec::new(), Usage::default()),
        );
        assert_eq!(clean.status, Status::Complete);
    }
}
