//! A whole chat log through the chunk screening: the parser on a blocking thread hands over
//! chunks of messages, several are scored at once, and past the invocation's time limit no new
//! chunk is taken.

use std::future::Future as _;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;

use crate::chain::delivery::TimeLimit;
use crate::error::{Error, Result};
use crate::model::{Item, ObjectRef, SourceKind};
use crate::text::parse::{parse_messages_noting, ParseOptions, ParsedMessage, TextFormat};

use crate::stages::conversation::Tracker;

use super::chunk::screen_chunk;
use super::document::ScreenedWriter;
use super::state::UploadState;
use super::timed::{CallClock, TimedServices};
use super::{ScreenConfig, ScreenDeps};

/// Messages scored together: at most this many, or this many bytes of text. Small enough that
/// the chunks in flight cost a few MiB, large enough to fill the detector's batches.
const CHUNK_MESSAGES: usize = 500;
const CHUNK_BYTES: usize = 256 * 1024;

/// Chunks scored at once: a chunk of short messages makes about 50 detector calls, and a
/// chunk's last calls leave slots idle, so twice the calls allowed in flight are kept ready
/// (two chunks at least; 128 calls in flight need six).
fn chunks_in_flight(max_concurrency: usize) -> usize {
    (max_concurrency * 2).div_ceil(CHUNK_MESSAGES / 10).max(2)
}

/// What has been screened of an upload, to say where a cut-off one stopped.
#[derive(Default)]
pub(super) struct Screened {
    messages: u64,
    last: Option<String>,
}

impl Screened {
    fn add(&mut self, chunk: &[Item]) {
        self.messages += chunk.len() as u64;
        if let Some(m) = chunk.last() {
            self.last = Some(m.id.clone());
        }
    }

    /// Why the rest of the file is not screened: the invocation's time is nearly up.
    fn out_of_time(&self) -> String {
        let through = match &self.last {
            Some(id) => format!(", through message {id}"),
            None => String::new(),
        };
        format!(
            "stopped at the function's time limit after screening {} messages{through}; the \
             rest of the file was not screened. Split the upload into smaller files, or raise \
             the Comprehend quota (COMPREHEND_TPS) so that it is screened in time",
            self.messages
        )
    }
}

/// The chunk the parser is filling.
#[derive(Default)]
struct Chunk {
    messages: Vec<ParsedMessage>,
    bytes: usize,
}

impl Chunk {
    /// Add a message; the chunk's messages when it is full.
    fn add(&mut self, m: ParsedMessage) -> Option<Vec<ParsedMessage>> {
        self.bytes += m.text.len();
        self.messages.push(m);
        if self.messages.len() < CHUNK_MESSAGES && self.bytes < CHUNK_BYTES {
            return None;
        }
        self.bytes = 0;
        Some(std::mem::take(&mut self.messages))
    }
}

/// What the parser says when it is done: notes about the file, and whether it was read to its
/// end (why not, otherwise).
type ParserEnd = (Vec<String>, std::result::Result<(), String>);

/// Parse the log on a blocking thread, handing over full chunks through `tx`. Messages before
/// a failure part-way through the file are handed over too.
fn spawn_parser(
    format: TextFormat,
    reader: Box<dyn Read + Send>,
    opts: ParseOptions,
    tx: mpsc::Sender<Vec<ParsedMessage>>,
) -> tokio::task::JoinHandle<ParserEnd> {
    tokio::task::spawn_blocking(move || {
        let mut chunk = Chunk::default();
        let mut notes = Vec::new();
        let parsed = parse_messages_noting(format, reader, &opts, &mut notes, &mut |m| match chunk
            .add(m)
        {
            Some(full) => tx
                .blocking_send(full)
                .map_err(|_| "screening stopped".to_string()),
            None => Ok(()),
        });
        if !chunk.messages.is_empty() {
            let _ = tx.blocking_send(chunk.messages);
        }
        (notes, parsed)
    })
}

/// The parser's chunks until the time limit's `new_work`. Past it no chunk is taken: those in
/// flight finish (their service calls end by `calls` at the latest) and the rest of the file is
/// not read. A timer wakes the stream then, even while the parser is stalled on a slow read;
/// `cut` says whether anything was left unread.
fn chunks_until<'c>(
    mut rx: mpsc::Receiver<Vec<ParsedMessage>>,
    time_limit: Option<TimeLimit>,
    cut: &'c AtomicBool,
) -> impl Stream<Item = Vec<ParsedMessage>> + 'c {
    let mut stop = time_limit.map(|t| Box::pin(tokio::time::sleep_until(t.new_work.into())));
    stream::poll_fn(move |cx| {
        if let Some(stop) = stop.as_mut() {
            if stop.as_mut().poll(cx).is_ready() {
                // A parser that has finished and handed over everything left nothing unread.
                let finished =
                    matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected));
                cut.store(!finished, Ordering::Relaxed);
                return std::task::Poll::Ready(None);
            }
        }
        rx.poll_recv(cx)
    })
}

/// What screening a chat log came to.
pub(super) struct UploadRun {
    pub out: ScreenedWriter,
    pub notes: Vec<String>,
    /// Whether the parser read the file to its end (why not, otherwise).
    parsed: std::result::Result<(), String>,
    done: Screened,
    /// The time limit stopped the screening with some of the file unread.
    cut: bool,
    /// A service call was given up at the time limit.
    abandoned: bool,
}

