//! `results.md` and `results.json`: every figure with the machine it was measured on, and the
//! issue's goals with met / missed.
//!
//! `goals` judges the measurements against the targets, `markdown` and `tables` write
//! `results.md`, `json` writes `results.json`; the figures they share are here.

mod goals;
mod json;
mod markdown;
mod tables;

pub use json::json;
pub use markdown::markdown;

use std::path::Path;

use crate::coldstart::{Lang, Series};
use crate::evaluate::EvalResult;
use crate::images::ImageResult;
use crate::index::IndexResult;
use crate::machine::Machine;
use crate::micro::Micro;
use crate::offline::OfflineResult;
use crate::stats::{median, summarize};
use crate::throughput::Scenario;

#[derive(Debug, Default)]
pub struct Results {
    pub machine: Machine,
    pub cold: Option<Vec<Series>>,
    pub throughput: Option<Vec<Scenario>>,
    pub evaluate: Option<EvalResult>,
    pub offline: Option<OfflineResult>,
    pub check_api: Option<crate::checkapi::CheckApiResult>,
    pub images: Option<ImageResult>,
    pub index: Option<IndexResult>,
    pub review: Option<crate::review::ReviewBench>,
    pub scale: Option<crate::scale::ScaleResult>,
    pub micro: Vec<Micro>,
    pub harness_seconds: f64,
    /// `(step, seconds)` from the Makefile's `build-times.tsv`.
    pub build: Vec<(String, f64)>,
    /// Seconds since `make bench` started (builds included), when run through make.
    pub total_seconds: Option<f64>,
}

/// `<step>\t<seconds>` lines written by `make bench`.
pub fn read_build_times(path: &Path) -> Vec<(String, f64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Median with the range: `12.3 (11.0–15.2)`.
fn med_range(values: &[f64], decimals: usize) -> String {
    match summarize(values) {
        None => "—".into(),
        Some(s) if s.n == 1 => format!("{:.*}", decimals, s.median),
        Some(s) => format!(
            "{:.*} ({:.*}–{:.*})",
            decimals, s.median, decimals, s.min, decimals, s.max
        ),
    }
}

fn series<'a>(cold: &'a [Series], case: &str, lang: Lang) -> Option<&'a Series> {
    cold.iter().find(|s| s.case.slug == case && s.lang == lang)
}

/// Python median ÷ Rust median for one cold-start measure.
pub fn cold_ratio(cold: &[Series], case: &str, f: fn(&crate::coldstart::Sample) -> f64) -> f64 {
    let m = |lang| {
        series(cold, case, lang).map_or(f64::NAN, |s| {
            median(&s.samples.iter().map(f).collect::<Vec<_>>())
        })
    };
    m(Lang::Python) / m(Lang::Rust)
}

pub struct ScenarioFigures {
    pub msgs_per_s: Vec<f64>,
    pub ok_per_s: Vec<f64>,
    pub share_of_cap: Vec<f64>,
    /// Successful requests a second from the first to the last, as a share of the cap: the
    /// rate held while calls were being made, without start-up and the final write.
    pub sustained_share: Vec<f64>,
    /// Throttled requests as a share of all requests made.
    pub throttled_share: Vec<f64>,
    pub requests: Vec<f64>,
    pub capped: Vec<f64>,
    pub lost: usize,
    pub unscored: usize,
    pub rss: Vec<f64>,
    pub cpu_us_per_msg: Vec<f64>,
}

pub fn figures(s: &Scenario) -> ScenarioFigures {
    let n = s.spec.messages as f64;
    let per = |f: &dyn Fn(&crate::throughput::RunResult) -> f64| -> Vec<f64> {
        s.runs.iter().map(f).collect()
    };
    ScenarioFigures {
        msgs_per_s: per(&|r| n / r.seconds),
        ok_per_s: per(&|r| r.ok as f64 / r.seconds),
        share_of_cap: s.spec.cap.map_or(Vec::new(), |cap| {
            per(&|r| 100.0 * r.ok as f64 / r.seconds / cap)
        }),
        sustained_share: s.spec.cap.map_or(Vec::new(), |cap| {
            per(&|r| 100.0 * r.sustained_ok_per_s / cap)
        }),
        throttled_share: per(&|r| 100.0 * r.capped as f64 / (r.requests as f64).max(1.0)),
        requests: per(&|r| r.requests as f64),
        capped: per(&|r| r.capped as f64),
        lost: s
            .runs
            .iter()
            .map(|r| s.spec.messages.saturating_sub(r.items))
            .sum(),
        unscored: s.runs.iter().map(|r| r.unscored).sum(),
        rss: per(&|r| r.rss_mib),
        cpu_us_per_msg: per(&|r| r.cpu_seconds * 1e6 / n),
    }
}

/// `10k`, `1M`: round thousands and millions short, anything else in full.
fn fmt_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests;
