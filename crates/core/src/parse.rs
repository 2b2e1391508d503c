//! Chat-log parsing (TXT, CSV, JSONL) from a streaming reader.
//!
//! Lines are read with a byte bound so one enormous line cannot exhaust memory; UTF-16 is
//! transcoded, lines that are not UTF-8 are read as Windows-1252 when that is plausible and
//! flagged as damaged when not; no row is dropped; every problem names the line it came from.

use std::io::{BufRead, BufReader, Read};

use serde_json::Value;

use crate::encoding::{self, FileEncoding, LineDecoding};

/// A CSV record spanning more lines than this is flagged as a likely unbalanced quote.
const MAX_RECORD_LINES: u64 = 20;

/// Column / field names accepted for the message text, in order of preference.
pub const TEXT_FIELDS: &[&str] = &["message", "text", "content"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    Txt,
    Csv,
    Jsonl,
}

impl TextFormat {
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "txt" => Some(TextFormat::Txt),
            "csv" => Some(TextFormat::Csv),
            "jsonl" => Some(TextFormat::Jsonl),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Longer messages are cut here and flagged for review.
    pub max_message_bytes: usize,
    /// Overrides the CSV/JSONL text column.
    pub text_column: Option<String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_message_bytes: 100_000,
            text_column: None,
        }
    }
}

/// Something wrong with one message that the report must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemIssue {
    pub message: String,
    /// True when content may be missing, so the item can never be passed as clean.
    pub needs_review: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedMessage {
    pub id: String,
    pub text: String,
    pub user: Option<String>,
    pub timestamp: Option<String>,
    pub conversation: Option<String>,
    pub issues: Vec<ItemIssue>,
}

/// A parsed upload: its messages, and notes about the file as a whole (how it was decoded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub messages: Vec<ParsedMessage>,
    pub notes: Vec<String>,
}

/// Parsing result: messages (each possibly with issues) or a file-level failure.
pub type ParseResult = Result<Parsed, String>;

pub fn parse_messages<R: Read>(format: TextFormat, reader: R, opts: &ParseOptions) -> ParseResult {
    let mut messages = Vec::new();
    let notes = parse_messages_each(format, reader, opts, &mut |m| {
        messages.push(m);
        Ok(())
    })?;
    Ok(Parsed { messages, notes })
}

/// Where a streaming parse sends each message; an `Err` stops the parse with that reason.
pub type MessageSink<'a> = dyn FnMut(ParsedMessage) -> Result<(), String> + 'a;

/// Parse as the file streams in, handing each message to `emit` in file order, so a caller
/// can score a huge upload in bounded chunks. Returns the notes about the file as a whole. A
/// file that fails part-way has emitted the messages before the failure.
pub fn parse_messages_each<R: Read>(
    format: TextFormat,
    reader: R,
    opts: &ParseOptions,
    emit: &mut MessageSink<'_>,
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    parse_messages_noting(format, reader, opts, &mut notes, emit)?;
    Ok(notes)
}

/// [`parse_messages_each`] putting the notes about the file (its encoding) in `notes` as soon
/// as they are known, so a file that fails or is stopped part-way keeps them.
pub fn parse_messages_noting<R: Read>(
    format: TextFormat,
    reader: R,
    opts: &ParseOptions,
    notes: &mut Vec<String>,
    emit: &mut MessageSink<'_>,
) -> Result<(), String> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader
        .fill_buf()
        .map_err(|e| format!("could not read the file: {e}"))?;
    if head.is_empty() {
        return Err("the file is empty".into());
    }
    let encoding = encoding::sniff(head)?;
    notes.extend(encoding.describe());
    let mut count = 0u64;
    let mut counted = |m: ParsedMessage| {
        count += 1;
        emit(m)
    };
    match encoding {
        FileEncoding::Utf8 => parse_format(format, reader, opts, &mut counted)?,
        FileEncoding::Utf16 { encoding, .. } => parse_format(
            format,
            BufReader::with_capacity(
                64 * 1024,
                encoding::TranscodingReader::new(reader, encoding),
            ),
            opts,
            &mut counted,
        )?,
    };
    if count == 0 {
        return Err("the file contains no messages (only blank lines)".into());
    }
    Ok(())
}

