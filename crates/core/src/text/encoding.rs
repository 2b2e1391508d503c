//! What bytes an upload holds: UTF-8, UTF-16 (with a BOM, or unmistakably without one), a
//! legacy 8-bit encoding line by line, or not text at all. Chat exported from old tools arrives
//! as Windows-1252 or UTF-16; scoring the U+FFFD-riddled result of a blind UTF-8 decode would
//! pass "k\xedll yours\xe9lf" as clean.

use std::io::{self, Read};

use encoding_rs::{Decoder, Encoding, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// What the first bytes of a file say about the whole of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEncoding {
    /// UTF-8, possibly with some lines in a legacy encoding (decided per line).
    Utf8,
    Utf16 {
        encoding: &'static Encoding,
        bom: bool,
    },
}

impl FileEncoding {
    /// A note for the report when the file was transcoded.
    pub fn describe(self) -> Option<String> {
        match self {
            FileEncoding::Utf8 => None,
            FileEncoding::Utf16 { encoding, bom } => Some(format!(
                "the file is {} ({}); it was decoded to UTF-8 before moderation",
                encoding.name(),
                if bom {
                    "byte order mark"
                } else {
                    "detected from its zero bytes"
                }
            )),
        }
    }
}

/// C0 controls that never occur in chat text (tab, line feed, form feed, carriage return and
/// escape do).
fn is_binary_control(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F | 0x7F)
}

/// Decide the encoding from the head of the file, or say why it is not text.
pub fn sniff(head: &[u8]) -> Result<FileEncoding, String> {
    if head.starts_with(&[0xFF, 0xFE]) {
        return Ok(FileEncoding::Utf16 {
            encoding: UTF_16LE,
            bom: true,
        });
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return Ok(FileEncoding::Utf16 {
            encoding: UTF_16BE,
            bom: true,
        });
    }
    let sample = &head[..head.len().min(8192)];
    if let Some(encoding) = utf16_without_bom(sample) {
        return Ok(FileEncoding::Utf16 {
            encoding,
            bom: false,
        });
    }
    // A NUL is a control byte like the others: one stray NUL in a long log is damage to one
    // line (as it is past the sampled head), many are a binary file.
    let controls = sample.iter().filter(|b| is_binary_control(**b)).count();
    // Random bytes carry ~10% controls; a text file none, or a stray one.
    if controls > 0 && controls * 100 > sample.len() {
        return Err(format!(
            "the file looks binary ({controls} control bytes in its first {} bytes), not a text chat log",
            sample.len()
        ));
    }
    Ok(FileEncoding::Utf8)
}

/// ASCII-heavy UTF-16 without a BOM: every other byte is zero, on one side only.
fn utf16_without_bom(sample: &[u8]) -> Option<&'static Encoding> {
    let pairs = sample.len() / 2;
    if pairs < 2 {
        return None;
    }
    let zeros = |parity: usize| {
        sample
            .iter()
            .skip(parity)
            .step_by(2)
            .take(pairs)
            .filter(|b| **b == 0)
            .count()
    };
    let (even, odd) = (zeros(0), zeros(1));
    // Most code units of chat are ASCII (high byte zero); the low byte is never zero.
    if odd * 10 >= pairs * 7 && even * 20 < pairs {
        Some(UTF_16LE)
    } else if even * 10 >= pairs * 7 && odd * 20 < pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// A reader that turns UTF-16 into UTF-8 as it streams (the BOM, if any, is dropped). A file
/// that starts as mostly-ASCII UTF-16 and goes on as 8-bit text (two logs concatenated, or a
/// UTF-16 head put on to hide what follows) is read as 8-bit text from where it changes:
/// decoded as UTF-16, its lines would run together as one line of CJK-looking noise.
pub struct TranscodingReader<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    output: Vec<u8>,
    out_pos: usize,
    finished: bool,
    /// Bytes read from `inner`, and of those decoded as UTF-16, how many and how many zero.
    consumed: u64,
    utf16_bytes: u64,
    utf16_zeros: u64,
    /// Where the file turned to 8-bit text (a byte offset), once it has.
    eight_bit_from: Option<u64>,
}

/// At least this many bytes of 8-bit text in a row end a mostly-ASCII UTF-16 stream.
const EIGHT_BIT_RUN: usize = 32;

