//! Items on disk. A stage reads, scores and writes a document's items one at a time through a
//! temp file of compact JSON lines, so its memory does not grow with the upload: a million-line
//! chat log costs the same RAM as a ten-line one. A document whose items are spooled
//! serialises to exactly the bytes of the same document held in memory.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeSeq, Serializer};

use crate::error::{Error, Result};
use crate::model::{ErrorEntry, Item};

fn io_err(what: &str, source: std::io::Error) -> Error {
    Error::Io {
        path: format!("temp file of {what}"),
        source,
    }
}

/// Items being written, in order, to a temp file.
pub struct ItemSpool {
    out: BufWriter<tempfile::NamedTempFile>,
    count: u64,
}

impl ItemSpool {
    pub fn new() -> Result<Self> {
        let file = tempfile::Builder::new()
            .prefix("moderation-items-")
            .tempfile()
            .map_err(|e| io_err("items", e))?;
        Ok(ItemSpool {
            out: BufWriter::with_capacity(64 * 1024, file),
            count: 0,
        })
    }

    pub fn push(&mut self, item: &Item) -> Result<()> {
        serde_json::to_writer(&mut self.out, item).map_err(|source| Error::Document {
            key: "spooled items".into(),
            source,
        })?;
        self.out.write_all(b"\n").map_err(|e| io_err("items", e))?;
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Done writing: the items, readable as many times as a stage needs.
    pub fn finish(self) -> Result<SpooledItems> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_err("items", e.into_error()))?;
        Ok(SpooledItems {
            path: Arc::new(file.into_temp_path()),
            count: self.count,
        })
    }
}

/// A document's items in a temp file (deleted when the last handle is dropped). Cheap to clone:
/// clones read the same file.
#[derive(Clone)]
pub struct SpooledItems {
    path: Arc<tempfile::TempPath>,
    count: u64,
}

impl fmt::Debug for SpooledItems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpooledItems({} items)", self.count)
    }
}

impl PartialEq for SpooledItems {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.path, &other.path)
    }
}

impl SpooledItems {
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The items in order, read from the start of the file.
    pub fn iter(&self) -> Result<SpoolIter> {
        let file =
            File::open(self.path.as_ref() as &std::path::Path).map_err(|e| io_err("items", e))?;
        Ok(SpoolIter {
            reader: BufReader::with_capacity(64 * 1024, file),
            line: Vec::new(),
        })
    }

    /// Spool items held in memory.
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a Item>) -> Result<Self> {
        let mut spool = ItemSpool::new()?;
        for item in items {
            spool.push(item)?;
        }
        spool.finish()
    }

    /// Every item in memory: for small documents and tests.
    pub fn to_vec(&self) -> Result<Vec<Item>> {
        self.iter()?.collect()
    }
}

/// Items read back one line at a time: parsing a line from memory is several times faster than
/// parsing from a reader byte by byte.
pub struct SpoolIter {
    reader: BufReader<File>,
    line: Vec<u8>,
}

impl SpoolIter {
    /// The next item as it is spooled (compact JSON, without its newline), unparsed.
    fn next_line(&mut self) -> Result<Option<&[u8]>> {
        use std::io::BufRead as _;
        self.line.clear();
        match self.reader.read_until(b'\n', &mut self.line) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(self.line.strip_suffix(b"\n").unwrap_or(&self.line))),
            Err(e) => Err(io_err("items", e)),
        }
    }
}

impl Iterator for SpoolIter {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = match self.next_line() {
            Ok(line) => line?,
            Err(e) => return Some(Err(e)),
        };
        Some(
            serde_json::from_slice(line).map_err(|source| Error::Document {
                key: "spooled items".into(),
                source,
            }),
        )
    }
}

/// Serialises like `Vec<Item>`, reading the file as it goes.
impl Serialize for SpooledItems {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = usize::try_from(self.count).ok();
        let mut seq = serializer.serialize_seq(len)?;
        for item in self.iter().map_err(ser::Error::custom)? {
            seq.serialize_element(&item.map_err(ser::Error::custom)?)?;
        }
        seq.end()
    }
}

/// Reading a document's `items` array writes each item to a new spool as it is parsed.
impl<'de> Deserialize<'de> for SpooledItems {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ToSpool;
        impl<'de> Visitor<'de> for ToSpool {
            type Value = SpooledItems;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SpooledItems, A::Error> {
                // A spool that cannot be written (a full /tmp) is not a broken document.
                let failed = |e: Error| de::Error::custom(format!("{SPOOL_FAILED}{e}"));
                let mut spool = ItemSpool::new().map_err(failed)?;
                while let Some(item) = seq.next_element::<Item>()? {
                    spool.push(&item).map_err(failed)?;
                }
                spool.finish().map_err(failed)
            }
        }
        d.deserialize_seq(ToSpool)
    }
}

