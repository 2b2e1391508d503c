//! Chat-log parsing (TXT, CSV, JSONL) from a streaming reader.
//!
//! Lines are read with a byte bound so one enormous line cannot exhaust memory, invalid UTF-8 is
//! replaced and flagged rather than dropped, and every problem names the line it came from.

use std::io::{BufRead, BufReader, Read};

use serde_json::Value;

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

/// Parsing result: either messages (each possibly with issues) or a file-level failure.
pub type ParseResult = Result<Vec<ParsedMessage>, String>;

pub fn parse_messages<R: Read>(format: TextFormat, reader: R, opts: &ParseOptions) -> ParseResult {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader
        .fill_buf()
        .map_err(|e| format!("could not read the file: {e}"))?;
    if head.is_empty() {
        return Err("the file is empty".into());
    }
    // A NUL byte does not occur in chat text; it means a binary file with a text extension.
    if head.iter().take(8192).any(|b| *b == 0) {
        return Err("the file looks binary (NUL bytes), not a text chat log".into());
    }
    let messages = match format {
        TextFormat::Txt => parse_txt(reader, opts)?,
        TextFormat::Csv => parse_csv(reader, opts)?,
        TextFormat::Jsonl => parse_jsonl(reader, opts)?,
    };
    if messages.is_empty() {
        return Err("the file contains no messages (only blank lines)".into());
    }
    Ok(messages)
}

/// One physical line, bounded: bytes past `max` are skipped, not buffered.
struct BoundedLine {
    bytes: Vec<u8>,
    truncated_at: Option<usize>,
}

fn read_bounded_line<R: BufRead>(r: &mut R, max: usize) -> Result<Option<BoundedLine>, String> {
    let mut bytes = Vec::new();
    let mut total = 0usize;
    let mut saw_any = false;
    loop {
        let buf = r
            .fill_buf()
            .map_err(|e| format!("could not read the file: {e}"))?;
        if buf.is_empty() {
            break;
        }
        saw_any = true;
        let (chunk, found_newline) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        let room = max.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        total += chunk.len();
        let consumed = chunk.len() + usize::from(found_newline);
        r.consume(consumed);
        if found_newline {
            break;
        }
    }
    if !saw_any {
        return Ok(None);
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    Ok(Some(BoundedLine {
        bytes,
        truncated_at: (total > max).then_some(max),
    }))
}

/// Decode with replacement, cutting back to a char boundary if the bound split a character.
fn decode(bytes: &[u8], truncated: bool) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(e) if truncated && e.error_len().is_none() => (
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned(),
            false,
        ),
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
    }
}

fn utf8_issue() -> ItemIssue {
    ItemIssue {
        message: "invalid UTF-8 bytes were replaced with U+FFFD".into(),
        needs_review: false,
    }
}

fn truncation_issue(max: usize) -> ItemIssue {
    ItemIssue {
        message: format!("message longer than {max} bytes was cut; the rest was not moderated"),
        needs_review: true,
    }
}

fn parse_txt<R: BufRead>(mut r: R, opts: &ParseOptions) -> ParseResult {
    let mut out = Vec::new();
    let mut line_no = 0usize;
    while let Some(line) = read_bounded_line(&mut r, opts.max_message_bytes)? {
        line_no += 1;
        let (text, replaced) = decode(&line.bytes, line.truncated_at.is_some());
        if text.trim().is_empty() {
            continue;
        }
        let mut msg = ParsedMessage {
            id: format!("line-{line_no}"),
            text: text.trim().to_string(),
            ..Default::default()
        };
        if replaced {
            msg.issues.push(utf8_issue());
        }
        if let Some(max) = line.truncated_at {
            msg.issues.push(truncation_issue(max));
        }
        out.push(msg);
    }
    Ok(out)
}

fn find_column(headers: &[String], wanted: &[&str]) -> Option<usize> {
    wanted
        .iter()
        .find_map(|w| headers.iter().position(|h| h == w))
}

