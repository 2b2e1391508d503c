//! Client-side pacing against a fake Comprehend with a quota: the paced detector keeps under
//! the cap and is throttled (almost) never; the same load unpaced is throttled at once. The
//! figures at 20, 200 and 1,000 req/s are `make bench`'s.

use std::sync::Arc;
use std::time::Duration;

use moderation_aws::ComprehendDetector;
use moderation_core::chain::pace::Pacer;
use moderation_core::ports::ToxicityDetector;
use moderation_tests::fake_aws::{sdk_config, FakeAws, Faults, RateLimit};

const CAP: f64 = 40.0;
const REQUESTS: usize = 80;

/// `REQUESTS` calls of ten segments from 8 tasks at once; (throttled, sustained ok/s).
async fn load(pacer: Option<Arc<Pacer>>, seed: u64) -> (u64, f64) {
    let fake = FakeAws::start(
        Faults {
            latency: Duration::from_millis(20),
            // A small burst, so a pacer that runs ahead of the cap is caught.
            rate_limit: Some(RateLimit {
                per_second: CAP,
                burst: 3.0,
            }),
            ..Faults::default()
        },
        seed,
    )
    .await;
    let sdk = sdk_config(&fake.url(), Duration::from_secs(5)).await;
    let detector = Arc::new(ComprehendDetector::from_sdk_config(&sdk).with_pacer(pacer.clone()));
    let segments: Vec<String> = (0..10).map(|i| format!("gg well played {i}")).collect();
    let segments = Arc::new(segments);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let (d, s) = (detector.clone(), segments.clone());
        tasks.spawn(async move {
            for _ in (t..REQUESTS).step_by(8) {
                // Throttles past the SDK's attempts are the unpaced run's expected failures.
                let _ = d.detect(&s).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let stats = fake.stats();
    (
        stats.capped,
        stats
            .sustained_ok_per_s("DetectToxicContent")
            .unwrap_or(f64::NAN),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_detector_uses_the_quota_without_being_throttled() {
    let (unpaced_throttles, _) = load(None, 1).await;
    assert!(
        unpaced_throttles > 10,
        "the unpaced load must exceed the cap, or this test proves nothing ({unpaced_throttles})"
    );
    let pacer = Arc::new(Pacer::new("comprehend", CAP));
    let (throttles, sustained) = load(Some(pacer.clone()), 2).await;
    assert!(
        throttles as f64 <= 0.02 * REQUESTS as f64,
        "{throttles} throttled of {REQUESTS}"
    );
    assert!(
        (0.9 * CAP..=1.05 * CAP).contains(&sustained),
        "sustained {sustained:.1} req/s against a cap of {CAP}"
    );
    assert_eq!(pacer.throttles(), throttles);
}
