//! CSV chat logs. Records are found by the csv crate's own quoting rules: a quoted field may
//! hold commas and line breaks. Only a quote that is truly unbalanced (still open at the end
//! of the file or after [`MAX_RECORD_LINES`] lines, or closed by a quote that more text
//! follows) falls back to reading its lines again one by one, the opening row held for a
//! person. A row with more fields than the header keeps its whole text: nothing after an
//! unquoted comma is ever dropped.

use std::collections::VecDeque;
use std::io::BufRead;

use ::csv::ByteRecord;

use super::{
    decode, find_column, is_content, join_texts, read_bounded_line, text_names, truncation_issue,
    ItemIssue, MessageSink, ParseOptions, ParsedMessage, Skipped, AGE_FIELDS, CONVERSATION_FIELDS,
    TIME_FIELDS, USER_FIELDS,
};

/// A quote still open after this many lines is taken for an unbalanced one.
const MAX_RECORD_LINES: usize = 200;
/// A record spanning more lines than this is read whole but held for a person.
const TALL_RECORD_LINES: u64 = 20;

pub(super) fn parse_csv<R: BufRead>(
    r: R,
    opts: &ParseOptions,
    skipped: &mut Skipped,
    emit: &mut MessageSink<'_>,
) -> Result<(), String> {
    let mut records = Records::new(r, opts.max_message_bytes);
    let header = records
        .next_record()?
        .ok_or_else(|| "the CSV file has no header row".to_string())?;
    let layout = CsvLayout::from_header(&parse_record(&header.bytes), opts)?;
    while let Some(scanned) = records.next_record()? {
        match layout.scanned_message(&scanned, opts) {
            Some(msg) => emit(msg)?,
            None => skipped.add(format!("line-{}", scanned.first)),
        }
    }
    Ok(())
}

/// Where a record's quote stands, byte by byte, as the csv crate reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Quote {
    #[default]
    FieldStart,
    /// An unquoted field: a quote here is a plain character.
    InField,
    Quoted,
    /// A quote inside a quoted field: doubled it is a literal quote, else it closes the field.
    Closing,
}

/// The quote state over the lines of one record.
#[derive(Debug, Default)]
struct Quotes {
    state: Quote,
    /// A closing quote was followed by more text, so the quote closed where none was meant.
    malformed: bool,
}

impl Quotes {
    fn feed(&mut self, bytes: &[u8]) {
        use Quote::*;
        for &b in bytes {
            self.state = match (self.state, b) {
                (FieldStart, b'"') => Quoted,
                (FieldStart | InField | Closing, b',') => FieldStart,
                (FieldStart | InField, _) => InField,
                (Quoted, b'"') => Closing,
                (Quoted, _) => Quoted,
                (Closing, b'"') => Quoted,
                (Closing, _) => {
                    self.malformed = true;
                    InField
                }
            };
        }
    }

    /// At a line end: whether the record goes on (the line break is inside a quoted field).
    fn line_end(&mut self) -> bool {
        if self.state == Quote::Quoted {
            return true;
        }
        self.state = Quote::FieldStart;
        false
    }
}

/// One physical line.
struct Line {
    no: u64,
    bytes: Vec<u8>,
    truncated: bool,
}

/// How a record came out of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Whole,
    /// The opening line of an unbalanced quote: the lines after it, through `through`, are
    /// read again as records of their own.
    Unbalanced {
        through: u64,
    },
    /// A record read again after the unbalanced quote that opened on line `opening`.
    Recovered {
        opening: u64,
    },
}

struct Scanned {
    first: u64,
    last: u64,
    /// The record's lines joined by `\n`.
    bytes: Vec<u8>,
    truncated: bool,
    shape: Shape,
}

/// Physical lines grouped into records, in bounded memory (each line is bounded, and a record
/// of more than [`MAX_RECORD_LINES`] is an unbalanced quote).
struct Records<R> {
    reader: R,
    max_line: usize,
    read: u64,
    /// Lines to read again after an unbalanced quote.
    pending: VecDeque<Line>,
    /// The line the last unbalanced quote opened on, and the last line read again for it.
    recovering: Option<(u64, u64)>,
}

