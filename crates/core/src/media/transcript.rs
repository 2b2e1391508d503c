//! Amazon Transcribe output with Toxicity Detection: `results.toxicity_detection` segments
//! (text, overall toxicity, the seven category scores, start and end times), or, when the job
//! ran without it (e.g. a non-English job), `results.transcripts` text to be scored by the text
//! path's detector. Every defect names the field and the segment it is in.

use serde_json::Value;

use crate::model::{Category, CategoryScores};

/// A screened stretch of speech.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechSegment {
    /// `seg-<n>`, 1-based in transcript order.
    pub id: String,
    pub text: String,
    pub start_time: f64,
    pub end_time: f64,
    pub toxicity: f64,
    pub categories: CategoryScores,
}

/// What a transcript holds.
#[derive(Debug, Clone, PartialEq)]
pub enum TranscriptContent {
    /// Transcribe scored each segment.
    Scored(Vec<SpeechSegment>),
    /// No toxicity detection: sentences of the transcript, to be scored like chat lines.
    Unscored(Vec<Utterance>),
}

/// The language a transcript is in: `results.language_code`, with the score from
/// `results.language_identification` when Transcribe identified it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpokenLanguage {
    /// Transcribe's code, e.g. `es-US`.
    pub code: String,
    pub score: Option<f64>,
}

/// A parsed transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub content: TranscriptContent,
    /// `None` when the transcript does not say (jobs with a fixed language need not).
    pub language: Option<SpokenLanguage>,
}

/// A sentence of an unscored transcript, timed when the transcript has word timings.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub text: String,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
}

/// Sentences longer than this many words are cut, so one item never swallows a monologue.
const MAX_SENTENCE_WORDS: usize = 60;

fn ends_sentence(token: &str) -> bool {
    token.ends_with(['.', '?', '!'])
}

/// Sentences from Transcribe's word items (`results.items`), with the first and last word's
/// times; `None` when the items are absent or carry no timings.
fn sentences_from_items(items: &Value) -> Option<Vec<Utterance>> {
    let items = items.as_array()?;
    let time = |v: &Value| match v {
        Value::String(s) => s.parse::<f64>().ok().filter(|t| t.is_finite()),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut text, mut start, mut end, mut words) = (String::new(), None, None, 0usize);
    for item in items {
        let Some(content) = item["alternatives"][0]["content"].as_str() else {
            continue;
        };
        if item["type"] == "punctuation" {
            text.push_str(content);
        } else {
            let (s, e) = (time(&item["start_time"])?, time(&item["end_time"])?);
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(content);
            start.get_or_insert(s);
            end = Some(e);
            words += 1;
        }
        if words > 0 && (ends_sentence(content) || words >= MAX_SENTENCE_WORDS) {
            out.push(Utterance {
                text: std::mem::take(&mut text),
                start_time: start.take(),
                end_time: end.take(),
            });
            words = 0;
        }
    }
    if words > 0 {
        out.push(Utterance {
            text,
            start_time: start,
            end_time: end,
        });
    }
    (!out.is_empty()).then_some(out)
}

/// Sentences of plain transcript text, untimed.
fn sentences_from_text(text: &str) -> Vec<Utterance> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for word in text.split_whitespace() {
        current.push(word);
        if ends_sentence(word) || current.len() >= MAX_SENTENCE_WORDS {
            out.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        out.push(current.join(" "));
    }
    out.into_iter()
        .map(|text| Utterance {
            text,
            start_time: None,
            end_time: None,
        })
        .collect()
}

/// Seconds of speech the transcript covers (the last end time), for the usage record.
pub fn covered_seconds(content: &TranscriptContent) -> f64 {
    match content {
        TranscriptContent::Scored(segs) => segs.iter().map(|s| s.end_time).fold(0.0, f64::max),
        TranscriptContent::Unscored(u) => u.iter().filter_map(|u| u.end_time).fold(0.0, f64::max),
    }
}

