//! Chat-log parsing (TXT, CSV, JSONL) from a streaming reader.
//!
//! Lines are read with a byte bound so one enormous line cannot exhaust memory; UTF-16 is
//! transcoded, lines that are not UTF-8 are read as Windows-1252 when that is plausible and
//! flagged as damaged when not; no row is dropped; every problem names the line it came from.

mod csv;
mod jsonl;

use std::io::{BufRead, BufReader, Read};

use crate::text::encoding::{self, FileEncoding, LineDecoding};

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
    /// The writer's age band (`13-15`, `18+`) where the upload carries one.
    pub age_band: Option<String>,
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
    let mut skipped = Skipped::default();
    let parsed = match encoding {
        FileEncoding::Utf8 => parse_format(format, reader, opts, &mut skipped, &mut counted),
        FileEncoding::Utf16 { encoding, .. } => {
            let mut transcoding = encoding::TranscodingReader::new(reader, encoding);
            let parsed = parse_format(
                format,
                BufReader::with_capacity(64 * 1024, &mut transcoding),
                opts,
                &mut skipped,
                &mut counted,
            );
            if let Some(at) = transcoding.eight_bit_from() {
                notes.push(format!(
                    "from byte {at} on the file is 8-bit text, not UTF-16; it was read as such"
                ));
            }
            parsed
        }
    };
    notes.extend(skipped.note());
    parsed?;
    if count == 0 {
        return Err("the file contains no messages (only blank lines)".into());
    }
    Ok(())
}

fn parse_format<R: BufRead>(
    format: TextFormat,
    reader: R,
    opts: &ParseOptions,
    skipped: &mut Skipped,
    emit: &mut MessageSink<'_>,
) -> Result<(), String> {
    match format {
        TextFormat::Txt => parse_txt(reader, opts, emit),
        TextFormat::Csv => csv::parse_csv(reader, opts, skipped, emit),
        TextFormat::Jsonl => jsonl::parse_jsonl(reader, opts, skipped, emit),
    }
}

/// Records with no text at all (a user and a time beside an empty message): no message, but
/// counted in a note, so every record of the file is accounted for in the report.
#[derive(Debug, Default)]
struct Skipped {
    count: u64,
    /// The first few, by id.
    ids: Vec<String>,
}

impl Skipped {
    const SHOWN: usize = 10;

    fn add(&mut self, id: String) {
        self.count += 1;
        if self.ids.len() < Self::SHOWN {
            self.ids.push(id);
        }
    }

    fn note(&self) -> Option<String> {
        let more = if self.count > self.ids.len() as u64 {
            ", …"
        } else {
            ""
        };
        (self.count > 0).then(|| {
            format!(
                "{} record(s) with no text in any field were skipped ({}{more})",
                self.count,
                self.ids.join(", ")
            )
        })
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
const AGE_FIELDS: &[&str] = &["age_band"];

fn is_metadata_field(name: &str) -> bool {
    [USER_FIELDS, TIME_FIELDS, CONVERSATION_FIELDS, AGE_FIELDS]
        .iter()
        .any(|names| names.contains(&name))
}

/// Whether a value under `field` may be a message a player wrote: anything outside the
/// metadata fields with a letter or digit, and a user or conversation value of two or more
/// words (a time of three), which no id or timestamp is. A record whose message is empty but
/// whose user column holds a sentence is read, not skipped.
fn is_content(field: &str, value: &str) -> bool {
    if !value.chars().any(char::is_alphanumeric) {
        return false;
    }
    if !is_metadata_field(field) {
        return true;
    }
    let words = value
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    words >= if TIME_FIELDS.contains(&field) { 3 } else { 2 }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of `data` parsed with the default options (the format tests share it).
    pub(super) fn parse(format: TextFormat, data: &[u8]) -> Result<Vec<ParsedMessage>, String> {
        parse_messages(format, data, &ParseOptions::default()).map(|p| p.messages)
    }

    pub(super) fn needs_review(m: &ParsedMessage) -> bool {
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
    fn a_utf16_head_followed_by_utf8_reads_each_part_as_written() {
        let mut data = vec![0xFF, 0xFE];
        data.extend(
            "gg all\nnice game\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        data.extend(b"you are a worthless idiot\ni will kill you tonight\ngo die in a fire\n");
        let p = parse_messages(TextFormat::Txt, &data[..], &ParseOptions::default()).expect("ok");
        let texts: Vec<&str> = p.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "gg all",
                "nice game",
                "you are a worthless idiot",
                "i will kill you tonight",
                "go die in a fire"
            ]
        );
        assert!(
            p.notes.iter().any(|n| n.contains("from byte 36 on")),
            "{:?}",
            p.notes
        );
        // UTF-16 Chinese between ASCII lines stays UTF-16.
        let mut data = vec![0xFF, 0xFE];
        let zh = "hello\n你好世界你好世界你好世界你好世界你好世界你好世界\nbye\n";
        data.extend(zh.encode_utf16().flat_map(u16::to_le_bytes));
        let p = parse_messages(TextFormat::Txt, &data[..], &ParseOptions::default()).expect("ok");
        assert_eq!(p.messages.len(), 3);
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
    }

    #[test]
    fn records_with_no_text_are_counted_in_a_note() {
        let p = parse_messages(
            TextFormat::Csv,
            &b"user,message\nana,gg\nbo,\ncy,\n"[..],
            &ParseOptions::default(),
        )
        .expect("ok");
        assert_eq!(p.messages.len(), 1);
        assert!(
            p.notes
                .iter()
                .any(|n| n.starts_with("2 record(s)") && n.contains("line-3, line-4")),
            "{:?}",
            p.notes
        );
        let p = parse_messages(
            TextFormat::Jsonl,
            &b"{\"message\":\"gg\"}\n\n{\"user\":\"a\",\"message\":null}\n"[..],
            &ParseOptions::default(),
        )
        .expect("ok");
        assert_eq!(
            p.notes,
            ["1 record(s) with no text in any field were skipped (line-3)"]
        );
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
}
