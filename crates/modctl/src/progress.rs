//! Progress on a terminal: the offline embedding detector scores tens to hundreds of messages a
//! second and Whisper takes a while per minute of audio, so a large chat log or a long
//! recording runs for minutes. On a terminal, one bar per source on stderr: messages scored
//! against the count expected from the file (rate, ETA), then the items judged. Off a terminal,
//! or with `--quiet`, nothing is drawn, so piped or scripted output is unchanged.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use moderation_core::ports::{
    JudgeRequest, Judgement, PolicyJudge, SegmentLimits, ToxicityDetector, ToxicityScore,
};

/// Counts what the detector scored and the judge judged, and draws the current source's bar.
pub struct Progress {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
    judged: AtomicU64,
    /// A chat log's bar counts messages as screening reports them; audio and images count the
    /// segments sent to the detector.
    counts_messages: AtomicBool,
    /// Drawn nowhere (tests).
    hidden: bool,
}

impl Progress {
    /// Drawn only when stderr is a terminal and not `quiet`.
    pub fn new(quiet: bool) -> Arc<Self> {
        Arc::new(Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            judged: AtomicU64::new(0),
            counts_messages: AtomicBool::new(false),
            hidden: false,
        })
    }

    /// A bar that counts but draws nowhere.
    #[cfg(test)]
    fn hidden() -> Arc<Self> {
        Arc::new(Progress {
            enabled: true,
            bar: Mutex::new(None),
            judged: AtomicU64::new(0),
            counts_messages: AtomicBool::new(false),
            hidden: true,
        })
    }

    /// Whether a bar is drawn at all.
    pub fn shown(&self) -> bool {
        self.enabled
    }

    fn current(&self) -> Option<ProgressBar> {
        self.bar.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Start a bar for a new source; `expected` messages when the file says how many.
    pub fn begin(&self, label: &str, expected: Option<u64>) {
        self.end();
        self.judged.store(0, Ordering::Relaxed);
        self.counts_messages
            .store(expected.is_some(), Ordering::Relaxed);
        if !self.enabled {
            return;
        }
        let target = if self.hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(expected.map(|n| n.max(1)), target);
        let template = if expected.is_some() {
            "{spinner} {prefix} [{bar:25}] {human_pos}/{human_len} messages scored{msg} \
             ({rate}, ETA {eta})"
        } else {
            // Audio and images: the count is known only once the speech is recognised.
            "{spinner} {prefix}: {human_pos} segments scored{msg} ({elapsed})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> ").with_key(
                "rate",
                |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", s.per_sec());
                },
            ));
        }
        bar.set_prefix(label.to_string());
        // Ticks while Whisper or the OCR work without scoring anything.
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }

    /// Remove the bar (before the source's result line is printed).
    pub fn end(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    fn scored(&self, n: usize) {
        if self.counts_messages.load(Ordering::Relaxed) {
            return;
        }
        self.advance(n as u64);
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = self.current() {
            bar.inc(n);
            // Long messages are split into several segments: the count can pass the estimate.
            if bar.length().is_some_and(|len| bar.position() > len) {
                bar.set_length(bar.position());
            }
        }
    }

    fn judged(&self) {
        let n = self.judged.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = self.current() {
            // Judging starts once scoring is done; messages the rule filter settled were
            // never scored, so the count may have stopped short of the estimate.
            if let Some(len) = bar.length() {
                bar.set_position(len);
            }
            bar.set_message(format!(", {n} judged against the policy"));
        }
    }
}

/// Screening reports chat messages as they are done: repeated lines are scored once, so the
/// detector's calls would undercount them.
impl moderation_core::ports::Progress for Progress {
    fn screened(&self, n: u64) {
        if self.counts_messages.load(Ordering::Relaxed) {
            self.advance(n);
        }
    }
}

/// Messages a chat log holds, from its lines: what the bar counts up to. CSV loses its header.
pub fn expected_messages(mut file: impl std::io::Read, extension: &str) -> Option<u64> {
    if !matches!(extension, "txt" | "jsonl" | "csv") {
        return None;
    }
    // Counted as the file streams past: a million-line log is never read into memory.
    let mut buf = vec![0u8; 64 * 1024];
    let (mut lines, mut filled) = (0u64, false);
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                lines += u64::from(filled);
                filled = false;
            } else if !b.is_ascii_whitespace() {
                filled = true;
            }
        }
    }
    lines += u64::from(filled);
    match extension {
        "txt" | "jsonl" => Some(lines),
        "csv" => Some(lines.saturating_sub(1)),
        _ => None,
    }
}

/// The detector, counted.
pub struct CountingDetector {
    pub inner: Arc<dyn ToxicityDetector>,
    pub progress: Arc<Progress>,
}

#[async_trait]
impl ToxicityDetector for CountingDetector {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn limits(&self) -> SegmentLimits {
        self.inner.limits()
    }

    fn billing_units(&self, segments: &[moderation_core::ports::Segment]) -> u64 {
        self.inner.billing_units(segments)
    }

    async fn detect(&self, segments: &[String]) -> moderation_core::Result<Vec<ToxicityScore>> {
        let out = self.inner.detect(segments).await;
        self.progress.scored(segments.len());
        out
    }
}

/// The policy judge, counted.
pub struct CountingJudge {
    pub inner: Arc<dyn PolicyJudge>,
    pub progress: Arc<Progress>,
}

#[async_trait]
impl PolicyJudge for CountingJudge {
    fn model(&self) -> &str {
        self.inner.model()
    }

    fn retrieves(&self) -> bool {
        self.inner.retrieves()
    }

    fn reads_instructions(&self) -> bool {
        self.inner.reads_instructions()
    }

    async fn judge(&self, req: &JudgeRequest<'_>) -> moderation_core::Result<Judgement> {
        let out = self.inner.judge(req).await;
        self.progress.judged();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_count_is_the_non_empty_lines_less_a_csv_header() {
        let text = b"hello\n\n  \nworld\r\nlast";
        assert_eq!(expected_messages(&text[..], "txt"), Some(3));
        assert_eq!(expected_messages(&text[..], "jsonl"), Some(3));
        assert_eq!(
            expected_messages(&b"player,message\na,b\nc,d\n"[..], "csv"),
            Some(2)
        );
        assert_eq!(expected_messages(&b""[..], "csv"), Some(0));
        assert_eq!(expected_messages(&b"RIFF...."[..], "wav"), None);
    }

    #[test]
    fn quiet_draws_nothing_and_counting_never_fails() {
        let quiet = Progress::new(true);
        quiet.begin("chat.txt", Some(10));
        assert!(quiet.current().is_none());
        quiet.scored(3);
        quiet.judged();
        quiet.end();
    }

    #[test]
    fn a_chat_log_counts_messages_screened_and_audio_counts_segments() {
        use moderation_core::ports::Progress as _;
        let p = Progress::hidden();
        p.begin("chat.txt", Some(10));
        // Repeated lines are scored once: the detector's calls do not count for a log.
        p.scored(4);
        p.screened(6);
        assert_eq!(p.current().expect("bar").position(), 6);
        p.begin("voice.wav", None);
        p.scored(3);
        p.screened(5);
        assert_eq!(p.current().expect("bar").position(), 3);
        p.end();
    }
}
