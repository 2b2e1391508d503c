//! The report's tables of measurements: cold start, throughput, peak memory, memory at scale,
//! images and the report index.

use std::fmt::Write as _;

use crate::coldstart::{Lang, Series};
use crate::evaluate::{EvalResult, EvalRun};
use crate::scale::{ChainRun, StageRun};
use crate::stats::median;
use crate::throughput::Scenario;

use super::{cold_ratio, figures, med_range, series, Results};

pub(super) fn cold_section(s: &mut String, cold: &[Series]) {
    let _ = writeln!(s, "## Cold start\n");
    let _ = writeln!(
        s,
        "Each run starts the process under the harness's own Lambda Runtime API emulator \
         (`crates/bench/src/runtime_api.rs`) and times from just before `exec`. Both runtimes \
         get the same environment: `MODERATION_BACKEND=aws`, static dummy credentials, region \
         `us-east-1`, and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` pointing at loopback fakes \
         of Comprehend and S3. The Python baseline (`crates/bench/python/`) imports boto3 and \
         creates the same clients at init as the Rust `main` (screen-text: S3 + Comprehend; \
         evaluate-policy: S3 + Bedrock Agent Runtime + Bedrock Runtime), and its screen-text \
         handler does the same S3 and Comprehend calls but none of the screening work. Rust and \
         Python runs alternate; one warm-up run of each is not counted (page cache and `.pyc` \
         warm for both).\n"
    );
    let _ = writeln!(
        s,
        "| case | runtime | exec → first `next` poll (ms) | exec → first response (ms) | peak RSS (MiB) | runs |\n|---|---|---|---|---|---|"
    );
    for c in crate::coldstart::CASES {
        for lang in [Lang::Rust, Lang::Python] {
            let Some(x) = series(cold, c.slug, lang) else {
                continue;
            };
            let col = |f: fn(&crate::coldstart::Sample) -> f64| {
                med_range(&x.samples.iter().map(f).collect::<Vec<_>>(), 1)
            };
            let failed = failed_note(x.failures.len());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {}{failed} |",
                c.what,
                lang.name(),
                col(|x| x.first_poll_ms),
                col(|x| x.first_response_ms),
                col(|x| x.rss_mib),
                x.samples.len()
            );
        }
        let _ = writeln!(
            s,
            "| | **Python ÷ Rust** | **{:.1}×** | **{:.1}×** | {:.1}× | |",
            cold_ratio(cold, c.slug, |x| x.first_poll_ms),
            cold_ratio(cold, c.slug, |x| x.first_response_ms),
            cold_ratio(cold, c.slug, |x| x.rss_mib),
        );
    }
    s.push('\n');
}

pub(super) fn throughput_section(s: &mut String, tp: &[Scenario]) {
    let _ = writeln!(s, "## screen-text throughput\n");
    let _ = writeln!(
        s,
        "The release binary under the Runtime API emulator, `MODERATION_BACKEND=aws` with \
         production's SDK configuration (adaptive retry, 5 attempts), reads a TXT upload of N \
         distinct short chat messages from the folder-backed S3 fake and calls the fake \
         Comprehend (`tests/src/fake_aws.rs`), which adds the latency and enforces the cap as a \
         token bucket (1 s burst) answering `TooManyRequestsException` past it. Time is from the \
         event being handed out to the response (init excluded). Latency-bound runs are started \
         side by side, each against its own fake and its own cap (the three 10k scenarios \
         together, each 100k scenario on its own); the zero-latency runs one after another. \
         The paced rows run the same binary with `COMPREHEND_TPS` at the cap (its client-side \
         pacer, standard retry under it). Without a pacer the functions use adaptive retry, so \
         the standard-retry rows run the same handler \
         in the harness process (`screen_text::App::from_parts` over an SDK configuration with \
         standard retry, the same 5 attempts and the SDK's default backoff); they have no RSS or \
         CPU figures of their own. Fewest possible requests: ⌈N/10⌉ (10 segments a request). \
         *Sustained* is the fake's successful answers a second from its first to its last, \
         against the cap.\n"
    );
    let _ = writeln!(
        s,
        "| scenario | runs | messages/s | successful req/s | share of cap | sustained share of cap | requests made (min ⌈N/10⌉) | throttled | lost | unscored | peak RSS (MiB) | CPU µs/message |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for sc in tp {
        throughput_row(s, sc);
    }
    let _ = writeln!(
        s,
        "\n*Per-item overhead*: CPU µs/message is the function process's own user + system CPU \
         time (`/proc/<pid>/stat`, init included) divided by the messages; the fakes run in the \
         harness process and are not counted, and waiting on the service costs no CPU.\n"
    );
}