/// Where a run of 8-bit text starts in `chunk`: [`EIGHT_BIT_RUN`] or more bytes with no zero,
/// all text, with spaces and mostly ASCII letters (UTF-16 ASCII has a zero every other byte;
/// UTF-16 CJK has no 0x20 bytes to speak of).
fn eight_bit_run(chunk: &[u8]) -> Option<usize> {
    let is_text = |b: u8| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7E | 0x80..);
    let mut i = 0;
    while i < chunk.len() {
        let len = chunk[i..].iter().take_while(|b| is_text(**b)).count();
        if len >= EIGHT_BIT_RUN {
            let run = &chunk[i..i + len];
            let spaces = run.iter().filter(|b| **b == b' ').count();
            let letters = run.iter().filter(|b| b.is_ascii_alphabetic()).count();
            if spaces >= 2 && letters * 10 >= len * 6 {
                return Some(i);
            }
        }
        i += len + 1;
    }
    None
}

impl<R: Read> TranscodingReader<R> {
    pub fn new(inner: R, encoding: &'static Encoding) -> Self {
        TranscodingReader {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            input: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            output: Vec::with_capacity(48 * 1024),
            out_pos: 0,
            finished: false,
            consumed: 0,
            utf16_bytes: 0,
            utf16_zeros: 0,
            eight_bit_from: None,
        }
    }

    /// The byte offset from which the file was read as 8-bit text, if it changed.
    pub fn eight_bit_from(&self) -> Option<u64> {
        self.eight_bit_from
    }

    /// Where in the unread input the stream turns to 8-bit text, if it does here.
    fn turn(&self) -> Option<usize> {
        let chunk = &self.input[self.start..self.end];
        let at = eight_bit_run(chunk)?;
        let zeros = self.utf16_zeros + chunk[..at].iter().filter(|b| **b == 0).count() as u64;
        let bytes = self.utf16_bytes + at as u64;
        (bytes >= 16 && zeros * 3 >= bytes).then_some(at)
    }

    fn refill(&mut self) -> io::Result<()> {
        while self.out_pos >= self.output.len() && !self.finished {
            if self.start == self.end {
                let n = self.inner.read(&mut self.input)?;
                self.start = 0;
                self.end = n;
                self.consumed += n as u64;
            }
            self.output.clear();
            self.out_pos = 0;
            if self.eight_bit_from.is_some() {
                // 8-bit text passes through; its lines are decoded one by one downstream.
                self.output
                    .extend_from_slice(&self.input[self.start..self.end]);
                self.finished = self.start == self.end;
                self.start = self.end;
                continue;
            }
            let turn = self.turn();
            let stop = turn.map_or(self.end, |at| self.start + at);
            let last = self.start == self.end || turn.is_some();
            // Room for the worst case of this chunk (3 UTF-8 bytes per UTF-16 unit, plus a
            // pending surrogate half).
            let room = (self.end - self.start) * 3 / 2 + 16;
            self.output.resize(room, 0);
            let taken = &self.input[self.start..stop];
            self.utf16_zeros += taken.iter().filter(|b| **b == 0).count() as u64;
            self.utf16_bytes += taken.len() as u64;
            let (_, read, written, _) = self.decoder.decode_to_utf8(taken, &mut self.output, last);
            self.start += read;
            self.output.truncate(written);
            if turn.is_some() {
                self.eight_bit_from = Some(self.consumed - (self.end - self.start) as u64);
            } else if last {
                self.finished = true;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for TranscodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.refill()?;
        let avail = &self.output[self.out_pos..];
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// How one line's bytes were turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineDecoding {
    Utf8,
    /// Not UTF-8, but plausible Windows-1252 (a superset of Latin-1) text.
    Windows1252,
    /// Neither: undecodable bytes became U+FFFD, so the text is damaged.
    Replaced,
}

/// Decode one line. `truncated`: the line was cut at a byte bound, so a character split at the
/// very end is the cut, not bad input.
pub fn decode_line(bytes: &[u8], truncated: bool) -> (String, LineDecoding) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), LineDecoding::Utf8),
        Err(e) if truncated && e.error_len().is_none() => (
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned(),
            LineDecoding::Utf8,
        ),
        Err(_) => {
            let (legacy, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
            if plausible_latin(&legacy) {
                (legacy.into_owned(), LineDecoding::Windows1252)
            } else {
                (
                    String::from_utf8_lossy(bytes).into_owned(),
                    LineDecoding::Replaced,
                )
            }
        }
    }
}

/// Punctuation that Windows-1252 text uses outside ASCII.
fn latin_punctuation(c: char) -> bool {
    matches!(
        c,
        '¡' | '¿'
            | '«'
            | '»'
            | '€'
            | '£'
            | '°'
            | '–'
            | '—'
            | '‘'
            | '’'
            | '‚'
            | '“'
            | '”'
            | '„'
            | '…'
            | '•'
            | '·'
            | '\u{a0}'
    )
}