/// Where a document's items go when it is written with [`write_spliced`]: the header is
/// serialised around this slot, and the spooled items are copied into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemsSlot;

/// What the slot serialises as: no header field can contain it, since `"` is escaped inside
/// strings and the key sits at the top level.
const SLOT: &str = "\u{0}spooled items\u{0}";
const SLOT_IN_PRETTY: &[u8] = b"\n  \"items\": \"\\u0000spooled items\\u0000\"";

impl Serialize for ItemsSlot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(SLOT)
    }
}

/// Write a document pretty-printed, byte for byte as `serde_json::to_writer_pretty` would write
/// it with the items in memory: `head` is the document with [`ItemsSlot`] for its items, and
/// each spooled item (compact JSON) is re-indented as text, without being parsed again.
pub fn write_spliced<H: Serialize>(
    head: &H,
    items: &SpooledItems,
    out: &mut impl Write,
) -> Result<()> {
    let text = serde_json::to_vec_pretty(head).map_err(|source| Error::Document {
        key: "document header".into(),
        source,
    })?;
    let at = text
        .windows(SLOT_IN_PRETTY.len())
        .position(|w| w == SLOT_IN_PRETTY)
        .ok_or_else(|| Error::Input("the document has no items slot at the top level".into()))?;
    let value_at = at + b"\n  \"items\": ".len();
    let io = |e| io_err("a document", e);
    out.write_all(&text[..value_at]).map_err(io)?;
    if items.is_empty() {
        out.write_all(b"[]").map_err(io)?;
    } else {
        let mut lines = items.iter()?;
        let mut first = true;
        out.write_all(b"[").map_err(io)?;
        while let Some(compact) = lines.next_line()? {
            out.write_all(if first { b"\n    " } else { b",\n    " })
                .map_err(io)?;
            first = false;
            reindent(compact, 2, out).map_err(io)?;
        }
        out.write_all(b"\n  ]").map_err(io)?;
    }
    out.write_all(&text[at + SLOT_IN_PRETTY.len()..])
        .map_err(io)
}

/// Pretty-print one compact JSON value as serde_json's pretty printer does at `depth` (two
/// spaces a level; `{}` and `[]` stay empty): compact and pretty output differ only in
/// whitespace outside strings.
fn reindent(compact: &[u8], depth: usize, out: &mut impl Write) -> std::io::Result<()> {
    let mut depth = depth;
    let mut i = 0;
    let mut run = 0; // start of the bytes not yet written
    let newline = |out: &mut dyn Write, depth: usize| -> std::io::Result<()> {
        out.write_all(b"\n")?;
        for _ in 0..depth {
            out.write_all(b"  ")?;
        }
        Ok(())
    };
    while i < compact.len() {
        match compact[i] {
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while i < compact.len() && compact[i] != b'"' {
                    i += if compact[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                if compact.get(i + 1) == Some(&close) {
                    i += 2;
                    continue;
                }
                out.write_all(&compact[run..=i])?;
                depth += 1;
                newline(out, depth)?;
                run = i + 1;
            }
            b'}' | b']' => {
                out.write_all(&compact[run..i])?;
                depth = depth.saturating_sub(1);
                newline(out, depth)?;
                run = i;
            }
            b',' => {
                out.write_all(&compact[run..=i])?;
                newline(out, depth)?;
                run = i + 1;
            }
            b':' => {
                out.write_all(&compact[run..=i])?;
                out.write_all(b" ")?;
                run = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.write_all(&compact[run.min(compact.len())..])
}

/// How an error of the spool itself starts when it surfaces through the JSON parser, so the
/// reader can tell it from a broken document (see `stage::read_document`).
pub const SPOOL_FAILED: &str = "spooling the items failed: ";

/// The items of a document that is read only for its other fields: counted, never held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkippedItems(pub u64);

impl<'de> Deserialize<'de> for SkippedItems {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = SkippedItems;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SkippedItems, A::Error> {
                let mut n = 0u64;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(SkippedItems(n))
            }
        }
        d.deserialize_seq(Count)
    }
}

/// The items of a report read only to count them by verdict (a command-line summary line),
/// each parsed and dropped as it streams past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerdictCounts {
    pub violation: u64,
    pub no_violation: u64,
    pub needs_review: u64,
    pub below_threshold: u64,
    /// Items without a verdict.
    pub none: u64,
}

impl<'de> Deserialize<'de> for VerdictCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Verdicted {
            #[serde(default)]
            verdict: Option<crate::model::Verdict>,
        }
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = VerdictCounts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VerdictCounts, A::Error> {
                use crate::model::Verdict;
                let mut c = VerdictCounts::default();
                while let Some(item) = seq.next_element::<Verdicted>()? {
                    *match item.verdict {
                        Some(Verdict::Violation) => &mut c.violation,
                        Some(Verdict::NoViolation) => &mut c.no_violation,
                        Some(Verdict::NeedsReview) => &mut c.needs_review,
                        Some(Verdict::BelowThreshold) => &mut c.below_threshold,
                        None => &mut c.none,
                    } += 1;
                }
                Ok(c)
            }
        }
        d.deserialize_seq(Count)
    }
}

