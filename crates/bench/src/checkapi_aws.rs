//! What the check API adds over the services it calls: the same composition the check-api
//! Lambda builds, on the AWS adapters, served on loopback, against the fake AWS with a fixed
//! latency on every call. One client sends distinct lines one at a time, so every call the fake
//! answers while a request is open belongs to it: the request's time less its calls × the
//! latency is the function's own, plus the fake's own handling of those calls (an upper bound).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moderation_tests::check_api::check_api_on_fake_aws;
use moderation_tests::fake_aws::{sdk_config, FakeAws, Faults};

use crate::checkapi::Conn;
use crate::workload::message;

/// The latency the fake adds to every call: an in-region service's answer, order of magnitude.
pub const SERVICE_LATENCY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Default)]
pub struct AwsOverhead {
    pub service_latency_ms: f64,
    pub requests: usize,
    /// Service calls a request made, on average (detector, knowledge base, model).
    pub calls_per_request: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The request's time less its calls × the latency.
    pub added_p50_ms: f64,
    pub added_p99_ms: f64,
}

fn total_calls(fake: &FakeAws) -> u64 {
    fake.stats().requests.values().sum()
}

pub async fn measure(requests: usize) -> Result<AwsOverhead, String> {
    let fake = FakeAws::start(
        Faults {
            latency: SERVICE_LATENCY,
            ..Faults::default()
        },
        3,
    )
    .await;
    let sdk = sdk_config(&fake.url(), Duration::from_secs(5)).await;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let generator = Arc::new(moderation_aws::BedrockImages::from_sdk_config(
        &sdk,
        "amazon.nova-canvas-v1:0",
    ));
    let router = check_api_on_fake_aws(dir.path(), &sdk, generator).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(moderation_http::serve(listener, router, async {
        let _ = stopped.await;
    }));
    let mut conn = Conn::open(&addr).await?;
    let (mut wall, mut added, mut calls) = (Vec::new(), Vec::new(), 0u64);
    for i in 0..requests + 5 {
        let body = serde_json::json!({ "text": message(3_000_000 + i) }).to_string();
        let before = total_calls(&fake);
        let t = Instant::now();
        let status = conn
            .post("/v1/check/text", "application/json", body.as_bytes())
            .await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let n = total_calls(&fake) - before;
        if status != 200 {
            return Err(format!("/v1/check/text answered {status}"));
        }
        // The first few warm the SDK clients' connections.
        if i >= 5 {
            wall.push(ms);
            added.push(ms - n as f64 * SERVICE_LATENCY.as_secs_f64() * 1000.0);
            calls += n;
        }
    }
    let _ = stop.send(());
    let _ = server.await;
    let at = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        crate::stats::quantile(v, q)
    };
    Ok(AwsOverhead {
        service_latency_ms: SERVICE_LATENCY.as_secs_f64() * 1000.0,
        requests,
        calls_per_request: calls as f64 / requests.max(1) as f64,
        p50_ms: at(&mut wall, 0.5),
        p99_ms: at(&mut wall, 0.99),
        added_p50_ms: at(&mut added, 0.5),
        added_p99_ms: at(&mut added, 0.99),
    })
}

/// The report's lines.
pub fn section(s: &mut String, o: &AwsOverhead) {
    use std::fmt::Write;
    let _ = writeln!(
        s,
        "On the AWS adapters (the check-api Lambda's composition, served on loopback) against the \
         fake AWS answering every call after {:.0} ms: {} requests by one client, {:.1} service \
         calls each on average; p50 {:.1} ms, p99 {:.1} ms. Added by the function over the \
         services' own time (a request's time less its calls × {:.0} ms, so the fake's own \
         handling counts as the function's: an upper bound): p50 {:.1} ms, p99 {:.1} ms.\n",
        o.service_latency_ms,
        o.requests,
        o.calls_per_request,
        o.p50_ms,
        o.p99_ms,
        o.service_latency_ms,
        o.added_p50_ms,
        o.added_p99_ms
    );
}
