//! Micro-batching for a detector behind a real-time API: requests that arrive while a forward
//! pass runs (or within `window` of the first) share the next one, instead of one pass each.
//! A pass is dearer per call than per line (the embedding model's matrix products use both
//! cores better on 16 lines than on 1), so under load the batches form by themselves and the
//! throughput approaches the batch path's; an idle server adds at most `window` of latency.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::{Error, Result};
use crate::ports::{Segment, SegmentLimits, ToxicityDetector, ToxicityScore};

type Reply = oneshot::Sender<Result<Vec<ToxicityScore>>>;

struct Job {
    segments: Vec<String>,
    reply: Reply,
}

/// `inner` behind a queue: at most `passes` forward passes at once, each over the jobs waiting
/// when it starts, within the detector's limits.
pub struct MicroBatch {
    inner: Arc<dyn ToxicityDetector>,
    jobs: mpsc::Sender<Job>,
}

impl MicroBatch {
    /// Starts the batching task on the current tokio runtime. `queue` bounds the jobs waiting
    /// (a caller past it waits for room, as the HTTP layer's in-flight limit already bounds).
    pub fn new(
        inner: Arc<dyn ToxicityDetector>,
        window: Duration,
        passes: usize,
        queue: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(run(inner.clone(), rx, window, passes.max(1)));
        MicroBatch { inner, jobs: tx }
    }
}

#[async_trait]
impl ToxicityDetector for MicroBatch {
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
        let (reply, answer) = oneshot::channel();
        let job = Job {
            segments: segments.to_vec(),
            reply,
        };
        if self.jobs.send(job).await.is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> Error {
    Error::Input("the detector's batching task stopped; nothing was scored".into())
}

/// Whether `next` still fits a batch of `segments` segments and `bytes` bytes.
pub fn fits(limits: &SegmentLimits, segments: usize, bytes: usize, next: &[String]) -> bool {
    let next_bytes: usize = next.iter().map(String::len).sum();
    segments + next.len() <= limits.max_segments && bytes + next_bytes <= limits.max_request_bytes
}

async fn run(
    inner: Arc<dyn ToxicityDetector>,
    mut rx: mpsc::Receiver<Job>,
    window: Duration,
    passes: usize,
) {
    let slots = Arc::new(Semaphore::new(passes));
    let limits = inner.limits();
    let mut held: Option<Job> = None;
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match held.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let (batch, over) = gather(first, &mut rx, &limits, window).await;
        held = over;
        let inner = inner.clone();
        tokio::spawn(async move {
            score(inner.as_ref(), batch).await;
            drop(permit);
        });
    }
}

/// The jobs for one pass: `first`, then whatever is queued or arrives within `window`, while
/// they fit; the job that did not fit is returned for the next pass.
async fn gather(
    first: Job,
    rx: &mut mpsc::Receiver<Job>,
    limits: &SegmentLimits,
    window: Duration,
) -> (Vec<Job>, Option<Job>) {
    let mut segments = first.segments.len();
    let mut bytes: usize = first.segments.iter().map(String::len).sum();
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + window;
    loop {
        let next = match rx.try_recv() {
            Ok(job) => job,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => job,
                    _ => break,
                }
            }
        };
        if !fits(limits, segments, bytes, &next.segments) {
            return (batch, Some(next));
        }
        segments += next.segments.len();
        bytes += next.segments.iter().map(String::len).sum::<usize>();
        batch.push(next);
    }
    (batch, None)
}

/// One pass over every job's segments, the answers split back in order. When the pass fails,
/// each job is scored alone, so one bad request cannot fail its neighbours and every caller
/// gets its own error.
async fn score(inner: &dyn ToxicityDetector, batch: Vec<Job>) {
    if batch.len() == 1 {
        return one_by_one(inner, batch).await;
    }
    let all: Vec<String> = batch.iter().flat_map(|j| j.segments.clone()).collect();
    match inner.detect(&all).await {
        Ok(scores) if scores.len() == all.len() => {
            let mut scores = scores.into_iter();
            for job in batch {
                let mine: Vec<ToxicityScore> = scores.by_ref().take(job.segments.len()).collect();
                let _ = job.reply.send(Ok(mine));
            }
        }
        _ => one_by_one(inner, batch).await,
    }
}

/// Each job scored alone, with its own answer or error.
async fn one_by_one(inner: &dyn ToxicityDetector, batch: Vec<Job>) {
    for job in batch {
        let _ = job.reply.send(inner.detect(&job.segments).await);
    }
}

#[cfg(test)]
mod tests;