/// Items a renderer or a summary walks in order, wherever they are held.
pub trait ItemSource {
    fn item_count(&self) -> u64;
    /// Call `f` on every item in order; stops at the first error.
    fn each_item(&self, f: &mut dyn FnMut(&Item) -> Result<()>) -> Result<()>;
}

impl ItemSource for Vec<Item> {
    fn item_count(&self) -> u64 {
        self.len() as u64
    }

    fn each_item(&self, f: &mut dyn FnMut(&Item) -> Result<()>) -> Result<()> {
        self.iter().try_for_each(f)
    }
}

impl ItemSource for SpooledItems {
    fn item_count(&self) -> u64 {
        self.count
    }

    fn each_item(&self, f: &mut dyn FnMut(&Item) -> Result<()>) -> Result<()> {
        for item in self.iter()? {
            f(&item?)?;
        }
        Ok(())
    }
}

/// Error entries past this many are counted, not listed: one failing service must not make a
/// document grow with every line of the upload. Each item's `review_reason` still says why.
pub const MAX_ERRORS_LISTED: usize = 1_000;

/// A stage's error entries, listed up to [`MAX_ERRORS_LISTED`] and counted past it.
#[derive(Debug)]
pub struct ErrorLog {
    stage: &'static str,
    entries: Vec<ErrorEntry>,
    unlisted: u64,
    /// The stages of the entries not listed (a handful at most).
    unlisted_stages: Vec<String>,
}

impl ErrorLog {
    pub fn new(stage: &'static str) -> Self {
        ErrorLog {
            stage,
            entries: Vec::new(),
            unlisted: 0,
            unlisted_stages: Vec::new(),
        }
    }

    pub fn push(&mut self, e: ErrorEntry) {
        if self.entries.len() < MAX_ERRORS_LISTED {
            self.entries.push(e);
        } else {
            self.unlisted += 1;
            if !self.unlisted_stages.contains(&e.stage) {
                self.unlisted_stages.push(e.stage);
            }
        }
    }

    pub fn extend(&mut self, errors: impl IntoIterator<Item = ErrorEntry>) {
        for e in errors {
            self.push(e);
        }
    }

    /// Whether any entry (listed or not) came from `stage`.
    pub fn any_from(&self, stage: &str) -> bool {
        self.entries.iter().any(|e| e.stage == stage)
            || self.unlisted_stages.iter().any(|s| s == stage)
    }

    /// The entries, with one more that counts those not listed.
    pub fn into_entries(mut self) -> Vec<ErrorEntry> {
        if self.unlisted > 0 {
            self.entries.push(ErrorEntry::new(
                self.stage,
                None,
                format!(
                    "{} more errors are not listed (the first {MAX_ERRORS_LISTED} are); every \
                     affected item is held for review with its reason",
                    self.unlisted
                ),
            ));
        }
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{StageDocument, Verdict};

    fn doc(n: usize) -> StageDocument {
        let items = (0..n)
            .map(|i| {
                let mut item = Item::new(format!("line-{i}"), format!("message \"{i}\"\n<b>"));
                item.toxicity = i as f64 / 10.0;
                item.verdict = (i % 2 == 0).then_some(Verdict::BelowThreshold);
                item
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema": "moderation.screened/v1", "id": "x", "created_at": "2026-12-06T00:00:00Z",
            "source": {"uri": "s3://b/incoming/text/x.txt", "kind": "text"},
            "trigger": {"type": "upload"}, "status": "complete", "threshold": 0.5,
            "items": [], "errors": [], "usage": {"comprehend_units": 3, "transcribe_seconds": 0.0,
            "llm_calls": 0, "llm_input_tokens": 0, "llm_output_tokens": 0}
        }))
        .map(|d: StageDocument| StageDocument { items, ..d })
        .expect("document")
    }

