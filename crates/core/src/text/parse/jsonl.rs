//! JSONL chat logs: one JSON object a line. The message is the string under a text field;
//! a record whose message is missing, null, blank or not a string but which holds text
//! elsewhere (nested under `data.text`, in `attachments[]`, in a user field) is kept, scored on
//! that text and held for a person, never dropped.

use std::io::BufRead;

use serde_json::Value;

use super::{
    decode, is_content, join_texts, read_bounded_line, text_names, ItemIssue, MessageSink,
    ParseOptions, ParsedMessage, Skipped, AGE_FIELDS, CONVERSATION_FIELDS, TIME_FIELDS,
    USER_FIELDS,
};

/// At most this many string values are gathered from one record's nested text.
const MAX_LEAVES: usize = 64;

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON object's entries in order, duplicates kept (serde_json's map keeps only the last
/// value of a repeated key, which would hide `{"message":"<threat>","message":"gg"}`).
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

pub(super) fn parse_jsonl<R: BufRead>(
    mut r: R,
    opts: &ParseOptions,
    skipped: &mut Skipped,
    emit: &mut MessageSink<'_>,
) -> Result<(), String> {
    let mut line_no = 0usize;
    let names = text_names(opts);
    while let Some(line) = read_bounded_line(&mut r, opts.max_message_bytes)? {
        line_no += 1;
        let id = format!("line-{line_no}");
        let (raw, decoding) = decode(&line.bytes, line.truncated_at.is_some());
        let raw = raw.trim_start_matches('\u{feff}');
        if raw.trim().is_empty() {
            continue;
        }
        match record(id.clone(), raw, decoding, line.truncated_at, &names) {
            Some(msg) => emit(msg)?,
            None => skipped.add(id),
        }
    }
    Ok(())
}

/// One line as a message; `None` for a record with no text at all.
fn record(
    id: String,
    raw: &str,
    decoding: Option<ItemIssue>,
    truncated_at: Option<usize>,
    names: &[String],
) -> Option<ParsedMessage> {
    let mut issues: Vec<ItemIssue> = decoding.into_iter().collect();
    // A line we cannot use is kept, as written, for a moderator to read.
    let unusable = |mut issues: Vec<ItemIssue>, why: String| {
        issues.push(ItemIssue {
            message: why,
            needs_review: true,
        });
        Some(ParsedMessage {
            id: id.clone(),
            text: raw.to_string(),
            issues,
            ..Default::default()
        })
    };
    if let Some(max) = truncated_at {
        // A cut JSON line cannot be parsed.
        let why = format!("JSON line longer than {max} bytes could not be parsed");
        return unusable(issues, why);
    }
    let entries = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(_)) => match serde_json::from_str::<Entries>(raw) {
            Ok(Entries(e)) => e,
            Err(e) => return unusable(issues, format!("line is not valid JSON: {e}")),
        },
        Ok(_) => return unusable(issues, "line is JSON but not an object".into()),
        Err(e) => return unusable(issues, format!("line is not valid JSON: {e}")),
    };
    let text = match message_text(&entries, names, &mut issues) {
        Some(text) => text,
        None if entries.iter().any(|(k, _)| names.contains(k)) => return None,
        None => {
            let why = format!(
                "object has no text in a string field {}; the line is shown as written",
                names.join("/")
            );
            return unusable(issues, why);
        }
    };
    let get = |wanted: &[&str]| {
        wanted.iter().find_map(|k| {
            entries
                .iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| scalar_string(v))
        })
    };
    Some(ParsedMessage {
        id,
        text,
        user: get(USER_FIELDS),
        timestamp: get(TIME_FIELDS),
        conversation: get(CONVERSATION_FIELDS),
        age_band: get(AGE_FIELDS),
        issues,
    })
}