/// A Transcribe-shaped output document (`results.transcripts` and `results.toxicity_detection`)
/// for segments scored elsewhere: the offline backend writes it so the deployed and the local
/// chain ingest the same document.
pub fn transcribe_output(job_name: &str, segments: &[SpeechSegment]) -> Value {
    let text: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
    let toxicity: Vec<Value> = segments
        .iter()
        .map(|s| {
            let categories: serde_json::Map<String, Value> = Category::ALL
                .iter()
                .map(|c| (c.as_str().to_string(), Value::from(s.categories.get(*c))))
                .collect();
            serde_json::json!({
                "text": s.text,
                "toxicity": s.toxicity,
                "categories": categories,
                "start_time": s.start_time,
                "end_time": s.end_time,
            })
        })
        .collect();
    serde_json::json!({
        "jobName": job_name,
        "accountId": "offline",
        "status": "COMPLETED",
        "results": {
            "language_code": "en-US",
            "transcripts": [{"transcript": text.join(" ")}],
            "items": [],
            "toxicity_detection": toxicity,
        }
    })
}

fn number(seg: &Value, field: &str, n: usize) -> Result<f64, String> {
    match &seg[field] {
        Value::Number(x) => x
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("toxicity_detection[{n}].{field} is not a finite number")),
        // Transcribe writes numbers; a numeric string is accepted, anything else is not.
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("toxicity_detection[{n}].{field} is {s:?}, not a number")),
        Value::Null => Err(format!("toxicity_detection[{n}] has no {field}")),
        other => Err(format!(
            "toxicity_detection[{n}].{field} is {}, not a number",
            kind(other)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn score(seg: &Value, field: &str, n: usize) -> Result<f64, String> {
    let v = number(seg, field, n)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!(
            "toxicity_detection[{n}].{field} = {v} is outside [0, 1]"
        ));
    }
    Ok(v)
}

/// The identified language: `language_code`, scored by its `language_identification` entry;
/// without a `language_code`, the best-scored entry.
fn spoken_language(results: &Value) -> Option<SpokenLanguage> {
    let scored: Vec<(&str, Option<f64>)> = results["language_identification"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let score = match &e["score"] {
                        Value::String(s) => s.trim().parse::<f64>().ok(),
                        v => v.as_f64(),
                    }
                    .filter(|s| s.is_finite());
                    Some((e["code"].as_str()?, score))
                })
                .collect()
        })
        .unwrap_or_default();
    let code = match results["language_code"].as_str().filter(|c| !c.is_empty()) {
        Some(c) => c,
        None => {
            scored
                .iter()
                .max_by(|a, b| a.1.unwrap_or(0.0).total_cmp(&b.1.unwrap_or(0.0)))?
                .0
        }
    };
    Some(SpokenLanguage {
        code: code.to_string(),
        score: scored.iter().find(|(c, _)| *c == code).and_then(|e| e.1),
    })
}

/// Parse a Transcribe output document.
pub fn parse_transcript(bytes: &[u8]) -> Result<Transcript, String> {
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the transcript is not valid JSON (truncated?): {e}"))?;
    let results = match &doc["results"] {
        Value::Object(_) => &doc["results"],
        Value::Null => return Err("the transcript has no `results`".into()),
        other => return Err(format!("`results` is {}, not an object", kind(other))),
    };
    Ok(Transcript {
        content: parse_content(results)?,
        language: spoken_language(results),
    })
}