    #[test]
    fn a_spooled_document_is_the_same_bytes_as_one_in_memory() {
        for n in [0, 1, 7] {
            let d = doc(n);
            let pretty = serde_json::to_vec_pretty(&d).expect("serialises");
            let read: StageDocument<SpooledItems> =
                serde_json::from_slice(&pretty).expect("reads spooled");
            assert_eq!(read.items.len(), n as u64);
            assert_eq!(read.items.to_vec().expect("items"), d.items);
            assert_eq!(serde_json::to_vec_pretty(&read).expect("writes"), pretty);
            let compact = serde_json::to_vec(&read).expect("writes");
            assert_eq!(compact, serde_json::to_vec(&d).expect("writes"));
        }
    }

    #[test]
    fn a_spliced_document_is_the_same_bytes_as_serde_json_writes() {
        for n in [0, 1, 7] {
            let mut d = doc(n);
            if let Some(item) = d.items.first_mut() {
                // Nested objects and arrays, empty ones, escapes and odd numbers.
                item.rule_hits.push(crate::model::RuleHit {
                    rule: "insult:x".into(),
                    matched: "a \"quoted\" {[,:]} \\ \u{1F600}".into(),
                });
                item.toxicity = 1e-7;
                item.evaluation = Some(crate::model::Evaluation::default());
            }
            d.errors
                .push(ErrorEntry::new("parse", None, "items: \"x\""));
            let pretty = serde_json::to_vec_pretty(&d).expect("serialises");
            let items = SpooledItems::from_items(&d.items).expect("spools");
            let mut out = Vec::new();
            write_spliced(&d.clone().with_items(ItemsSlot), &items, &mut out).expect("writes");
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                String::from_utf8(pretty).expect("utf-8")
            );
        }
    }

    #[test]
    fn reindenting_compact_json_gives_serde_jsons_pretty_form() {
        for v in [
            serde_json::json!({"a": [], "b": {}, "c": [[], {}, [1, [2, {"d": null}]]]}),
            serde_json::json!([{"k": "v,:{}[]\"\\"}, -0.5, 1e300, true, "\u{7}"]),
            serde_json::json!({}),
            serde_json::json!("plain"),
        ] {
            let compact = serde_json::to_vec(&v).expect("compact");
            let mut out = Vec::new();
            reindent(&compact, 0, &mut out).expect("reindents");
            assert_eq!(out, serde_json::to_vec_pretty(&v).expect("pretty"), "{v}");
        }
    }

    #[test]
    fn skipped_items_are_counted_and_the_rest_is_read() {
        let d = doc(5);
        let bytes = serde_json::to_vec(&d).expect("serialises");
        let head: StageDocument<SkippedItems> = serde_json::from_slice(&bytes).expect("reads");
        assert_eq!(head.items, SkippedItems(5));
        assert_eq!(head.usage.comprehend_units, 3);
    }

    #[test]
    fn a_spool_reads_back_as_often_as_needed() {
        let d = doc(3);
        let spool = SpooledItems::from_items(&d.items).expect("spools");
        for _ in 0..2 {
            let ids: Vec<String> = spool
                .iter()
                .expect("opens")
                .map(|i| i.expect("item").id)
                .collect();
            assert_eq!(ids, ["line-0", "line-1", "line-2"]);
        }
        let mut seen = 0;
        spool
            .each_item(&mut |_| {
                seen += 1;
                Ok(())
            })
            .expect("walks");
        assert_eq!(seen, 3);
    }

    #[test]
    fn errors_past_the_cap_are_counted_in_one_entry() {
        let mut log = ErrorLog::new("screen-text");
        for i in 0..MAX_ERRORS_LISTED + 5 {
            log.push(ErrorEntry::new(
                "screen-text",
                Some(&format!("line-{i}")),
                "x",
            ));
        }
        assert!(log.any_from("screen-text") && !log.any_from("parse"));
        let mut notes = ErrorLog::new("screen-text");
        for _ in 0..MAX_ERRORS_LISTED + 5 {
            notes.push(ErrorEntry::new("parse", None, "decoded as Windows-1252"));
        }
        // Notes about the file are not the stage's own failures, listed or not.
        assert!(notes.any_from("parse") && !notes.any_from("screen-text"));
        let entries = log.into_entries();
        assert_eq!(entries.len(), MAX_ERRORS_LISTED + 1);
        let last = entries.last().expect("summary");
        assert!(
            last.message.starts_with("5 more errors"),
            "{}",
            last.message
        );
        assert_eq!(last.item, None);
    }
}
