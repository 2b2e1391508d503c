//! Progress on a terminal: the offline embedding detector scores tens to hundreds of messages a
//! second, so a large chat log takes minutes. Off a terminal nothing is printed, so piped or
//! scripted output is unchanged.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moderation_core::ports::{SegmentLimits, ToxicityDetector, ToxicityScore};

/// A detector that counts what it scored and redraws one status line on stderr.
pub struct Progress {
    inner: Arc<dyn ToxicityDetector>,
    enabled: bool,
    done: AtomicUsize,
    state: Mutex<State>,
}

struct State {
    label: String,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    pub fn wrap(inner: Arc<dyn ToxicityDetector>) -> Arc<Self> {
        Arc::new(Progress {
            inner,
            enabled: std::io::stderr().is_terminal(),
            done: AtomicUsize::new(0),
            state: Mutex::new(State {
                label: String::new(),
                started: Instant::now(),
                drawn: None,
            }),
        })
    }

    /// Start counting for a new source.
    pub fn begin(&self, label: &str) {
        self.done.store(0, Ordering::Relaxed);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.label = label.to_string();
        s.started = Instant::now();
        s.drawn = None;
    }

    /// Clear the status line (before the source's result line is printed).
    pub fn end(&self) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if self.enabled && s.drawn.is_some() {
            eprint!("\r\x1b[2K");
        }
    }

    fn tick(&self, n: usize) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if !self.enabled {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.drawn
            .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        s.drawn = Some(Instant::now());
        let rate = done as f64 / s.started.elapsed().as_secs_f64().max(1e-3);
        eprint!("\r\x1b[2K{}: {done} segments scored ({rate:.0}/s)", s.label);
        let _ = std::io::stderr().flush();
    }
}

#[async_trait]
impl ToxicityDetector for Progress {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn limits(&self) -> SegmentLimits {
        self.inner.limits()
    }

    fn billing_units(&self, segments: &[moderation_core::segment::Segment]) -> u64 {
        self.inner.billing_units(segments)
    }

    async fn detect(&self, segments: &[String]) -> moderation_core::Result<Vec<ToxicityScore>> {
        let out = self.inner.detect(segments).await;
        self.tick(segments.len());
        out
    }
}
