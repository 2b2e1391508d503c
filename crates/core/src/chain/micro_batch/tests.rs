use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::*;

/// Scores a line by its length; records the size of every call; fails any call holding "boom".
struct Recording {
    calls: Mutex<Vec<usize>>,
    delay: Duration,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Recording {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Recording {
            calls: Mutex::new(Vec::new()),
            delay,
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl ToxicityDetector for Recording {
    fn name(&self) -> &str {
        "recording"
    }

    fn limits(&self) -> SegmentLimits {
        SegmentLimits {
            max_segments: 8,
            max_segment_bytes: 100,
            max_request_bytes: 1000,
        }
    }

    async fn detect(&self, segments: &[String]) -> Result<Vec<ToxicityScore>> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        if let Ok(mut c) = self.calls.lock() {
            c.push(segments.len());
        }
        tokio::time::sleep(self.delay).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        if segments.iter().any(|s| s.contains("boom")) {
            return Err(Error::Input("boom".into()));
        }
        Ok(segments
            .iter()
            .map(|s| ToxicityScore {
                toxicity: s.len() as f64 / 100.0,
                ..Default::default()
            })
            .collect())
    }
}

fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}{}", "x".repeat(i)))
        .collect()
}

#[tokio::test]
async fn concurrent_requests_share_passes_and_each_gets_its_own_scores() {
    let inner = Recording::new(Duration::from_millis(20));
    let batcher = Arc::new(MicroBatch::new(
        inner.clone(),
        Duration::from_millis(5),
        1,
        64,
    ));
    let mut tasks = Vec::new();
    for r in 0..6 {
        let b = batcher.clone();
        tasks.push(tokio::spawn(async move {
            let mine = lines(&format!("r{r}"), 2);
            (mine.clone(), b.detect(&mine).await)
        }));
    }
    for t in tasks {
        let (mine, got) = t.await.expect("task");
        let got = got.expect("scored");
        let expected: Vec<f64> = mine.iter().map(|s| s.len() as f64 / 100.0).collect();
        let scores: Vec<f64> = got.iter().map(|s| s.toxicity).collect();
        assert_eq!(scores, expected);
    }
    let calls = inner.calls.lock().expect("calls").clone();
    assert_eq!(calls.iter().sum::<usize>(), 12, "{calls:?}");
    assert!(
        calls.len() < 6,
        "6 requests, {} passes: {calls:?}",
        calls.len()
    );
    assert!(
        calls.iter().all(|n| *n <= 8),
        "within the limits: {calls:?}"
    );
}

#[tokio::test]
async fn a_failing_request_fails_alone() {
    let inner = Recording::new(Duration::from_millis(10));
    let batcher = Arc::new(MicroBatch::new(
        inner.clone(),
        Duration::from_millis(20),
        1,
        64,
    ));
    let good = {
        let b = batcher.clone();
        tokio::spawn(async move { b.detect(&["fine".to_string()]).await })
    };
    let bad = {
        let b = batcher.clone();
        tokio::spawn(async move { b.detect(&["boom".to_string()]).await })
    };
    assert!(good.await.expect("task").is_ok());
    assert!(bad.await.expect("task").is_err());
}

#[tokio::test]
async fn passes_run_side_by_side_up_to_the_limit() {
    let inner = Recording::new(Duration::from_millis(30));
    let batcher = Arc::new(MicroBatch::new(inner.clone(), Duration::ZERO, 2, 64));
    let mut tasks = Vec::new();
    for r in 0..4 {
        let b = batcher.clone();
        // 8 segments each: a full pass alone.
        tasks.push(tokio::spawn(async move {
            b.detect(&lines(&format!("{r}"), 8)).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("scored");
    }
    assert_eq!(inner.most.load(Ordering::SeqCst), 2);
}

#[test]
fn a_job_fits_while_both_limits_hold() {
    let limits = SegmentLimits {
        max_segments: 3,
        max_segment_bytes: 10,
        max_request_bytes: 10,
    };
    assert!(fits(&limits, 1, 2, &["ab".into(), "cd".into()]));
    assert!(!fits(&limits, 2, 2, &["ab".into(), "cd".into()]));
    assert!(!fits(&limits, 1, 8, &["abc".into()]));
}