fn parse_format<R: BufRead>(
    format: TextFormat,
    reader: R,
    opts: &ParseOptions,
    emit: &mut MessageSink<'_>,
) -> Result<(), String> {
    match format {
        TextFormat::Txt => parse_txt(reader, opts, emit),
        TextFormat::Csv => parse_csv(reader, opts, emit),
        TextFormat::Jsonl => parse_jsonl(reader, opts, emit),
    }
}

/// One physical line, bounded: bytes past `max` are skipped, not buffered.
struct BoundedLine {
    bytes: Vec<u8>,
    truncated_at: Option<usize>,
}

/// Read up to the next line end: `\n`, `\r\n`, or a lone `\r` (old Mac exports; without it a
/// whole CR-only file would be one message).
fn read_bounded_line<R: BufRead>(r: &mut R, max: usize) -> Result<Option<BoundedLine>, String> {
    let mut bytes = Vec::new();
    let mut total = 0usize;
    let mut saw_any = false;
    let mut ended_by_cr = false;
    loop {
        let buf = r
            .fill_buf()
            .map_err(|e| format!("could not read the file: {e}"))?;
        if buf.is_empty() {
            break;
        }
        saw_any = true;
        let end = buf.iter().position(|b| *b == b'\n' || *b == b'\r');
        let chunk = &buf[..end.unwrap_or(buf.len())];
        let room = max.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        total += chunk.len();
        let consumed = chunk.len() + usize::from(end.is_some());
        ended_by_cr = end.is_some_and(|i| buf[i] == b'\r');
        r.consume(consumed);
        if end.is_some() {
            break;
        }
    }
    if !saw_any {
        return Ok(None);
    }
    if ended_by_cr {
        // `\r\n` is one line end, even when the `\n` is in the next buffer.
        let next = r
            .fill_buf()
            .map_err(|e| format!("could not read the file: {e}"))?;
        if next.first() == Some(&b'\n') {
            r.consume(1);
        }
    }
    Ok(Some(BoundedLine {
        bytes,
        truncated_at: (total > max).then_some(max),
    }))
}

/// Decode one line or field, with the issue its decoding raises.
fn decode(bytes: &[u8], truncated: bool) -> (String, Option<ItemIssue>) {
    let (text, how) = encoding::decode_line(bytes, truncated);
    let issue = match how {
        LineDecoding::Utf8 => None,
        LineDecoding::Windows1252 => Some(ItemIssue {
            message: "not UTF-8: decoded as Windows-1252 (Latin-1)".into(),
            needs_review: false,
        }),
        // Scores of damaged text say nothing about what was written: a person must read it.
        LineDecoding::Replaced => Some(ItemIssue {
            message: "bytes that are neither UTF-8 nor Windows-1252 text were replaced with \
                      U+FFFD; the text may be damaged"
                .into(),
            needs_review: true,
        }),
    };
    (text, issue)
}

fn truncation_issue(max: usize) -> ItemIssue {
    ItemIssue {
        message: format!("message longer than {max} bytes was cut; the rest was not moderated"),
        needs_review: true,
    }
}

fn parse_txt<R: BufRead>(
    mut r: R,
    opts: &ParseOptions,
    emit: &mut MessageSink<'_>,
) -> Result<(), String> {
    let mut line_no = 0usize;
    while let Some(line) = read_bounded_line(&mut r, opts.max_message_bytes)? {
        line_no += 1;
        let (text, decoding) = decode(&line.bytes, line.truncated_at.is_some());
        let text = text.trim_start_matches('\u{feff}');
        if text.trim().is_empty() {
            continue;
        }
        let mut msg = ParsedMessage {
            id: format!("line-{line_no}"),
            text: text.trim().to_string(),
            ..Default::default()
        };
        msg.issues.extend(decoding);
        if let Some(max) = line.truncated_at {
            msg.issues.push(truncation_issue(max));
        }
        emit(msg)?;
    }
    Ok(())
}

fn find_column(headers: &[String], wanted: &[&str]) -> Option<usize> {
    wanted
        .iter()
        .find_map(|w| headers.iter().position(|h| h == w))
}

const USER_FIELDS: &[&str] = &["user", "username", "user_id"];
const TIME_FIELDS: &[&str] = &["timestamp", "time", "ts"];
const CONVERSATION_FIELDS: &[&str] = &["conversation", "conversation_id", "match"];

fn is_metadata_field(name: &str) -> bool {
    [USER_FIELDS, TIME_FIELDS, CONVERSATION_FIELDS]
        .iter()
        .any(|names| names.contains(&name))
}

