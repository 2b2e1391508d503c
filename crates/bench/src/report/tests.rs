//! Pins `results.md`, `results.json` and `bench.png` for fixed measurements: the report is a
//! published artefact, so a refactor must not change a byte of it. The expected files under
//! `testdata/` were recorded from the code before the report was split into this folder.

use std::time::Duration;

use super::*;
use crate::coldstart::{Sample, CASES};
use crate::evaluate::EvalRun;
use crate::images::StageRun as ImageRun;
use crate::index::{ConcurrentResult, SizeResult};
use crate::offline::{Embedding, Whisper};
use crate::scale::{ChainRun, ModctlRun, ScaleResult, StageRun};
use crate::throughput::Retry;
use crate::throughput::{RunResult, Spec};

fn machine() -> Machine {
    Machine {
        cpu: "Test CPU @ 2.0GHz".into(),
        cores: 2,
        mem_gib: 7.75,
        kernel: "6.1.0-test".into(),
        load_at_start: "0.50 0.40 0.30".into(),
        rustc: "rustc 1.85.0 (test)".into(),
        python: "3.11.2".into(),
        boto3: "1.34.0".into(),
        date: "2025-01-02 03:04 UTC".into(),
        binaries: vec![
            ("screen-text".into(), 4_321_000),
            ("evaluate-policy".into(), 5_678_000),
        ],
    }
}

/// Three runs of each case and runtime; Python a few times slower, one Python failure.
fn cold() -> Vec<Series> {
    let mut out = Vec::new();
    for (k, case) in CASES.iter().enumerate() {
        for (lang, scale) in [(Lang::Rust, 1.0), (Lang::Python, 12.5)] {
            let samples = (0..3)
                .map(|i| Sample {
                    first_poll_ms: scale * (3.0 + k as f64 + 0.25 * i as f64),
                    first_response_ms: scale * (9.0 + 2.0 * k as f64 + 0.5 * i as f64),
                    rss_mib: scale.sqrt() * (7.0 + 0.1 * i as f64),
                })
                .collect();
            let failures = if lang == Lang::Python && k == 1 {
                vec!["timed out".to_string()]
            } else {
                Vec::new()
            };
            out.push(Series {
                case: *case,
                lang,
                samples,
                failures,
            });
        }
    }
    out
}

fn spec(messages: usize, cap: Option<f64>, latency_ms: u64, retry: Retry) -> Spec {
    Spec {
        slug: format!("{}k", messages / 1000),
        messages,
        cap,
        latency: Duration::from_millis(latency_ms),
        concurrency: 4,
        side_by_side: latency_ms > 0,
        batch: 1,
        retry,
    }
}

/// A run of `messages` in `seconds` with `ok` successful requests out of `requests`.
fn run(seconds: f64, requests: u64, ok: u64, items: usize, unscored: usize) -> RunResult {
    RunResult {
        seconds,
        requests,
        ok,
        capped: requests - ok,
        items,
        unscored,
        rss_mib: 11.0 + seconds / 100.0,
        cpu_seconds: seconds / 20.0,
        sustained_ok_per_s: ok as f64 / (seconds - 1.5),
    }
}

fn scenario(spec: Spec, runs: Vec<RunResult>, failures: &[&str]) -> Scenario {
    Scenario {
        spec,
        runs,
        failures: failures.iter().map(|f| f.to_string()).collect(),
    }
}

/// Adaptive below 95 % of its cap (with a standard-retry twin), paced, uncapped with unscored
/// items, zero latency at 100k (the memory row) and an adaptive run that meets its cap.
fn throughput() -> Vec<Scenario> {
    vec![
        scenario(
            spec(10_000, Some(20.0), 100, Retry::AdaptiveBinary),
            vec![
                run(60.0, 1_080, 1_000, 10_000, 0),
                run(58.0, 1_050, 1_000, 10_000, 0),
            ],
            &[],
        ),
        scenario(
            spec(10_000, Some(20.0), 100, Retry::StandardInProcess),
            vec![run(51.0, 1_400, 1_000, 10_000, 0)],
            &[],
        ),
        scenario(
            spec(10_000, Some(20.0), 100, Retry::PacedBinary),
            vec![
                run(51.5, 1_010, 1_000, 10_000, 0),
                run(52.0, 1_005, 1_000, 10_000, 0),
            ],
            &["paced run 3: exit 1"],
        ),
        scenario(
            spec(100_000, None, 50, Retry::AdaptiveBinary),
            vec![run(130.0, 10_000, 10_000, 100_000, 2)],
            &[],
        ),
        scenario(
            spec(100_000, None, 0, Retry::AdaptiveBinary),
            vec![
                run(4.0, 10_000, 10_000, 100_000, 0),
                run(4.5, 10_000, 10_000, 99_990, 0),
            ],
            &[],
        ),
        scenario(
            spec(100_000, Some(200.0), 20, Retry::AdaptiveBinary),
            vec![run(51.0, 10_020, 10_000, 100_000, 0)],
            &[],
        ),
    ]
}