/// Screen the whole log: the parser's chunks, several at once, into a [`ScreenedWriter`].
pub(super) async fn screen_upload(
    format: TextFormat,
    reader: Box<dyn Read + Send>,
    deps: &ScreenDeps<'_>,
    cfg: &ScreenConfig,
) -> Result<UploadRun> {
    let mut out =
        ScreenedWriter::new(cfg.max_listed_below, Tracker::new(cfg.conversation.clone()))?;
    let state = UploadState::new(cfg.max_translated_chars);
    let clock = CallClock::new(deps.time_limit.map(|t| t.calls));
    let services = TimedServices::new(deps, cfg.max_concurrency, &clock);
    let chunk_deps = services.deps(deps);
    let threshold = cfg.thresholds.for_kind(SourceKind::Text);
    // Several chunks are scored at once, enough to keep `max_concurrency` calls busy and to
    // hide each chunk's slowest call, while the semaphore holds the calls in flight to
    // `max_concurrency`.
    let in_flight = chunks_in_flight(cfg.max_concurrency);
    let (tx, rx) = mpsc::channel::<Vec<ParsedMessage>>(in_flight);
    let parser = spawn_parser(format, reader, cfg.parse.clone(), tx);
    let cut = AtomicBool::new(false);
    let mut screened = chunks_until(rx, deps.time_limit, &cut)
        .map(|chunk| screen_chunk(chunk, &chunk_deps, threshold, cfg.max_concurrency, &state))
        .buffered(in_flight);
    let mut done = Screened::default();
    while let Some((items, errors, usage)) = screened.next().await {
        let n = items.len() as u64;
        done.add(&items);
        out.add(items, errors, &usage)?;
        if let Some(p) = deps.progress {
            p.screened(n);
        }
    }
    // Dropping the stream drops the receiver, so a parser waiting to hand over a chunk stops.
    drop(screened);
    let (notes, parsed) = parser
        .await
        .map_err(|e| Error::Input(format!("parser task failed: {e}")))?;
    Ok(UploadRun {
        out,
        notes,
        parsed,
        done,
        cut: cut.load(Ordering::Relaxed),
        abandoned: clock.abandoned(),
    })
}

impl UploadRun {
    /// Why the document is failed (`None`: it is not), or [`Error::OutOfTime`] when a cut-off
    /// upload is better left to a redelivery: nothing was screened, or it started late in a
    /// delivery of several (`fresh` false), and a redelivery gives it the whole time.
    pub(super) fn failure(&mut self, obj: &ObjectRef, fresh: bool) -> Result<Option<String>> {
        if self.cut && (self.done.messages == 0 || !fresh) {
            return Err(Error::OutOfTime(format!(
                "{} was not screened to its end in this invocation",
                obj.uri()
            )));
        }
        let parsed = if self.cut {
            crate::chain::telemetry::cut_short(
                &obj.key,
                "the rest of the upload is not screened",
                Some(self.done.messages),
            );
            Err(self.done.out_of_time())
        } else {
            if self.abandoned {
                crate::chain::telemetry::cut_short(
                    &obj.key,
                    "calls still waiting were abandoned; their messages need review",
                    None,
                );
            }
            std::mem::replace(&mut self.parsed, Ok(()))
        };
        Ok(parsed.err().map(|reason| format!("{}: {reason}", obj.key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> ParsedMessage {
        ParsedMessage {
            text: text.into(),
            ..ParsedMessage::default()
        }
    }

    #[test]
    fn a_chunk_is_full_at_its_message_count_or_its_bytes() {
        let mut chunk = Chunk::default();
        for _ in 0..CHUNK_MESSAGES - 1 {
            assert!(chunk.add(message("gg")).is_none());
        }
        assert_eq!(
            chunk.add(message("gg")).map(|c| c.len()),
            Some(CHUNK_MESSAGES)
        );
        assert!(chunk.messages.is_empty());
        let long = "x".repeat(CHUNK_BYTES);
        assert_eq!(chunk.add(message(&long)).map(|c| c.len()), Some(1));
    }

    #[test]
    fn enough_chunks_are_in_flight_to_keep_the_calls_busy() {
        assert_eq!(chunks_in_flight(1), 2);
        assert_eq!(chunks_in_flight(50), 2);
        assert_eq!(chunks_in_flight(128), 6);
    }

    fn run(cut: bool, messages: u64, parsed: std::result::Result<(), String>) -> UploadRun {
        UploadRun {
            out: ScreenedWriter::new(10, Tracker::new(Default::default())).expect("spool"),
            notes: Vec::new(),
            parsed,
            done: Screened {
                messages,
                last: (messages > 0).then(|| format!("m{messages}")),
            },
            cut,
            abandoned: false,
        }
    }

    #[test]
    fn a_cut_upload_is_failed_where_it_stopped_or_left_for_a_redelivery() {
        let obj = ObjectRef::new("b", "incoming/text/a.txt");
        let why = run(true, 7, Ok(()))
            .failure(&obj, true)
            .expect("reported")
            .expect("failed");
        assert!(why.starts_with("incoming/text/a.txt: stopped at the function's time limit"));
        assert!(
            why.contains("after screening 7 messages, through message m7"),
            "{why}"
        );
        for (messages, fresh) in [(0, true), (7, false)] {
            let r = run(true, messages, Ok(())).failure(&obj, fresh);
            assert!(matches!(r, Err(Error::OutOfTime(_))), "{messages} {fresh}");
        }
        let read_error = run(false, 3, Err("line 4: bad UTF-8".into())).failure(&obj, false);
        assert_eq!(
            read_error.expect("reported").as_deref(),
            Some("incoming/text/a.txt: line 4: bad UTF-8")
        );
        assert_eq!(run(false, 3, Ok(())).failure(&obj, true).expect("ok"), None);
    }
}
