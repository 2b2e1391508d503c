//! Client-side pacing to a per-account quota (`COMPREHEND_TPS` and friends).
//!
//! The SDK's adaptive retry learns a rate only from throttles and then settles well below the
//! quota (70 % of a 200 req/s cap in `make bench`); standard retry reaches the quota by being
//! throttled 9 % of the time. A pacer that knows the rate spaces request starts evenly at it
//! (a GCRA schedule: each start reserves the next slot), so the quota is used whole and the
//! service rarely has to say no. When it does (the quota is shared, or the rate was set too
//! high), the pacer slows down multiplicatively and creeps back, so a wrong setting costs a
//! few throttles, not a storm.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Cut on a throttle: the new rate is this share of the old.
const DECREASE: f64 = 0.85;
/// One cut per this long at most: the throttles of one burst are one signal.
const CUT_EVERY: Duration = Duration::from_millis(250);
/// Never below this share of the configured rate.
const FLOOR: f64 = 0.05;
/// After a cut the rate climbs back by this share of the configured rate a second: from one
/// cut to the full rate in 3 s. By time, not by successes: at 1,000 req/s a count of successes
/// would undo a cut within the same burst of throttles.
const RECOVERY_PER_SECOND: f64 = 0.05;

#[derive(Debug)]
pub struct Pacer {
    name: &'static str,
    configured: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The rate right after the last cut.
    cut_to: f64,
    /// When the next request may start.
    next: Instant,
    last_cut: Option<Instant>,
    throttles: u64,
}

impl State {
    /// The rate at `now`: the configured one, or climbing back to it since the last cut.
    fn rate(&self, configured: f64, now: Instant) -> f64 {
        match self.last_cut {
            None => configured,
            Some(t) => {
                let climbed =
                    configured * RECOVERY_PER_SECOND * now.duration_since(t).as_secs_f64();
                (self.cut_to + climbed).min(configured)
            }
        }
    }
}

impl Pacer {
    /// `per_second` requests a second; `name` is the service for logs (`comprehend`).
    /// Callers validate the rate (finite, > 0): see [`crate::chain::config::Vars::rate`].
    pub fn new(name: &'static str, per_second: f64) -> Self {
        Pacer {
            name,
            configured: per_second,
            state: Mutex::new(State {
                cut_to: per_second,
                next: Instant::now(),
                last_cut: None,
                throttles: 0,
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The configured rate.
    pub fn configured(&self) -> f64 {
        self.configured
    }

    /// The rate now (lower than configured after throttles).
    pub fn rate(&self) -> f64 {
        self.lock().rate(self.configured, Instant::now())
    }

    /// Throttles reported so far.
    pub fn throttles(&self) -> u64 {
        self.lock().throttles
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain numbers behind: still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for this request's slot. Slots are handed out in call order, one per `1/rate`.
    pub async fn wait(&self) {
        let slot = {
            let mut s = self.lock();
            let now = Instant::now();
            // An idle pacer does not bank slots: no burst after a quiet spell.
            let slot = s.next.max(now);
            let rate = s.rate(self.configured, now);
            s.next = slot + Duration::from_secs_f64(1.0 / rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// The service throttled a request: slow down, once per burst of throttles.
    pub fn throttled(&self) {
        let mut s = self.lock();
        s.throttles += 1;
        let now = Instant::now();
        if s.last_cut
            .is_some_and(|t| now.duration_since(t) < CUT_EVERY)
        {
            return;
        }
        let floor = self.configured * FLOOR;
        s.cut_to = (s.rate(self.configured, now) * DECREASE).max(floor);
        s.last_cut = Some(now);
        tracing::warn!(
            service = self.name,
            rate = s.cut_to,
            configured = self.configured,
            "throttled under client-side pacing: slowing down (is the *_TPS setting above this function's share of the quota?)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn starts_are_spaced_at_the_rate() {
        let p = Pacer::new("test", 50.0);
        let t0 = Instant::now();
        for _ in 0..101 {
            p.wait().await;
        }
        // 100 intervals of 20 ms after the first start.
        let took = t0.elapsed().as_secs_f64();
        assert!((took - 2.0).abs() < 0.01, "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let p = std::sync::Arc::new(Pacer::new("test", 100.0));
        let t0 = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let p = p.clone();
            tasks.spawn(async move {
                for _ in 0..25 {
                    p.wait().await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        // 200 starts at 100 a second: 1.99 s, whoever asked.
        let took = t0.elapsed().as_secs_f64();
        assert!((took - 1.99).abs() < 0.02, "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_pacer_banks_no_burst() {
        let p = Pacer::new("test", 10.0);
        p.wait().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let t0 = Instant::now();
        for _ in 0..3 {
            p.wait().await;
        }
        // The first goes at once, the next two 100 ms apart.
        let took = t0.elapsed().as_secs_f64();
        assert!((took - 0.2).abs() < 0.005, "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_slow_it_down_once_per_burst_and_time_brings_it_back() {
        let p = Pacer::new("test", 100.0);
        for _ in 0..10 {
            p.throttled();
        }
        assert!((p.rate() - 85.0).abs() < 1e-9, "{}", p.rate());
        assert_eq!(p.throttles(), 10);
        // 250 ms later it has climbed 1.25 req/s; the next burst cuts from there.
        tokio::time::sleep(CUT_EVERY).await;
        assert!((p.rate() - 86.25).abs() < 1e-9, "{}", p.rate());
        p.throttled();
        assert!((p.rate() - 73.3125).abs() < 1e-9, "{}", p.rate());
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(p.rate(), 100.0);
        // Steady throttling settles low but never under the floor.
        for _ in 0..200 {
            tokio::time::sleep(CUT_EVERY).await;
            p.throttled();
        }
        assert!(p.rate() >= 5.0 && p.rate() < 10.0, "{}", p.rate());
    }
}