impl<R: BufRead> Records<R> {
    fn new(reader: R, max_line: usize) -> Self {
        Records {
            reader,
            max_line,
            read: 0,
            pending: VecDeque::new(),
            recovering: None,
        }
    }

    fn line(&mut self) -> Result<Option<Line>, String> {
        if let Some(line) = self.pending.pop_front() {
            return Ok(Some(line));
        }
        let Some(line) = read_bounded_line(&mut self.reader, self.max_line)? else {
            return Ok(None);
        };
        self.read += 1;
        Ok(Some(Line {
            no: self.read,
            truncated: line.truncated_at.is_some(),
            bytes: line.bytes,
        }))
    }

    fn next_record(&mut self) -> Result<Option<Scanned>, String> {
        let first = loop {
            match self.line()? {
                None => return Ok(None),
                // Blank lines between records are no records (as the csv crate reads them).
                Some(l) if l.bytes.iter().all(u8::is_ascii_whitespace) => continue,
                Some(l) => break l,
            }
        };
        let mut quotes = Quotes::default();
        quotes.feed(&first.bytes);
        let mut lines = vec![first];
        while !lines[lines.len() - 1].truncated && quotes.line_end() {
            if lines.len() >= MAX_RECORD_LINES {
                return Ok(Some(self.unbalanced(lines)));
            }
            match self.line()? {
                None => return Ok(Some(self.unbalanced(lines))),
                Some(line) => {
                    quotes.feed(&line.bytes);
                    lines.push(line);
                }
            }
        }
        if quotes.malformed && lines.len() > 1 {
            return Ok(Some(self.unbalanced(lines)));
        }
        let (first, last) = (lines[0].no, lines[lines.len() - 1].no);
        let shape = match self.recovering {
            Some((opening, through)) if first <= through => Shape::Recovered { opening },
            _ => Shape::Whole,
        };
        Ok(Some(Scanned {
            first,
            last,
            truncated: lines.iter().any(|l| l.truncated),
            bytes: lines
                .into_iter()
                .map(|l| l.bytes)
                .collect::<Vec<_>>()
                .join(&b'\n'),
            shape,
        }))
    }

    /// The opening line alone; the lines after it go back to be read from a record start.
    fn unbalanced(&mut self, mut lines: Vec<Line>) -> Scanned {
        let first = lines.remove(0);
        let through = lines.last().map_or(first.no, |l| l.no);
        for line in lines.into_iter().rev() {
            self.pending.push_front(line);
        }
        if through > first.no {
            self.recovering = Some((first.no, through));
        }
        Scanned {
            first: first.no,
            last: first.no,
            bytes: first.bytes,
            truncated: first.truncated,
            shape: Shape::Unbalanced { through },
        }
    }
}

