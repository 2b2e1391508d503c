//! The services as one upload's chunks call them: at most `max_concurrency` detector calls in
//! flight whatever the number of chunks, and every call given up when the invocation's time is
//! for writing.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::ports::{
    Answer, LanguageIdentifier, Segment, SegmentLimits, ToxicityDetector, ToxicityScore, Translator,
};

use super::ScreenDeps;

/// When service calls of one upload must be given up (the invocation's time is then for
/// writing), and whether any was.
pub(super) struct CallClock {
    until: Option<std::time::Instant>,
    abandoned: AtomicBool,
}

impl CallClock {
    pub(super) fn new(until: Option<std::time::Instant>) -> Self {
        CallClock {
            until,
            abandoned: AtomicBool::new(false),
        }
    }

    /// Whether a call was given up.
    pub(super) fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// `call`, or [`Error::OutOfTime`] if it has not answered by `until`. The items of an
    /// abandoned call are held for a person, as for any failed call.
    async fn run<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(until) = self.until else {
            return call.await;
        };
        match tokio::time::timeout_at(until.into(), call).await {
            Ok(r) => r,
            Err(_) => {
                self.abandoned.store(true, Ordering::Relaxed);
                Err(Error::OutOfTime(format!(
                    "the invocation's time ran out before {what} answered"
                )))
            }
        }
    }
}

/// The services of [`ScreenDeps`], each call timed by one clock.
pub(super) struct TimedServices<'a> {
    detector: Limited<'a>,
    languages: TimedLanguages<'a>,
    translator: Option<TimedTranslator<'a>>,
}

impl<'a> TimedServices<'a> {
    pub(super) fn new(deps: &ScreenDeps<'a>, max_concurrency: usize, clock: &'a CallClock) -> Self {
        TimedServices {
            detector: Limited::new(deps.detector, max_concurrency, clock),
            languages: TimedLanguages {
                inner: deps.languages,
                clock,
            },
            translator: deps
                .translator
                .map(|inner| TimedTranslator { inner, clock }),
        }
    }

    /// `deps` with the timed services, for the chunks: progress is told per upload, and the
    /// time limit is the clock's.
    pub(super) fn deps<'b>(&'b self, deps: &ScreenDeps<'b>) -> ScreenDeps<'b> {
        ScreenDeps {
            store: deps.store,
            detector: &self.detector,
            rules: deps.rules,
            languages: &self.languages,
            translator: self.translator.as_ref().map(|t| t as &dyn Translator),
            known_language: deps.known_language.clone(),
            progress: None,
            time_limit: None,
        }
    }
}

/// A detector that lets at most `n` calls be in flight, whatever number of chunks call it,
/// and gives up on calls still waiting when the clock says.
struct Limited<'a> {
    inner: &'a dyn ToxicityDetector,
    permits: tokio::sync::Semaphore,
    clock: &'a CallClock,
}

impl<'a> Limited<'a> {
    fn new(inner: &'a dyn ToxicityDetector, n: usize, clock: &'a CallClock) -> Self {
        Limited {
            inner,
            permits: tokio::sync::Semaphore::new(n.max(1)),
            clock,
        }
    }
}

#[async_trait::async_trait]
impl ToxicityDetector for Limited<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn limits(&self) -> SegmentLimits {
        self.inner.limits()
    }

    fn billing_units(&self, segments: &[Segment]) -> u64 {
        self.inner.billing_units(segments)
    }

    async fn detect(&self, segments: &[String]) -> Result<Vec<ToxicityScore>> {
        let call = async {
            // The semaphore is never closed, so acquiring cannot fail; if it did, call anyway.
            let _permit = self.permits.acquire().await.ok();
            self.inner.detect(segments).await
        };
        self.clock.run(self.inner.name(), call).await
    }
}

/// The language identifier, giving up on calls still waiting when the clock says.
struct TimedLanguages<'a> {
    inner: &'a dyn LanguageIdentifier,
    clock: &'a CallClock,
}

#[async_trait::async_trait]
impl LanguageIdentifier for TimedLanguages<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }

    fn billing_units(&self, text: &str) -> u64 {
        self.inner.billing_units(text)
    }

    async fn identify(&self, texts: &[String]) -> Result<Vec<Answer>> {
        self.clock
            .run(self.inner.name(), self.inner.identify(texts))
            .await
    }
}

/// The translator, giving up on calls still waiting when the clock says.
struct TimedTranslator<'a> {
    inner: &'a dyn Translator,
    clock: &'a CallClock,
}

#[async_trait::async_trait]
impl Translator for TimedTranslator<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn max_bytes(&self) -> usize {
        self.inner.max_bytes()
    }

    async fn to_english(&self, text: &str, source: &str) -> Result<String> {
        self.clock
            .run(self.inner.name(), self.inner.to_english(text, source))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_past_the_clock_is_abandoned_and_said() {
        let clock = CallClock::new(Some(std::time::Instant::now()));
        let slow = async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Ok(1)
        };
        let r = clock.run("det", slow).await;
        assert!(matches!(r, Err(Error::OutOfTime(m)) if m.contains("before det answered")));
        assert!(clock.abandoned());

        let unlimited = CallClock::new(None);
        assert_eq!(unlimited.run("det", async { Ok(2) }).await.ok(), Some(2));
        assert!(!unlimited.abandoned());
    }
}