fn evaluate() -> EvalResult {
    let run = |seconds: f64, rss_mib: f64| EvalRun {
        seconds,
        rss_mib,
        cpu_seconds: seconds / 3.0,
        retrieve_calls: 1_200,
        converse_calls: 1_190,
        items: 10_000,
        evaluated: 1_190,
    };
    EvalResult {
        items: 10_000,
        over_threshold: 1_234,
        screen_rss_mib: 21.5,
        runs: vec![run(12.0, 30.5), run(13.5, 31.25), run(12.25, 29.0)],
        failures: vec!["evaluate-3: function error: boom".into()],
    }
}

fn offline(whisper: Whisper, embedding: Embedding) -> OfflineResult {
    OfflineResult {
        scoring: vec![41_000.0, 39_500.0, 40_250.0],
        messages_per_run: 20_000,
        whisper,
        embedding,
    }
}

fn images(nsfw: Result<Vec<f64>, String>, ocr: Result<Vec<f64>, String>) -> ImageResult {
    let run = |images_per_s: f64| ImageRun {
        images_per_s,
        rss_mib: 40.0 + images_per_s,
        cpu_seconds: 3.5,
    };
    ImageResult {
        images: 30,
        runs: vec![run(2.5), run(2.75)],
        failures: vec!["screen-image run 2: timed out".into()],
        nsfw,
        ocr,
    }
}

fn index(concurrent: Result<ConcurrentResult, String>) -> IndexResult {
    let size = |existing: usize, add: f64| SizeResult {
        existing,
        add_ms: vec![add, add * 1.5, add * 0.75],
        add_requests: 4.0 + existing as f64 / 10_000.0,
        rebuild_ms: existing as f64 * 0.9,
        rebuild_requests: existing as u64 + 2,
    };
    IndexResult {
        sizes: vec![size(100, 12.0), size(10_000, 13.0)],
        concurrent,
    }
}

fn stage(seconds: f64, rss_mib: f64) -> Option<StageRun> {
    Some(StageRun {
        seconds,
        cpu_seconds: seconds * 0.8,
        rss_mib,
    })
}

fn chain(messages: u64, rss: f64, html_load: Option<Result<(f64, bool), String>>) -> ChainRun {
    ChainRun {
        label: format!("{messages} messages"),
        messages,
        bytes: messages * 40,
        screen: stage(messages as f64 / 5_000.0, rss),
        evaluate: stage(messages as f64 / 2_000.0, rss + 3.0),
        report: stage(messages as f64 / 9_000.0, rss - 1.0),
        listed: messages / 10,
        unlisted: messages - messages / 10,
        counted: messages,
        over_threshold: messages / 10,
        needs_review: 0,
        report_json_mib: messages as f64 / 4_000.0,
        report_html_mib: messages as f64 / 6_000.0,
        html_load,
        failure: None,
    }
}

fn scale(modctl: Option<Result<ModctlRun, String>>) -> ScaleResult {
    let mut short = chain(3_000_000, 44.0, Some(Err("chromium crashed".into())));
    short.label = "shortest lines".into();
    short.counted = 2_999_000;
    short.failure = Some("write-report: exit 137".into());
    ScaleResult {
        chains: vec![
            chain(10_000, 20.0, Some(Ok((1.25, true)))),
            chain(1_000_000, 21.5, Some(Ok((12.0, false)))),
            chain(1_500, 19.0, None),
        ],
        shortest: Some(short),
        modctl,
        template_mb: Some(256),
    }
}

/// Every section, the common shape of each.
fn full() -> Results {
    Results {
        machine: machine(),
        cold: Some(cold()),
        throughput: Some(throughput()),
        evaluate: Some(evaluate()),
        offline: Some(offline(
            Whisper::NotBuilt,
            Embedding::Measured {
                per_s: vec![120.0, 131.5],
                messages_per_run: 2_000,
            },
        )),
        images: Some(images(
            Ok(vec![15.5, 16.25]),
            Err("tesseract not found".into()),
        )),
        check_api: None,
        review: None,
        index: Some(index(Ok(ConcurrentResult {
            writers: 50,
            listed_once: 50,
            missing: 0,
            doubled: 0,
            mean_swaps: 2.4,
            seconds: 1.75,
        }))),
        scale: Some(scale(Some(Ok(ModctlRun {
            lines: 1_000_000,
            seconds: 42.0,
            max_rss_mib: 60.5,
            summary: "1000000 lines, 912 flagged".into(),
        })))),
        micro: vec![
            Micro {
                id: "screen/normalize".into(),
                median_ns: 1_234.5,
                elements: Some(10),
            },
            Micro {
                id: "score/one".into(),
                median_ns: 2_500_000.0,
                elements: None,
            },
            Micro {
                id: "tiny".into(),
                median_ns: 12.0,
                elements: Some(1_000_000),
            },
        ],
        harness_seconds: 321.5,
        build: vec![
            ("cargo build --release".into(), 240.0),
            ("criterion".into(), 95.5),
            ("bench: run".into(), 330.0),
        ],
        total_seconds: Some(700.0),
    }
}