fn parse_csv<R: Read>(r: R, opts: &ParseOptions) -> ParseResult {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(r);
    let headers: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| format!("could not read the CSV header: {e}"))?
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_lowercase()
        })
        .collect();
    // Headers are matched case-insensitively, so the override is too.
    let wanted = opts.text_column.as_ref().map(|c| c.trim().to_lowercase());
    let text_names: Vec<&str> = match &wanted {
        Some(c) => vec![c.as_str()],
        None => TEXT_FIELDS.to_vec(),
    };
    let text_col = find_column(&headers, &text_names).ok_or_else(|| {
        format!(
            "the CSV header has no text column (expected one of {}; found {})",
            text_names.join(", "),
            headers.join(", ")
        )
    })?;
    let user_col = find_column(&headers, &["user", "username", "user_id"]);
    let ts_col = find_column(&headers, &["timestamp", "time"]);
    let conv_col = find_column(&headers, &["conversation", "conversation_id", "match"]);

    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line_no = rdr.position().line();
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A structural error (e.g. unbalanced quote) leaves the reader unusable past here.
                out.push(ParsedMessage {
                    id: format!("line-{line_no}"),
                    issues: vec![ItemIssue {
                        message: format!("CSV could not be read from here on: {e}"),
                        needs_review: true,
                    }],
                    ..Default::default()
                });
                break;
            }
        }
        let field = |i: Option<usize>| -> Option<String> {
            let raw = record.get(i?)?;
            let s = String::from_utf8_lossy(raw).trim().to_string();
            (!s.is_empty()).then_some(s)
        };
        let raw_text = record.get(text_col).unwrap_or_default();
        let mut issues = Vec::new();
        let spanned = rdr.position().line().saturating_sub(line_no);
        if spanned > MAX_RECORD_LINES {
            // A chat message this tall is almost always an unbalanced quote that swallowed
            // the rows after it; those rows are inside this item's text, not lost.
            issues.push(ItemIssue {
                message: format!(
                    "CSV record spans {spanned} lines; an unbalanced quote may have merged rows"
                ),
                needs_review: true,
            });
        }
        let (mut text, replaced) = decode(raw_text, false);
        if replaced {
            issues.push(utf8_issue());
        }
        if text.len() > opts.max_message_bytes {
            let mut cut = opts.max_message_bytes;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            issues.push(truncation_issue(opts.max_message_bytes));
        }
        if text.trim().is_empty() {
            if record.len() <= text_col {
                issues.push(ItemIssue {
                    message: format!(
                        "row has {} fields, none in the text column {}",
                        record.len(),
                        headers[text_col]
                    ),
                    needs_review: true,
                });
            } else {
                continue;
            }
        }
        out.push(ParsedMessage {
            id: format!("line-{line_no}"),
            text: text.trim().to_string(),
            user: field(user_col),
            timestamp: field(ts_col),
            conversation: field(conv_col),
            issues,
        });
    }
    Ok(out)
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_jsonl<R: BufRead>(mut r: R, opts: &ParseOptions) -> ParseResult {
    let mut out = Vec::new();
    let mut line_no = 0usize;
    let text_names: Vec<&str> = match &opts.text_column {
        Some(c) => vec![c.as_str()],
        None => TEXT_FIELDS.to_vec(),
    };
    while let Some(line) = read_bounded_line(&mut r, opts.max_message_bytes)? {
        line_no += 1;
        let id = format!("line-{line_no}");
        let (raw, replaced) = decode(&line.bytes, line.truncated_at.is_some());
        if raw.trim().is_empty() {
            continue;
        }
        let mut issues = Vec::new();
        if replaced {
            issues.push(utf8_issue());
        }
        // A line we cannot use is kept, as written, for a moderator to read.
        let unusable = |mut issues: Vec<ItemIssue>, why: String| {
            issues.push(ItemIssue {
                message: why,
                needs_review: true,
            });
            ParsedMessage {
                id: id.clone(),
                text: raw.clone(),
                issues,
                ..Default::default()
            }
        };
        if let Some(max) = line.truncated_at {
            // A cut JSON line cannot be parsed.
            out.push(unusable(
                issues,
                format!("JSON line longer than {max} bytes could not be parsed"),
            ));
            continue;
        }
        let obj = match serde_json::from_str::<Value>(&raw) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                out.push(unusable(issues, "line is JSON but not an object".into()));
                continue;
            }
            Err(e) => {
                out.push(unusable(issues, format!("line is not valid JSON: {e}")));
                continue;
            }
        };
        let text = text_names
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str));
        let Some(text) = text else {
            let why = format!("object has no string field {}", text_names.join("/"));
            out.push(unusable(issues, why));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|k| obj.get(*k).and_then(scalar_string))
        };
        out.push(ParsedMessage {
            id,
            text: text.trim().to_string(),
            user: get(&["user", "username", "user_id"]),
            timestamp: get(&["timestamp", "time", "ts"]),
            conversation: get(&["conversation", "conversation_id", "match"]),
            issues,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: TextFormat, data: &[u8]) -> ParseResult {
        parse_messages(format, data, &ParseOptions::default())
    }

    #[test]
    fn txt_skips_blank_lines_and_keeps_line_numbers() {
        let m = parse(TextFormat::Txt, b"hello\n\n  \r\nworld\r\n").expect("parses");
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].id.as_str(), m[0].text.as_str()), ("line-1", "hello"));
        assert_eq!((m[1].id.as_str(), m[1].text.as_str()), ("line-4", "world"));
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
    fn invalid_utf8_is_replaced_and_flagged() {
        let m = parse(TextFormat::Txt, b"ok\nbad \xff\xfe byte\n").expect("parses");
        assert_eq!(m[1].text, "bad \u{fffd}\u{fffd} byte");
        assert!(m[1].issues[0].message.contains("UTF-8"));
        assert!(m[0].issues.is_empty());
    }

    #[test]
    fn long_lines_are_cut_on_char_boundaries_and_flagged() {
        let opts = ParseOptions {
            max_message_bytes: 5,
            ..Default::default()
        };
        let m =
            parse_messages(TextFormat::Txt, "abcdé€xyz\nnext\n".as_bytes(), &opts).expect("parses");
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
        assert_eq!(m[0].text, "b");
        let opts = ParseOptions {
            text_column: Some("When".into()),
            ..Default::default()
        };
        let m = parse_messages(TextFormat::Csv, &b"user,WHEN\na,b\n"[..], &opts).expect("ok");
        assert_eq!(m[0].text, "b");
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