/// One scenario: medians with their ranges; `—` for shares of a cap the scenario does not have.
fn throughput_row(s: &mut String, sc: &Scenario) {
    let f = figures(sc);
    let percent_or_dash = |values: &[f64]| {
        if values.is_empty() {
            "—".to_string()
        } else {
            format!("{} %", med_range(values, 1))
        }
    };
    let share = percent_or_dash(&f.share_of_cap);
    let sustained = percent_or_dash(&f.sustained_share);
    let failed = failed_note(sc.failures.len());
    let _ = writeln!(
        s,
        "| {} | {}{failed} | {} | {} | {share} | {sustained} | {} ({}) | {} | {} | {} | {} | {} |",
        sc.spec.describe(),
        sc.runs.len(),
        med_range(&f.msgs_per_s, 0),
        med_range(&f.ok_per_s, 1),
        med_range(&f.requests, 0),
        sc.spec.min_requests(),
        med_range(&f.capped, 0),
        f.lost,
        f.unscored,
        med_range(&f.rss, 1),
        med_range(&f.cpu_us_per_msg, 1),
    );
}

/// ` (2 failed)` after a run count, nothing without failures.
fn failed_note(failures: usize) -> String {
    if failures == 0 {
        String::new()
    } else {
        format!(" ({failures} failed)")
    }
}

pub(super) fn images_section(s: &mut String, r: &Results) {
    let Some(im) = &r.images else { return };
    let _ = writeln!(
        s,
        "## Images
"
    );
    let _ = writeln!(
        s,
        "| what | images/s | peak RSS (MiB) | runs |\n|---|---|---|---|"
    );
    let per_s: Vec<f64> = im.runs.iter().map(|r| r.images_per_s).collect();
    let rss: Vec<f64> = im.runs.iter().map(|r| r.rss_mib).collect();
    let cpu = median(&im.runs.iter().map(|r| r.cpu_seconds).collect::<Vec<_>>());
    let _ = writeln!(
        s,
        "| screen-image release binary, `aws` backend, {} sample images one invocation each, \
         fake Rekognition + Comprehend with {} ms a call ({cpu:.1} s CPU a run) | {} | {} | {} |",
        im.images,
        crate::images::LATENCY.as_millis(),
        med_range(&per_s, 2),
        med_range(&rss, 1),
        im.runs.len()
    );
    for (what, v) in [
        ("open_nsfw in tract, one core, in the harness", &im.nsfw),
        (
            "Tesseract OCR, three passes an image, in the harness",
            &im.ocr,
        ),
    ] {
        match v {
            Ok(v) => {
                let _ = writeln!(s, "| {what} | {} | — | {} |", med_range(v, 2), v.len());
            }
            Err(e) => {
                let _ = writeln!(s, "| {what} | not measured: {e} | — | 0 |");
            }
        }
    }
    for f in &im.failures {
        let _ = writeln!(s, "\nFailure: {f}");
    }
    let _ = writeln!(s);
}

pub(super) fn memory_section(s: &mut String, r: &Results) {
    let screen = r
        .throughput
        .as_ref()
        .and_then(|tp| largest_zero_latency(tp));
    if screen.is_none() && r.evaluate.is_none() {
        return;
    }
    let _ = writeln!(s, "## Peak memory (VmHWM of the function process)\n");
    let _ = writeln!(
        s,
        "| function and input | peak RSS (MiB) | time (s) | runs |\n|---|---|---|---|"
    );
    if let Some(sc) = screen {
        screen_memory_row(s, sc);
    }
    if let Some(e) = &r.evaluate {
        evaluate_memory_rows(s, e);
    }
    s.push('\n');
}

/// The CPU-bound 100k scenario: screen-text's memory without waiting on the service.
pub(super) fn largest_zero_latency(tp: &[Scenario]) -> Option<&Scenario> {
    tp.iter()
        .find(|sc| sc.spec.messages >= 100_000 && sc.spec.latency.is_zero())
}

fn screen_memory_row(s: &mut String, sc: &Scenario) {
    let f = figures(sc);
    let secs: Vec<f64> = sc.runs.iter().map(|r| r.seconds).collect();
    let _ = writeln!(
        s,
        "| screen-text, {} | {} | {} | {} |",
        sc.spec.describe(),
        med_range(&f.rss, 1),
        med_range(&secs, 2),
        sc.runs.len()
    );
}