/// A record's bytes as fields, by the csv crate's rules (an open quote runs to the end).
fn parse_record(bytes: &[u8]) -> ByteRecord {
    let mut rdr = ::csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(bytes);
    let mut record = ByteRecord::new();
    match rdr.read_byte_record(&mut record) {
        Ok(true) => record,
        _ => ByteRecord::from(vec![bytes.to_vec()]),
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
    age_col: Option<usize>,
}

impl CsvLayout {
    fn from_header(header: &ByteRecord, opts: &ParseOptions) -> Result<Self, String> {
        let headers: Vec<String> = header
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
        Ok(CsvLayout {
            user_col: find_column(&headers, USER_FIELDS),
            ts_col: find_column(&headers, TIME_FIELDS),
            conv_col: find_column(&headers, CONVERSATION_FIELDS),
            age_col: find_column(&headers, AGE_FIELDS),
            headers,
            text_cols,
        })
    }

    /// A record as found in the file, with what its shape says about it.
    fn scanned_message(&self, scanned: &Scanned, opts: &ParseOptions) -> Option<ParsedMessage> {
        let id = format!("line-{}", scanned.first);
        let (record, folded) = self.fold_extra_fields(parse_record(&scanned.bytes));
        let mut msg = match (self.message(&record, id.clone(), opts), scanned.shape) {
            (Some(msg), _) => msg,
            (None, Shape::Whole | Shape::Recovered { .. }) => return None,
            // The opening row of an unbalanced quote is shown even when it holds no text.
            (None, Shape::Unbalanced { .. }) => ParsedMessage {
                id,
                ..Default::default()
            },
        };
        msg.issues.extend(folded);
        if scanned.truncated {
            msg.issues.push(truncation_issue(opts.max_message_bytes));
        }
        let spanned = scanned.last - scanned.first + 1;
        let (first, last) = (scanned.first, scanned.last);
        match scanned.shape {
            Shape::Whole if spanned > TALL_RECORD_LINES => msg.issues.push(ItemIssue {
                message: format!(
                    "CSV record spans {spanned} lines ({first}-{last}); an unbalanced quote may \
                     have merged rows"
                ),
                needs_review: true,
            }),
            Shape::Whole => {}
            Shape::Unbalanced { through } => msg.issues.push(ItemIssue {
                message: unbalanced_note(&scanned.bytes, first, through),
                needs_review: true,
            }),
            Shape::Recovered { opening } => msg.issues.push(ItemIssue {
                message: format!(
                    "read as a row of its own after the unbalanced quote of line {opening}"
                ),
                needs_review: false,
            }),
        }
        Some(msg)
    }

    /// A row with more fields than the header had commas in its message that were not
    /// quoted: the extra fields are joined back into the first text column, so the rest of
    /// the message is scored and the columns after it still line up. Empty trailing fields
    /// (a spreadsheet's stray commas) are dropped.
    fn fold_extra_fields(&self, record: ByteRecord) -> (ByteRecord, Option<ItemIssue>) {
        let mut fields: Vec<&[u8]> = record.iter().collect();
        while fields.len() > self.headers.len() && fields.last().is_some_and(|f| f.is_empty()) {
            fields.pop();
        }
        let extra = fields.len().saturating_sub(self.headers.len());
        if extra == 0 {
            return (ByteRecord::from(fields), None);
        }
        let col = self.text_cols[0];
        let joined = fields[col..=col + extra].join(&b',');
        let count = fields.len();
        let mut out: Vec<&[u8]> = fields[..col].to_vec();
        out.push(&joined);
        out.extend_from_slice(&fields[col + extra + 1..]);
        let note = ItemIssue {
            message: format!(
                "row has {count} fields for {} columns: its unquoted commas were read as part \
                 of the {} text",
                self.headers.len(),
                self.headers[col]
            ),
            needs_review: false,
        };
        (ByteRecord::from(out), Some(note))
    }

    /// A message from one record; `None` for a row with nothing in it worth reading.
    fn message(
        &self,
        record: &ByteRecord,
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
            // A short row or content outside the known columns (a sentence in the user
            // column too) is shown as written; a row of only a user and a time is an empty
            // message.
            let other_content = record.iter().enumerate().any(|(i, raw)| {
                let header = self.headers.get(i).map_or("", String::as_str);
                !self.text_cols.contains(&i) && is_content(header, decode(raw, false).0.trim())
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
            age_band: field(self.age_col),
            issues,
        })
    }
}

/// What a moderator is told about the opening row of an unbalanced quote: the line as written
/// (the first 200 characters) and the lines read again after it.
fn unbalanced_note(bytes: &[u8], first: u64, through: u64) -> String {
    let raw = decode(bytes, false).0;
    let shown: String = raw.chars().take(200).collect();
    let more = if shown.len() < raw.len() { "…" } else { "" };
    let after = if through > first {
        format!(
            "lines {}-{through} after it were read as rows of their own",
            first + 1
        )
    } else {
        "it runs to the end of the file".to_string()
    };
    format!(
        "unbalanced quote on line {first} (written as {shown:?}{more}); {after}; check who \
         wrote what"
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{needs_review, parse};
    use super::super::{parse_messages, ParseOptions, ParsedMessage, TextFormat};

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

    fn rows(m: &[ParsedMessage]) -> Vec<(&str, Option<&str>, &str)> {
        m.iter()
            .map(|m| (m.id.as_str(), m.user.as_deref(), m.text.as_str()))
            .collect()
    }

    #[test]
    fn a_quoted_newline_before_a_comma_is_one_message_by_its_author() {
        let data = "user,message\n\
                    bob,\"hey\nI am going to kill you and your whole family tonight, ok\"\n\
                    ana,gg\n";
        let m = parse(TextFormat::Csv, data.as_bytes()).expect("parses");
        assert_eq!(
            rows(&m),
            [
                (
                    "line-2",
                    Some("bob"),
                    "hey\nI am going to kill you and your whole family tonight, ok"
                ),
                ("line-4", Some("ana"), "gg"),
            ]
        );
        assert!(m.iter().all(|m| m.issues.is_empty()), "{m:?}");
        // Escaped quotes and commas inside a multi-line field are the csv crate's rules too.
        let m = parse(
            TextFormat::Csv,
            b"user,message\nbo,\"she said \"\"hi\"\",\nthen, left\"\n",
        )
        .expect("parses");
        assert_eq!(m[0].text, "she said \"hi\",\nthen, left");
        assert!(m[0].issues.is_empty());
    }

    #[test]
    fn a_quote_closed_by_a_later_row_is_unbalanced_and_each_row_read_again() {
        let data = "user,message\nana,\"oops\nbo,you are trash\ncy,\"gg\" ok\ndee,bye\n";
        let m = parse(TextFormat::Csv, data.as_bytes()).expect("parses");
        assert_eq!(
            rows(&m),
            [
                ("line-2", Some("ana"), "oops"),
                ("line-3", Some("bo"), "you are trash"),
                ("line-4", Some("cy"), "gg ok"),
                ("line-5", Some("dee"), "bye"),
            ]
        );
        assert!(needs_review(&m[0]));
        assert!(
            m[0].issues[0].message.contains("ana,\\\"oops"),
            "{:?}",
            m[0].issues
        );
        assert!(
            m[1].issues[0].message.contains("line 2"),
            "{:?}",
            m[1].issues
        );
        assert!(!needs_review(&m[1]) && m[3].issues.is_empty());
        // A quote open at the last line is held with what it holds.
        let m = parse(TextFormat::Csv, b"user,message\nana,\"kill you").expect("parses");
        assert_eq!(m[0].text, "kill you");
        assert!(needs_review(&m[0]));
    }

    #[test]
    fn unquoted_commas_keep_the_whole_message() {
        let m = parse(
            TextFormat::Csv,
            b"user,message\nbob,hello everyone, kill yourself you worthless idiot\n",
        )
        .expect("parses");
        assert_eq!(
            m[0].text,
            "hello everyone, kill yourself you worthless idiot"
        );
        assert_eq!(m[0].user.as_deref(), Some("bob"));
        assert!(m[0].issues[0].message.contains("3 fields for 2 columns"));
        // One column, a header with a space, and columns after the message still line up.
        let m = parse(TextFormat::Csv, b"message\nhi, you idiot, really\n").expect("parses");
        assert_eq!(m[0].text, "hi, you idiot, really");
        let m = parse(TextFormat::Csv, b"user, message\nbo, a, b\n").expect("parses");
        assert_eq!(m[0].text, "a, b");
        let m = parse(
            TextFormat::Csv,
            b"message,user,timestamp\nwell, go die,cy,00:01\n",
        )
        .expect("parses");
        assert_eq!(
            (
                m[0].text.as_str(),
                m[0].user.as_deref(),
                m[0].timestamp.as_deref()
            ),
            ("well, go die", Some("cy"), Some("00:01"))
        );
        // A spreadsheet's trailing empty fields are no commas in the message.
        let m = parse(TextFormat::Csv, b"user,message\nbo,gg,,\n").expect("parses");
        assert_eq!(m[0].text, "gg");
        assert!(m[0].issues.is_empty());
    }

    #[test]
    fn text_only_in_the_user_or_conversation_column_is_held_not_dropped() {
        let data = "user,message,conversation\n\
                    i will kill you tonight,,m-1\n\
                    bo,,kill yourself loser\n\
                    cy,,m-2\n";
        let m = parse(TextFormat::Csv, data.as_bytes()).expect("parses");
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].text.contains("i will kill you tonight") && needs_review(&m[0]));
        assert!(m[1].text.contains("kill yourself loser") && needs_review(&m[1]));
    }
}