/// The text of a row or object: every distinct non-empty value of the text fields, in the
/// order of [`TEXT_FIELDS`] (a `message` and a `text` column can both hold chat, and a
/// duplicated JSON key can hide a second message), joined by a line break.
fn join_texts<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        let v = v.trim();
        if !v.is_empty() && !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join("\n")
}

/// The header names to read text from: the override alone, or every known text column.
fn text_names(opts: &ParseOptions) -> Vec<String> {
    match &opts.text_column {
        Some(c) => vec![c.trim().to_lowercase()],
        None => TEXT_FIELDS.iter().map(|s| s.to_string()).collect(),
    }
}

/// How one CSV row maps onto the header.
struct CsvLayout {
    headers: Vec<String>,
    /// Text columns in order of preference.
    text_cols: Vec<usize>,
    user_col: Option<usize>,
    ts_col: Option<usize>,
    conv_col: Option<usize>,
}

impl CsvLayout {
    /// A message from one record; `None` for a row with nothing in it worth reading.
    fn message(
        &self,
        record: &csv::ByteRecord,
        id: String,
        opts: &ParseOptions,
    ) -> Option<ParsedMessage> {
        let field = |i: Option<usize>| -> Option<String> {
            let raw = record.get(i?)?;
            let s = decode(raw, false).0.trim().to_string();
            (!s.is_empty()).then_some(s)
        };
        let mut issues = Vec::new();
        let mut values = Vec::new();
        for &col in &self.text_cols {
            let (value, decoding) = decode(record.get(col).unwrap_or_default(), false);
            issues.extend(decoding);
            values.push(value);
        }
        let mut text = join_texts(values.iter().map(String::as_str));
        if text.len() > opts.max_message_bytes {
            let mut cut = opts.max_message_bytes;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            issues.push(truncation_issue(opts.max_message_bytes));
        }
        if text.is_empty() {
            let names: Vec<&str> = self
                .text_cols
                .iter()
                .map(|c| self.headers[*c].as_str())
                .collect();
            // A short row or content outside the known columns is shown as written; a row of
            // only a user and a time is an empty message.
            let other_content = record.iter().enumerate().any(|(i, raw)| {
                !self.text_cols.contains(&i)
                    && !self.headers.get(i).is_some_and(|h| is_metadata_field(h))
                    && decode(raw, false).0.chars().any(char::is_alphanumeric)
            });
            let short = self.text_cols.iter().all(|c| record.len() <= *c);
            if !short && !other_content {
                return None;
            }
            text = record
                .iter()
                .map(|raw| decode(raw, false).0)
                .collect::<Vec<_>>()
                .join(",");
            issues.push(ItemIssue {
                message: format!(
                    "row has {} fields and no text in {}; the whole row is shown as written",
                    record.len(),
                    names.join("/")
                ),
                needs_review: true,
            });
        }
        Some(ParsedMessage {
            id,
            text,
            user: field(self.user_col),
            timestamp: field(self.ts_col),
            conversation: field(self.conv_col),
            issues,
        })
    }

    /// Whether one physical line parses as a row of this file (as many fields as the header).
    fn looks_like_row(&self, line: &str) -> bool {
        self.headers.len() >= 2 && parse_line(line).is_some_and(|r| r.len() == self.headers.len())
    }
}

/// One line as a CSV record of its own.
fn parse_line(line: &str) -> Option<csv::ByteRecord> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(line.as_bytes());
    let mut record = csv::ByteRecord::new();
    rdr.read_byte_record(&mut record).ok()?.then_some(record)
}