/// evaluate-policy's runs, then the screen-text run that produced its input.
fn evaluate_memory_rows(s: &mut String, e: &EvalResult) {
    let per_run = |f: fn(&EvalRun) -> f64| e.runs.iter().map(f).collect::<Vec<_>>();
    let rss = per_run(|r| r.rss_mib);
    let secs = per_run(|r| r.seconds);
    let retrieve = median(&per_run(|r| r.retrieve_calls as f64));
    let converse = median(&per_run(|r| r.converse_calls as f64));
    let judged = median(&per_run(|r| r.evaluated as f64));
    let out_items = median(&per_run(|r| r.items as f64));
    let cpu = median(&per_run(|r| r.cpu_seconds));
    let _ = writeln!(
        s,
        "| evaluate-policy, screened document of {} items ({} over the threshold; Retrieve + \
         Converse on the fake without latency: {retrieve:.0} + {converse:.0} calls, {judged:.0} \
         items judged, {out_items:.0} items written, {cpu:.1} s CPU) | {} | {} | {} |",
        e.items,
        e.over_threshold,
        med_range(&rss, 1),
        med_range(&secs, 2),
        e.runs.len()
    );
    let _ = writeln!(
        s,
        "| screen-text producing that document ({} messages, one run) | {:.1} | — | 1 |",
        e.items, e.screen_rss_mib
    );
}

pub(super) fn scale_section(s: &mut String, r: &Results) {
    let Some(sc) = &r.scale else { return };
    let _ = writeln!(
        s,
        "## Memory at scale (peak RSS, MiB, of each stage's release binary; `aws` backend against \
         the loopback fakes without latency)\n"
    );
    let _ = writeln!(
        s,
        "| upload | size | screen-text | evaluate-policy | write-report | items listed / counted \
         only | over threshold | report JSON / HTML (MiB) | page in Chromium |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for c in sc.chains.iter().chain(&sc.shortest) {
        scale_row(s, c);
    }
    if let Some(Ok(m)) = &sc.modctl {
        let _ = writeln!(
            s,
            "\n`modctl moderate` (release, offline, `OFFLINE_DETECTOR=lexicon`) on {} lines: peak \
             RSS **{:.1} MiB**, {:.0} s: {}",
            m.lines, m.max_rss_mib, m.seconds, m.summary
        );
    }
    s.push('\n');
}

/// One upload through the chain: each stage's peak RSS (bold), time and CPU; the report.
fn scale_row(s: &mut String, c: &ChainRun) {
    let cell = |r: &Option<StageRun>| {
        r.as_ref().map_or("—".to_string(), |r| {
            format!(
                "**{:.1}** ({:.1} s, {:.1} s CPU)",
                r.rss_mib, r.seconds, r.cpu_seconds
            )
        })
    };
    let page = match &c.html_load {
        Some(Ok((secs, true))) => format!("{secs:.1} s, every item in full shown"),
        Some(Ok((secs, false))) => format!("{secs:.1} s, **items missing**"),
        Some(Err(e)) => format!("failed: {e}"),
        None => "no chromium".into(),
    };
    let _ = writeln!(
        s,
        "| {}{} | {:.1} MB | {} | {} | {} | {} / {} | {} | {:.1} / {:.1} | {page} |",
        c.label,
        c.failure
            .as_ref()
            .map(|e| format!(" (**failed**: {e})"))
            .unwrap_or_default(),
        c.bytes as f64 / 1e6,
        cell(&c.screen),
        cell(&c.evaluate),
        cell(&c.report),
        c.listed,
        c.unlisted,
        c.over_threshold,
        c.report_json_mib,
        c.report_html_mib,
    );
}

pub(super) fn index_section(s: &mut String, r: &Results) {
    let Some(ix) = &r.index else { return };
    let _ = writeln!(
        s,
        "## Report index\n\nAdding one report to `reports/index.html` (compare-and-swap on \
         `reports/index/head.json`, sealed pages of {} rows), through the SDK against the fake S3 \
         on loopback, beside the full rebuild write-report did before (list `reports/`, GET every \
         report, PUT one page), in the same run.\n",
        moderation_core::stages::write_report::index::PAGE_ROWS
    );
    let _ = writeln!(
        s,
        "| reports listed | add one: ms | add one: S3 requests | full rebuild: ms | full rebuild: S3 requests | rebuild ÷ add (time) |\n|---|---|---|---|---|---|"
    );
    for z in &ix.sizes {
        let add = crate::stats::summarize(&z.add_ms).map_or(f64::NAN, |m| m.median);
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.0} | {} | {:.0}× |",
            z.existing,
            med_range(&z.add_ms, 2),
            z.add_requests,
            z.rebuild_ms,
            z.rebuild_requests,
            z.rebuild_ms / add
        );
    }
    match &ix.concurrent {
        Ok(c) => {
            let _ = writeln!(
                s,
                "\n{} writers at once: {} listed exactly once, {} missing, {} listed twice; {:.1} \
                 compare-and-swap attempts a report on average, {:.2} s in all.\n",
                c.writers, c.listed_once, c.missing, c.doubled, c.mean_swaps, c.seconds
            );
        }
        Err(e) => {
            let _ = writeln!(s, "\nConcurrent writers: failed: {e}\n");
        }
    }
}