/// The other branches: failures and not-built features, the met embedding goal, no cold start
/// or throughput.
fn variants() -> Results {
    Results {
        machine: Machine {
            binaries: Vec::new(),
            ..machine()
        },
        evaluate: None,
        offline: Some(offline(
            Whisper::Measured {
                rtf: vec![0.125, 0.25],
                clip_seconds: 60.0,
            },
            Embedding::Measured {
                per_s: vec![160.0],
                messages_per_run: 2_000,
            },
        )),
        images: Some(images(
            Err("not built (feature nsfw)".into()),
            Ok(vec![1.5]),
        )),
        index: Some(index(Err("fake S3 refused".into()))),
        scale: Some(scale(Some(Err("modctl: exit 1".into())))),
        ..Default::default()
    }
}

fn more_variants() -> Results {
    Results {
        machine: machine(),
        offline: Some(offline(
            Whisper::Failed("no model".into()),
            Embedding::NotBuilt,
        )),
        scale: Some(ScaleResult {
            chains: vec![chain(10_000, 20.0, None)],
            shortest: None,
            modctl: None,
            template_mb: None,
        }),
        ..variants()
    }
}

fn cases() -> [(&'static str, Results); 4] {
    [
        ("full", full()),
        ("variants", variants()),
        ("more_variants", more_variants()),
        ("empty", Results::default()),
    ]
}

fn testdata(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/report/testdata")
        .join(name)
}

fn expected(name: &str) -> String {
    let path = testdata(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn markdown_is_unchanged_for_fixed_measurements() {
    for (name, r) in cases() {
        let md = markdown(&r);
        assert!(
            md == expected(&format!("{name}.md")),
            "{name}.md differs; now:\n{md}"
        );
    }
}

#[test]
fn json_is_unchanged_for_fixed_measurements() {
    // Compared as values: serde_json orders keys by insertion or alphabetically depending on a
    // feature another crate of the workspace may turn on, and the order carries no meaning.
    // Both sides go through the same text parse, so a float's last bit cannot differ.
    for (name, r) in cases() {
        let now: serde_json::Value =
            serde_json::from_str(&json(&r).to_string()).expect("valid JSON");
        let want: serde_json::Value =
            serde_json::from_str(&expected(&format!("{name}.json"))).expect("valid JSON");
        assert!(now == want, "{name}.json differs; now:\n{now}");
    }
}

/// FNV-1a: a fixed hash of the PNG bytes (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn chart_is_unchanged_for_fixed_measurements() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut hashes = Vec::new();
    for (name, r) in cases() {
        let path = dir.path().join(format!("{name}.png"));
        let drawn = crate::chart::draw(&r, &path);
        let hash = match drawn {
            Ok(()) => format!(
                "{:016x}",
                fnv1a(&std::fs::read(&path).expect("png written"))
            ),
            Err(e) => format!("error: {e}"),
        };
        hashes.push(format!("{name} {hash}"));
    }
    assert_eq!(hashes.join("\n") + "\n", expected("chart.txt"));
}

#[test]
fn the_review_queue_section_lists_each_size_and_rate() {
    use crate::review::{DecisionRate, QueueTiming, ReviewBench};
    let r = Results {
        review: Some(ReviewBench {
            queue: vec![QueueTiming {
                reports: 100_000,
                shape: "tail",
                p50_ms: 21.5,
                p99_ms: 30.25,
                requests_per_call: 27.0,
                items: 50,
            }],
            decisions: vec![DecisionRate {
                reports: 1,
                concurrent: 50,
                decisions: 200,
                per_s: 12.0,
                recorded: 200,
            }],
        }),
        ..Results::default()
    };
    let j = super::json(&r);
    assert_eq!(j["review"]["queue"][0]["reports"], 100_000);
    assert_eq!(j["review"]["decisions"][0]["recorded"], 200);
    let md = super::markdown(&r);
    assert!(md.contains("## Review queue"), "{md}");
    assert!(
        md.contains("| 100000 | tail | 21.5 | 30.2 | 27.0 | 50 |"),
        "{md}"
    );
    assert!(md.contains("| 1 report(s) | 50 | 200/200 | 12 |"), "{md}");
}