fn parse_csv<R: Read>(r: R, opts: &ParseOptions, emit: &mut MessageSink<'_>) -> Result<(), String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(r);
    let headers: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| format!("could not read the CSV header: {e}"))?
        .iter()
        .map(|h| {
            decode(h, false)
                .0
                .trim_start_matches('\u{feff}')
                .trim()
                .to_lowercase()
        })
        .collect();
    // Headers are matched case-insensitively, so the override is too.
    let names = text_names(opts);
    let text_cols: Vec<usize> = names
        .iter()
        .filter_map(|n| headers.iter().position(|h| h == n))
        .collect();
    if text_cols.is_empty() {
        return Err(format!(
            "the CSV header has no text column (expected one of {}; found {})",
            names.join(", "),
            headers.join(", ")
        ));
    }
    let layout = CsvLayout {
        user_col: find_column(&headers, USER_FIELDS),
        ts_col: find_column(&headers, TIME_FIELDS),
        conv_col: find_column(&headers, CONVERSATION_FIELDS),
        headers,
        text_cols,
    };

    let mut record = csv::ByteRecord::new();
    loop {
        let line_no = rdr.position().line();
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A structural error leaves the reader unusable past here.
                emit(ParsedMessage {
                    id: format!("line-{line_no}"),
                    issues: vec![ItemIssue {
                        message: format!("CSV could not be read from here on: {e}"),
                        needs_review: true,
                    }],
                    ..Default::default()
                })?;
                break;
            }
        }
        let last_line = rdr.position().line().saturating_sub(1).max(line_no);
        if last_line > line_no {
            if let Some(split) = split_swallowed_rows(&layout, &record, line_no, last_line, opts) {
                split.into_iter().try_for_each(&mut *emit)?;
                continue;
            }
        }
        let Some(mut msg) = layout.message(&record, format!("line-{line_no}"), opts) else {
            continue;
        };
        let spanned = last_line - line_no + 1;
        if spanned > MAX_RECORD_LINES {
            // A chat message this tall is almost always an unbalanced quote.
            msg.issues.push(ItemIssue {
                message: format!(
                    "CSV record spans {spanned} lines ({line_no}-{last_line}); an unbalanced \
                     quote may have merged rows"
                ),
                needs_review: true,
            });
        }
        emit(msg)?;
    }
    Ok(())
}

/// A record whose quoted text runs over line breaks into lines shaped like rows of this file
/// swallowed them behind an unbalanced quote: its own first line becomes an item that needs
/// review and names the lines, and each swallowed line is read as the row it looks like, so
/// its text is scored under its own user.
fn split_swallowed_rows(
    layout: &CsvLayout,
    record: &csv::ByteRecord,
    first: u64,
    last: u64,
    opts: &ParseOptions,
) -> Option<Vec<ParsedMessage>> {
    let &col = layout
        .text_cols
        .iter()
        .find(|c| record.get(**c).is_some_and(|f| f.contains(&b'\n')))?;
    let (field, _) = decode(record.get(col)?, false);
    let mut lines = field.split('\n');
    let head = lines.next().unwrap_or_default().to_string();
    let rest: Vec<&str> = lines.collect();
    if !rest.iter().any(|l| layout.looks_like_row(l)) {
        return None;
    }
    let mut fields: Vec<Vec<u8>> = record.iter().map(<[u8]>::to_vec).collect();
    fields[col] = head.into_bytes();
    let opening = csv::ByteRecord::from(fields);
    let mut first_msg = layout
        .message(&opening, format!("line-{first}"), opts)
        .unwrap_or(ParsedMessage {
            id: format!("line-{first}"),
            ..Default::default()
        });
    first_msg.issues.push(ItemIssue {
        message: format!(
            "an unbalanced quote in column {} on line {first} runs over line breaks: lines \
             {}-{last} were inside it and are read as separate rows; check who wrote what",
            layout.headers[col],
            first + 1
        ),
        needs_review: true,
    });
    let mut out = vec![first_msg];
    for (k, line) in rest.iter().enumerate() {
        let line_no = first + 1 + k as u64;
        if line.trim().is_empty() {
            continue;
        }
        let recovered = parse_line(line)
            .filter(|_| layout.looks_like_row(line))
            .and_then(|r| layout.message(&r, format!("line-{line_no}"), opts));
        let mut msg = recovered.unwrap_or_else(|| ParsedMessage {
            id: format!("line-{line_no}"),
            text: line.trim().to_string(),
            issues: vec![ItemIssue {
                message: "line inside an unclosed quote that is not shaped like a row; shown \
                          as written"
                    .into(),
                needs_review: true,
            }],
            ..Default::default()
        });
        msg.issues.push(ItemIssue {
            message: format!("recovered from inside the unclosed quote of line {first}"),
            needs_review: false,
        });
        out.push(msg);
    }
    Some(out)
}

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