fn parse_content(results: &Value) -> Result<TranscriptContent, String> {
    match &results["toxicity_detection"] {
        Value::Array(segments) => {
            let mut out = Vec::with_capacity(segments.len());
            for (n, seg) in segments.iter().enumerate() {
                let text = match &seg["text"] {
                    Value::String(s) => s.clone(),
                    other => {
                        return Err(format!(
                            "toxicity_detection[{n}].text is {}, not a string",
                            kind(other)
                        ))
                    }
                };
                let (start_time, end_time) =
                    (number(seg, "start_time", n)?, number(seg, "end_time", n)?);
                if end_time < start_time || start_time < 0.0 {
                    return Err(format!(
                        "toxicity_detection[{n}] ends ({end_time}) before it starts ({start_time})"
                    ));
                }
                let cats = &seg["categories"];
                if !cats.is_object() {
                    return Err(format!(
                        "toxicity_detection[{n}].categories is {}, not an object",
                        kind(cats)
                    ));
                }
                let mut categories = CategoryScores::default();
                for c in Category::ALL {
                    // A category Transcribe left out scored nothing; a wrong type is an error.
                    if !cats[c.as_str()].is_null() {
                        categories.set(c, score(cats, c.as_str(), n)?);
                    }
                }
                out.push(SpeechSegment {
                    id: format!("seg-{}", n + 1),
                    text,
                    start_time,
                    end_time,
                    toxicity: score(seg, "toxicity", n)?,
                    categories,
                });
            }
            Ok(TranscriptContent::Scored(out))
        }
        Value::Null => {
            let text: Vec<&str> = results["transcripts"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t["transcript"].as_str()).collect())
                .unwrap_or_default();
            let text = text.join(" ");
            if text.trim().is_empty() {
                return Err("the transcript contains no speech".into());
            }
            Ok(TranscriptContent::Unscored(
                sentences_from_items(&results["items"])
                    .unwrap_or_else(|| sentences_from_text(&text)),
            ))
        }
        other => Err(format!(
            "`results.toxicity_detection` is {}, not an array",
            kind(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the example in the Amazon Transcribe documentation.
    const DOCUMENTED: &str = r#"{
      "jobName": "my-toxicity-job",
      "accountId": "111122223333",
      "results": {
        "transcripts": [{"transcript": "Yeah, ***** ******. You are an idiot."}],
        "items": [],
        "toxicity_detection": [
          {"text": "Yeah, ***** ******.", "toxicity": 0.7638,
           "categories": {"profanity": 0.9913, "hate_speech": 0.0382, "sexual": 0.0016,
             "insult": 0.0137, "violence_or_threat": 0.0020, "graphic": 0.0004,
             "harassment_or_abuse": 0.0208},
           "start_time": 8.92, "end_time": 21.45},
          {"text": "You are an idiot.", "toxicity": 0.8,
           "categories": {"profanity": 0.1, "hate_speech": 0.01, "sexual": 0.0, "insult": 0.93,
             "violence_or_threat": 0.0, "graphic": 0.0, "harassment_or_abuse": 0.2},
           "start_time": 21.5, "end_time": 23.1}
        ]
      },
      "status": "COMPLETED"
    }"#;

    #[test]
    fn the_documented_shape_parses_with_times_and_categories() {
        let TranscriptContent::Scored(segs) = parse_transcript(DOCUMENTED.as_bytes())
            .expect("parses")
            .content
        else {
            panic!("expected scored segments");
        };
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].id, "seg-1");
        assert_eq!((segs[0].start_time, segs[0].end_time), (8.92, 21.45));
        assert!((segs[0].categories.profanity - 0.9913).abs() < 1e-12);
        assert!((segs[1].categories.insult - 0.93).abs() < 1e-12);
        assert!((segs[1].toxicity - 0.8).abs() < 1e-12);
    }

    #[test]
    fn without_toxicity_detection_the_text_is_returned_for_scoring() {
        let doc =
            r#"{"results":{"transcripts":[{"transcript":"hola a todos. que tal?"}],"items":[]}}"#;
        let untimed = |t: &str| Utterance {
            text: t.into(),
            start_time: None,
            end_time: None,
        };
        assert_eq!(
            parse_transcript(doc.as_bytes()).expect("parses").content,
            TranscriptContent::Unscored(vec![untimed("hola a todos."), untimed("que tal?")])
        );
    }

    #[test]
    fn an_identified_language_is_read_with_its_score() {
        // Shaped like Transcribe's single-language identification output.
        let doc = r#"{"results":{"language_code":"es-US","language_identification":[
          {"score":"0.9121","code":"es-US"},{"score":"0.0712","code":"en-US"}],
          "transcripts":[{"transcript":"te voy a encontrar."}],"items":[]}}"#;
        let t = parse_transcript(doc.as_bytes()).expect("parses");
        assert_eq!(
            t.language,
            Some(SpokenLanguage {
                code: "es-US".into(),
                score: Some(0.9121)
            })
        );
        // Without language_code the best-scored entry names it; without either, nothing.
        let doc = r#"{"results":{"language_identification":[{"score":0.2,"code":"en-US"},
          {"score":0.7,"code":"pt-BR"}],"transcripts":[{"transcript":"oi."}]}}"#;
        let t = parse_transcript(doc.as_bytes()).expect("parses");
        assert_eq!(t.language.map(|l| l.code), Some("pt-BR".into()));
        let t = parse_transcript(DOCUMENTED.as_bytes()).expect("parses");
        assert_eq!(t.language, None);
    }

    #[test]
    fn word_items_give_the_fallback_sentences_real_times() {
        let doc = r#"{"results":{"transcripts":[{"transcript":"Hola, amigo. Adios"}],"items":[
          {"start_time":"0.5","end_time":"0.9","alternatives":[{"content":"Hola"}],"type":"pronunciation"},
          {"alternatives":[{"content":","}],"type":"punctuation"},
          {"start_time":"1.0","end_time":"1.6","alternatives":[{"content":"amigo"}],"type":"pronunciation"},
          {"alternatives":[{"content":"."}],"type":"punctuation"},
          {"start_time":"4.25","end_time":"5.0","alternatives":[{"content":"Adios"}],"type":"pronunciation"}]}}"#;
        let TranscriptContent::Unscored(u) =
            parse_transcript(doc.as_bytes()).expect("parses").content
        else {
            panic!("expected unscored");
        };
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].text, "Hola, amigo.");
        assert_eq!((u[0].start_time, u[0].end_time), (Some(0.5), Some(1.6)));
        assert_eq!((u[1].start_time, u[1].end_time), (Some(4.25), Some(5.0)));
        assert_eq!(covered_seconds(&TranscriptContent::Unscored(u)), 5.0);
    }

    #[test]
    fn offline_output_round_trips_through_the_parser() {
        let TranscriptContent::Scored(segs) = parse_transcript(DOCUMENTED.as_bytes())
            .expect("parses")
            .content
        else {
            panic!("expected scored segments");
        };
        let out = transcribe_output("job", &segs).to_string();
        assert_eq!(
            parse_transcript(out.as_bytes())
                .expect("round trip")
                .content,
            TranscriptContent::Scored(segs)
        );
    }

    #[test]
    fn truncated_empty_and_malformed_transcripts_name_the_problem() {
        let cases: [(&str, &str); 9] = [
            (&DOCUMENTED[..200], "not valid JSON"),
            ("", "not valid JSON"),
            ("{}", "no `results`"),
            (r#"{"results":[]}"#, "not an object"),
            (
                r#"{"results":{"transcripts":[{"transcript":""}]}}"#,
                "no speech",
            ),
            (r#"{"results":{"toxicity_detection":{}}}"#, "not an array"),
            (
                r#"{"results":{"toxicity_detection":[{"text":"x","toxicity":"high","categories":{},"start_time":1,"end_time":2}]}}"#,
                "toxicity_detection[0].toxicity is \"high\"",
            ),
            (
                r#"{"results":{"toxicity_detection":[{"text":5,"toxicity":0.1,"categories":{},"start_time":1,"end_time":2}]}}"#,
                "text is a number",
            ),
            (
                r#"{"results":{"toxicity_detection":[{"text":"x","toxicity":0.1,"categories":{"insult":true},"start_time":1,"end_time":2}]}}"#,
                "insult is a boolean",
            ),
        ];
        for (doc, want) in cases {
            let e = parse_transcript(doc.as_bytes()).expect_err(doc);
            assert!(e.contains(want), "{doc}: {e}");
        }
        let backwards = r#"{"results":{"toxicity_detection":[{"text":"x","toxicity":0.1,"categories":{},"start_time":5,"end_time":2}]}}"#;
        assert!(parse_transcript(backwards.as_bytes())
            .expect_err("times")
            .contains("ends"));
        let out_of_range = r#"{"results":{"toxicity_detection":[{"text":"x","toxicity":1.5,"categories":{},"start_time":1,"end_time":2}]}}"#;
        assert!(parse_transcript(out_of_range.as_bytes())
            .expect_err("range")
            .contains("outside"));
    }
}