/// The text of a record: its text fields' values; where those are empty or not strings, the
/// text found anywhere else in it, held for review with the places named. `None` when the
/// record holds no text at all.
fn message_text(
    entries: &[(String, Value)],
    names: &[String],
    issues: &mut Vec<ItemIssue>,
) -> Option<String> {
    let mut texts = Vec::new();
    let mut odd: Vec<(String, &Value)> = Vec::new();
    for name in names {
        let values: Vec<&Value> = entries
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect();
        if values.len() > 1 {
            issues.push(ItemIssue {
                message: format!(
                    "key {name:?} appears {} times; every value was moderated",
                    values.len()
                ),
                needs_review: false,
            });
        }
        for v in values {
            match scalar_string(v) {
                Some(s) => texts.push(s),
                None if v.is_array() || v.is_object() => odd.push((name.clone(), v)),
                None => {}
            }
        }
    }
    // Where the message is not a plain string, its nested strings are the message; where it
    // is empty, any text elsewhere in the record may be.
    let mut leaves = Vec::new();
    if texts.is_empty() {
        for (k, v) in entries {
            string_leaves(k, k, v, &mut leaves);
        }
    } else {
        for (k, v) in odd {
            string_leaves(&k, &k, v, &mut leaves);
        }
    }
    if leaves.is_empty() {
        let text = join_texts(texts.iter().map(String::as_str));
        return (!text.is_empty()).then_some(text);
    }
    let places: Vec<&str> = leaves.iter().map(|(p, _)| p.as_str()).collect();
    issues.push(ItemIssue {
        message: format!(
            "no plain text in {}; the text found in {} is moderated and held for a person",
            names.join("/"),
            places.join(", ")
        ),
        needs_review: true,
    });
    let all = texts
        .iter()
        .map(String::as_str)
        .chain(leaves.iter().map(|(_, s)| s.as_str()));
    Some(join_texts(all))
}

/// Every string under `value` that may be a message (see [`is_content`]), with its path
/// (`data.text`, `attachments[0]`); `key` is the name the value sits under.
fn string_leaves(path: &str, key: &str, value: &Value, out: &mut Vec<(String, String)>) {
    if out.len() >= MAX_LEAVES {
        return;
    }
    match value {
        Value::String(s) if is_content(key, s.trim()) => {
            out.push((path.to_string(), s.trim().to_string()));
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                string_leaves(&format!("{path}[{i}]"), key, v, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                string_leaves(&format!("{path}.{k}"), k, v, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{needs_review, parse};
    use super::super::TextFormat;

    #[test]
    fn jsonl_reads_every_text_field_and_duplicate_key() {
        let data = b"{\"message\":\"\",\"text\":\"i will hurt you\"}\n\
                     {\"message\":\"die\",\"message\":\"gg\"}\n\
                     {\"user\":\"a\",\"message\":\"\"}\n\
                     {\"user\":\"a\",\"body\":\"go die\"}\n\
                     {\"message\":{\"body\":\"x\"}}\n";
        let m = parse(TextFormat::Jsonl, data).expect("parses");
        let texts: Vec<&str> = m.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts[0], "i will hurt you");
        assert_eq!(texts[1], "die\ngg");
        assert!(m[1].issues[0].message.contains("2 times"));
        // An empty message with nothing else is skipped; unknown fields with words are not.
        assert_eq!(m.len(), 4);
        assert_eq!(m[2].id, "line-4");
        assert!(needs_review(&m[2]) && m[2].text.contains("go die"));
        assert!(needs_review(&m[3]));
    }

    #[test]
    fn jsonl_bad_lines_do_not_stop_good_ones() {
        let data = b"{\"user\":\"a\",\"message\":\"one\",\"timestamp\":17}\nnot json\n[1]\n{\"x\":1}\n{\"text\":\"two\"}\n";
        let m = parse(TextFormat::Jsonl, data).expect("parses");
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].text, "one");
        assert_eq!(m[0].timestamp.as_deref(), Some("17"));
        for bad in &m[1..4] {
            assert!(bad.issues[0].needs_review, "{bad:?}");
        }
        assert_eq!(m[4].text, "two");
        assert!(m[4].issues.is_empty());
    }

    #[test]
    fn text_nested_or_misplaced_is_held_with_the_places_named() {
        let data = br#"{"user":"a","message":null,"data":{"text":"i will kill you"}}
{"user":"b","message":"","attachments":["go die in a fire",{"caption":"loser"}]}
{"user":"c","message":"   ","meta":{"reply":"kill yourself","user":"zed"}}
{"user":"kill yourself you idiot","message":""}
{"user":"d","message":"","ts":"2026-11-21 10:00"}
{"message":{"body":"you are trash"},"text":"hi"}
"#;
        let m = parse(TextFormat::Jsonl, data).expect("parses");
        let texts: Vec<&str> = m.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "i will kill you",
                "go die in a fire\nloser",
                "kill yourself",
                "kill yourself you idiot",
                "hi\nyou are trash",
            ]
        );
        assert!(m.iter().all(needs_review), "{m:?}");
        assert!(m[0].issues[0].message.contains("data.text"));
        assert!(m[1].issues[0]
            .message
            .contains("attachments[0], attachments[1].caption"));
        assert_eq!(m[0].user.as_deref(), Some("a"));
    }
}
