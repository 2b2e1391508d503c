//! Cold start: exec → first `next` poll (init) and exec → first response, for the release
//! Rust binaries and the Python boto3 baseline, interleaved run by run so both see the same
//! machine load.

use std::time::Duration;

use moderation_tests::fake_aws::{FakeAws, Faults};

use crate::launch::{self, Launch};
use crate::workload::{aws_env, put_object, s3_event, Endpoints};
use crate::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
}

impl Lang {
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust (release binary)",
            Lang::Python => "Python 3 + boto3",
        }
    }
    fn slug(self) -> &'static str {
        match self {
            Lang::Rust => "rs",
            Lang::Python => "py",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub slug: &'static str,
    pub function: &'static str,
    pub what: &'static str,
    /// A real upload (S3 get, Comprehend, S3 put) rather than an event the function ignores.
    pub real: bool,
}

pub const CASES: &[Case] = &[
    Case {
        slug: "st-upload",
        function: "screen-text",
        what: "screen-text, first event = 11-message CSV upload (S3 GET, 2 × DetectToxicContent, S3 PUT)",
        real: true,
    },
    Case {
        slug: "st-ignored",
        function: "screen-text",
        what: "screen-text, first event outside `incoming/text/` (init + event decoding only)",
        real: false,
    },
    Case {
        slug: "ep-ignored",
        function: "evaluate-policy",
        what: "evaluate-policy, first event outside `screened/` (init + event decoding only)",
        real: false,
    },
];

#[derive(Debug, Clone)]
pub struct Sample {
    pub first_poll_ms: f64,
    pub first_response_ms: f64,
    pub rss_mib: f64,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub case: Case,
    pub lang: Lang,
    pub samples: Vec<Sample>,
    pub failures: Vec<String>,
}

pub async fn run(ctx: &Ctx, runs: usize) -> Result<Vec<Series>, String> {
    let fake = FakeAws::start(Faults::default(), 7).await;
    let endpoints = Endpoints {
        s3: ctx.s3.url(),
        aws: fake.url(),
    };
    let upload = std::fs::read(ctx.root.join("events/uploads/match-chat.csv"))
        .map_err(|e| format!("events/uploads/match-chat.csv: {e}"))?;
    let mut series: Vec<Series> = CASES
        .iter()
        .flat_map(|c| {
            [Lang::Rust, Lang::Python].map(|lang| Series {
                case: *c,
                lang,
                samples: Vec::new(),
                failures: Vec::new(),
            })
        })
        .collect();
    // Run 0 warms the page cache and Python's bytecode cache for both; it is not counted.
    for i in 0..=runs {
        for s in series.iter_mut() {
            let bucket = format!("cold-{}-{}-{i}", s.case.slug, s.lang.slug());
            let event = if s.case.real {
                let key = "incoming/text/match-chat.csv";
                let size = put_object(&ctx.work, &bucket, key, &upload)?;
                s3_event(&bucket, key, size)
            } else {
                s3_event(&bucket, "other/ping.txt", 4)
            };
            let mut env = aws_env(&endpoints, &ctx.work);
            env.push(("KNOWLEDGE_BASE_ID".into(), "KBFAKE0001".into()));
            let (program, args) = match s.lang {
                Lang::Rust => (ctx.binary(s.case.function), vec![]),
                Lang::Python => {
                    env.push(("BENCH_FUNCTION".into(), s.case.function.into()));
                    let script = ctx.root.join("crates/bench/python/bootstrap.py");
                    (ctx.python.clone(), vec![script.display().to_string()])
                }
            };
            let l = Launch {
                label: format!("cold-{}-{}-{i}", s.case.slug, s.lang.slug()),
                program,
                args,
                env,
                events: vec![event],
                log_dir: ctx.logs.clone(),
                timeout: Duration::from_secs(60),
            };
            match launch::run(&l).await {
                Ok(r) => match r.first_ok() {
                    Ok(body)
                        if s.case.real && !String::from_utf8_lossy(body).contains("screened/") =>
                    {
                        s.failures.push(format!(
                            "{}: wrote nothing: {}",
                            l.label,
                            String::from_utf8_lossy(body)
                        ));
                    }
                    Ok(_) if i > 0 => s.samples.push(Sample {
                        first_poll_ms: r.to_first_poll.as_secs_f64() * 1e3,
                        first_response_ms: r.to_first_response.as_secs_f64() * 1e3,
                        rss_mib: r.peak_rss_kib as f64 / 1024.0,
                    }),
                    Ok(_) => {}
                    Err(e) => s.failures.push(format!("{}: function error: {e}", l.label)),
                },
                Err(e) => s.failures.push(e),
            }
        }
    }
    for s in &series {
        for f in &s.failures {
            eprintln!("bench: cold start failure: {f}");
        }
    }
    Ok(series)
}