fn parse_jsonl<R: BufRead>(
    mut r: R,
    opts: &ParseOptions,
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
        let mut issues: Vec<ItemIssue> = decoding.into_iter().collect();
        // A line we cannot use is kept, as written, for a moderator to read.
        let unusable = |mut issues: Vec<ItemIssue>, why: String| {
            issues.push(ItemIssue {
                message: why,
                needs_review: true,
            });
            ParsedMessage {
                id: id.clone(),
                text: raw.to_string(),
                issues,
                ..Default::default()
            }
        };
        if let Some(max) = line.truncated_at {
            // A cut JSON line cannot be parsed.
            emit(unusable(
                issues,
                format!("JSON line longer than {max} bytes could not be parsed"),
            ))?;
            continue;
        }
        let entries = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(_)) => match serde_json::from_str::<Entries>(raw) {
                Ok(Entries(e)) => e,
                Err(e) => {
                    emit(unusable(issues, format!("line is not valid JSON: {e}")))?;
                    continue;
                }
            },
            Ok(_) => {
                emit(unusable(issues, "line is JSON but not an object".into()))?;
                continue;
            }
            Err(e) => {
                emit(unusable(issues, format!("line is not valid JSON: {e}")))?;
                continue;
            }
        };
        let mut texts = Vec::new();
        let mut odd_types = Vec::new();
        for name in &names {
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
                match v {
                    Value::Null => {}
                    v => match scalar_string(v) {
                        Some(s) => texts.push(s),
                        None if v.is_string() => {}
                        None => odd_types.push(name.as_str()),
                    },
                }
            }
        }
        if !odd_types.is_empty() {
            let why = format!(
                "field {} is not a string; the line is shown as written",
                odd_types.join("/")
            );
            emit(unusable(issues, why))?;
            continue;
        }
        let text = join_texts(texts.iter().map(String::as_str));
        if text.is_empty() {
            let has_text_key = entries.iter().any(|(k, _)| names.contains(k));
            // Words elsewhere in the object may be the message under a name we do not know.
            let other_content = entries.iter().any(|(k, v)| {
                !is_metadata_field(k)
                    && v.as_str()
                        .is_some_and(|s| s.chars().any(char::is_alphanumeric))
            });
            if has_text_key && !other_content {
                continue;
            }
            let why = format!(
                "object has no text in a string field {}; the line is shown as written",
                names.join("/")
            );
            emit(unusable(issues, why))?;
            continue;
        }
        let get = |wanted: &[&str]| {
            wanted.iter().find_map(|k| {
                entries
                    .iter()
                    .find(|(key, _)| key == k)
                    .and_then(|(_, v)| scalar_string(v))
            })
        };
        emit(ParsedMessage {
            id,
            text,
            user: get(USER_FIELDS),
            timestamp: get(TIME_FIELDS),
            conversation: get(CONVERSATION_FIELDS),
            issues,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: TextFormat, data: &[u8]) -> Result<Vec<ParsedMessage>, String> {
        parse_messages(format, data, &ParseOptions::default()).map(|p| p.messages)
    }

    fn needs_review(m: &ParsedMessage) -> bool {
        m.issues.iter().any(|i| i.needs_review)
    }

    #[test]
    fn txt_skips_blank_lines_and_keeps_line_numbers() {
        let m = parse(TextFormat::Txt, b"hello\n\n  \r\nworld\r\n").expect("parses");
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].id.as_str(), m[0].text.as_str()), ("line-1", "hello"));
        assert_eq!((m[1].id.as_str(), m[1].text.as_str()), ("line-4", "world"));
    }

    #[test]
    fn a_streaming_parse_hands_over_messages_in_order_and_stops_when_told() {
        let data = b"a\nb\n\nc\nd\n";
        let mut seen = Vec::new();
        let notes = parse_messages_each(
            TextFormat::Txt,
            &data[..],
            &ParseOptions::default(),
            &mut |m| {
                seen.push(m.id);
                Ok(())
            },
        )
        .expect("parses");
        assert!(notes.is_empty());
        assert_eq!(seen, ["line-1", "line-2", "line-4", "line-5"]);
        let mut taken = 0;
        let e = parse_messages_each(
            TextFormat::Jsonl,
            &b"{\"message\":\"x\"}\n{\"message\":\"y\"}\n"[..],
            &ParseOptions::default(),
            &mut |_| {
                taken += 1;
                Err("stopped".into())
            },
        )
        .expect_err("stops");
        assert_eq!((e.as_str(), taken), ("stopped", 1));
    }

    #[test]
    fn a_parse_stopped_part_way_keeps_the_notes_about_the_file() {
        // UTF-16LE with a BOM: "a\nb\n".
        let data: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a\nb\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let mut notes = Vec::new();
        let e = parse_messages_noting(
            TextFormat::Txt,
            &data[..],
            &ParseOptions::default(),
            &mut notes,
            &mut |_| Err("stopped".into()),
        )
        .expect_err("stops");
        assert_eq!(e, "stopped");
        assert!(notes.iter().any(|n| n.contains("UTF-16")), "{notes:?}");
    }

    #[test]
    fn empty_and_blank_files_are_errors() {
        assert_eq!(
            parse(TextFormat::Txt, b"").expect_err("empty"),
            "the file is empty"
        );
        let e = parse(TextFormat::Txt, b"\n \n\t\n").expect_err("blank");
        assert!(e.contains("no messages"), "{e}");
    }

    #[test]
    fn binary_files_are_rejected() {
        let e = parse(TextFormat::Csv, b"PK\x03\x04\x00\x00binary").expect_err("binary");
        assert!(e.contains("binary"), "{e}");
    }

    #[test]
    fn undecodable_bytes_are_replaced_and_need_review() {
        let m = parse(TextFormat::Txt, b"ok\nbad \xff\xfe byte\n").expect("parses");
        assert_eq!(m[1].text, "bad \u{fffd}\u{fffd} byte");
        assert!(m[1].issues[0].message.contains("U+FFFD"));
        assert!(needs_review(&m[1]));
        assert!(m[0].issues.is_empty());
    }

    #[test]
    fn latin1_lines_are_decoded_and_named() {
        let m = parse(TextFormat::Txt, b"k\xedll yours\xe9lf\nplain\n").expect("parses");
        assert_eq!(m[0].text, "kíll yoursélf");
        assert!(m[0].issues[0].message.contains("Windows-1252"));
        assert!(!needs_review(&m[0]));
        let m = parse(TextFormat::Csv, b"user,message\nana,t\xfa eres tonto\n").expect("csv");
        assert_eq!(m[0].text, "tú eres tonto");
    }

    #[test]
    fn utf16_files_are_decoded_with_a_note() {
        let text = "user,message\r\nana,you idiot\r\nbo,gg\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let p = parse_messages(TextFormat::Csv, &bytes[..], &ParseOptions::default()).expect("ok");
        assert_eq!(p.messages.len(), 2);
        assert_eq!(p.messages[0].text, "you idiot");
        assert!(p.notes[0].contains("UTF-16LE"), "{:?}", p.notes);
        let txt: Vec<u8> = "hello\nworld\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let m = parse(TextFormat::Txt, &txt).expect("utf-16be without a BOM");
        assert_eq!(m[1].text, "world");
    }

    #[test]
    fn cr_only_line_endings_split_messages() {
        let m = parse(TextFormat::Txt, b"one\rtwo\r\rthree\r\nfour").expect("parses");
        let texts: Vec<&str> = m.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "three", "four"]);
        assert_eq!(m[2].id, "line-4");
        let m = parse(TextFormat::Jsonl, b"{\"text\":\"a\"}\r{\"text\":\"b\"}\r").expect("jsonl");
        assert_eq!(m.len(), 2);
        let m = parse(TextFormat::Csv, b"user,message\rana,hi\rbo,yo\r").expect("csv");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn every_text_column_is_read_and_no_row_is_dropped() {
        let data = "user,message,text\n\
                    ana,gg,\n\
                    bo,,i will find you and hurt you\n\
                    cy,same,same\n\
                    dee,one,two\n\
                    eve,,\n";
        let m = parse(TextFormat::Csv, data.as_bytes()).expect("parses");
        let texts: Vec<&str> = m.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            ["gg", "i will find you and hurt you", "same", "one\ntwo"]
        );
        assert_eq!(m[1].user.as_deref(), Some("bo"));
        // Text outside the known columns is not lost: the row needs review, shown whole.
        let m = parse(TextFormat::Csv, b"user,message,note\nana,,go die\n").expect("parses");
        assert_eq!(m[0].text, "ana,,go die");
        assert!(needs_review(&m[0]));
    }

    #[test]
    fn csv_short_unbalanced_quote_is_split_and_flagged() {
        let data =
            "user,message\nana,\"oops\nbo,you are trash\ncy,gg\ndee,i will hurt you\neve,ok\n";
        let m = parse(TextFormat::Csv, data.as_bytes()).expect("parses");
        let rows: Vec<(&str, Option<&str>, &str)> = m
            .iter()
            .map(|m| (m.id.as_str(), m.user.as_deref(), m.text.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("line-2", Some("ana"), "oops"),
                ("line-3", Some("bo"), "you are trash"),
                ("line-4", Some("cy"), "gg"),
                ("line-5", Some("dee"), "i will hurt you"),
                ("line-6", Some("eve"), "ok"),
            ]
        );
        assert!(needs_review(&m[0]));
        assert!(
            m[0].issues[0].message.contains("lines 3-6"),
            "{:?}",
            m[0].issues
        );
        assert!(!needs_review(&m[3]));
        // A real two-line message is not split.
        let m = parse(
            TextFormat::Csv,
            b"user,message\nana,\"two\nlines\"\nbo,hi\n",
        )
        .expect("ok");
        assert_eq!(m[0].text, "two\nlines");
        assert!(m[0].issues.is_empty());
    }

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
    fn long_lines_are_cut_on_char_boundaries_and_flagged() {
        let opts = ParseOptions {
            max_message_bytes: 5,
            ..Default::default()
        };
        let m = parse_messages(TextFormat::Txt, "abcdé€xyz\nnext\n".as_bytes(), &opts)
            .expect("parses")
            .messages;
        assert_eq!(m[0].text, "abcd");
        assert!(m[0].issues[0].needs_review);
        assert_eq!(m[1].text, "next");
    }

    #[test]
    fn fifty_kb_line_is_kept_whole_by_default() {
        let line = "word ".repeat(10_000);
        let m = parse(TextFormat::Txt, line.as_bytes()).expect("parses");
        assert_eq!(m[0].text.len(), line.trim().len());
        assert!(m[0].issues.is_empty());
    }

    #[test]
    fn csv_maps_headers_and_handles_quotes() {
        let data = "Timestamp,User,Message\n\
                    00:01,ana,\"hello, world\"\n\
                    00:02,bo,\"two\nlines\"\n\
                    00:03,cy,\"she said \"\"hi\"\"\"\n";
        let m = parse(TextFormat::Csv, data.as_bytes()).expect("parses");
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].text, "hello, world");
        assert_eq!(m[0].user.as_deref(), Some("ana"));
        assert_eq!(m[0].timestamp.as_deref(), Some("00:01"));
        assert_eq!(m[1].text, "two\nlines");
        assert_eq!(m[2].text, "she said \"hi\"");
        assert_eq!(m[2].id, "line-5");
    }

    #[test]
    fn csv_without_text_column_names_what_it_found() {
        let e = parse(TextFormat::Csv, b"user,when\na,b\n").expect_err("no column");
        assert!(
            e.contains("message, text, content") && e.contains("user, when"),
            "{e}"
        );
        let opts = ParseOptions {
            text_column: Some("when".into()),
            ..Default::default()
        };
        let m = parse_messages(TextFormat::Csv, &b"user,when\na,b\n"[..], &opts).expect("ok");
        assert_eq!(m.messages[0].text, "b");
        let opts = ParseOptions {
            text_column: Some("When".into()),
            ..Default::default()
        };
        let m = parse_messages(TextFormat::Csv, &b"user,WHEN\na,b\n"[..], &opts).expect("ok");
        assert_eq!(m.messages[0].text, "b");
    }

    #[test]
    fn csv_unbalanced_quote_is_flagged_not_silent() {
        let mut data = String::from("user,message\nann,\"oops never closed\n");
        for i in 0..30 {
            data.push_str(&format!("bob,line {i}\n"));
        }
        let m = parse(TextFormat::Csv, data.as_bytes()).expect("parses");
        let flagged: Vec<_> = m
            .iter()
            .filter(|m| m.issues.iter().any(|i| i.needs_review))
            .collect();
        assert!(!flagged.is_empty(), "{m:?}");
        assert!(flagged[0].issues[0].message.contains("unbalanced quote"));
    }

    #[test]
    fn csv_conversation_column_is_carried() {
        let m = parse(TextFormat::Csv, b"conversation,text\nm-1,hi\n").expect("ok");
        assert_eq!(m[0].conversation.as_deref(), Some("m-1"));
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
}