/// Whether a Windows-1252 reading looks like a Latin-script language: every non-ASCII
/// character is a letter inside a word with ASCII letters (or a lone letter such as "à"), or
/// common punctuation. Other encodings (Shift-JIS, KOI8-R) and random bytes read as runs of
/// symbols and stray letters.
fn plausible_latin(text: &str) -> bool {
    let mut ascii_letters = 0usize;
    let mut other_letters = 0usize;
    for word in text.split(|c: char| c.is_whitespace() || c.is_ascii_punctuation()) {
        let mut has_ascii = false;
        let mut non_ascii = 0usize;
        for c in word.chars() {
            if c.is_ascii_alphanumeric() {
                has_ascii = true;
                ascii_letters += 1;
            } else if c.is_ascii() {
                if c.is_control() && c != '\t' {
                    return false;
                }
            } else if c.is_alphabetic() {
                non_ascii += 1;
                other_letters += 1;
            } else if !latin_punctuation(c) {
                return false;
            }
        }
        if non_ascii > 1 && !has_ascii {
            return false;
        }
    }
    other_letters * 3 <= ascii_letters.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        for u in s.encode_utf16() {
            out.extend(u.to_le_bytes());
        }
        out
    }

    fn transcode(bytes: &[u8], enc: &'static Encoding) -> String {
        let mut out = String::new();
        TranscodingReader::new(bytes, enc)
            .read_to_string(&mut out)
            .expect("transcodes");
        out
    }

    #[test]
    fn utf16_with_and_without_bom_is_recognised_and_decoded() {
        let text = "user,message\nana,you idiot 😠\n";
        let bom = utf16le(text, true);
        let enc = sniff(&bom).expect("text");
        assert_eq!(
            enc,
            FileEncoding::Utf16 {
                encoding: UTF_16LE,
                bom: true
            }
        );
        assert_eq!(transcode(&bom, UTF_16LE), text);
        let plain = utf16le(text, false);
        assert!(matches!(
            sniff(&plain).expect("text"),
            FileEncoding::Utf16 { bom: false, .. }
        ));
        assert_eq!(transcode(&plain, UTF_16LE), text);
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert!(matches!(
            sniff(&be).expect("text"),
            FileEncoding::Utf16 { encoding, .. } if encoding == UTF_16BE
        ));
    }

    #[test]
    fn transcoding_survives_tiny_reads_across_surrogate_pairs() {
        let text = "😠".repeat(20_000);
        let bytes = utf16le(&text, true);
        let mut r = TranscodingReader::new(&bytes[..], UTF_16LE);
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            let n = r.read(&mut buf).expect("reads");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8(out).expect("utf-8"), text);
    }

    #[test]
    fn random_bytes_and_nul_bytes_are_binary() {
        // A fixed xorshift stream: the same "random" file every run.
        let mut x: u32 = 0x9E37_79B9;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 255 + 1) as u8 // no NUL
            })
            .collect();
        let e = sniff(&bytes).expect_err("binary");
        assert!(e.contains("binary"), "{e}");
        assert!(sniff(b"PK\x03\x04\x00\x00zip").is_err());
        assert_eq!(sniff(b"plain\ttext\r\n"), Ok(FileEncoding::Utf8));
        // One NUL in the head is judged as it would be later in the file: a damaged line.
        let mut log = "gg wp\n".repeat(400).into_bytes();
        log[10] = 0;
        assert_eq!(sniff(&log), Ok(FileEncoding::Utf8));
    }

    #[test]
    fn latin1_lines_decode_and_garbage_is_marked_damaged() {
        assert_eq!(
            decode_line(b"k\xedll yours\xe9lf", false),
            ("kíll yoursélf".to_string(), LineDecoding::Windows1252)
        );
        assert_eq!(
            decode_line(b"caf\xe9 \x93ok\x94 \xe0 demain", false).1,
            LineDecoding::Windows1252
        );
        let (text, how) = decode_line(b"bad \xff\xfe byte", false);
        assert_eq!(how, LineDecoding::Replaced);
        assert!(text.contains('\u{fffd}'));
        // Shift-JIS reads as symbol soup under Windows-1252.
        assert_eq!(
            decode_line(b"\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd", false).1,
            LineDecoding::Replaced
        );
        assert_eq!(decode_line("ok é".as_bytes(), false).1, LineDecoding::Utf8);
        // A character cut by the byte bound is the bound's doing.
        assert_eq!(
            decode_line(&"é".as_bytes()[..1], true),
            (String::new(), LineDecoding::Utf8)
        );
    }
}
