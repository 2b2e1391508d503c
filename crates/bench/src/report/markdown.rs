//! `results.md`: the machine, the goals table, the measured sections in a fixed order, and the
//! time the whole run took.

use std::fmt::Write as _;

use crate::machine::Machine;
use crate::micro::Micro;
use crate::offline::{Embedding, OfflineResult, Whisper};
use crate::stats::median;

use super::goals::goals;
use super::tables::{
    cold_section, images_section, index_section, memory_section, scale_section, throughput_section,
};
use super::{med_range, Results};

pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    machine_header(&mut s, &r.machine);
    goals_section(&mut s, r);
    if let Some(cold) = &r.cold {
        cold_section(&mut s, cold);
    }
    if let Some(tp) = &r.throughput {
        throughput_section(&mut s, tp);
    }
    memory_section(&mut s, r);
    scale_section(&mut s, r);
    images_section(&mut s, r);
    index_section(&mut s, r);
    if let Some(o) = &r.offline {
        offline_section(&mut s, o);
    }
    if let Some(c) = &r.check_api {
        crate::checkapi::section(&mut s, c);
    }
    if let Some(rv) = &r.review {
        crate::review::section(&mut s, rv);
    }
    micro_section(&mut s, &r.micro);
    time_section(&mut s, r);
    s
}

/// The title, the machine the figures were measured on and the binaries' sizes.
fn machine_header(s: &mut String, m: &Machine) {
    let _ = writeln!(s, "# Benchmarks (`make bench`)\n");
    let _ = writeln!(
        s,
        "Measured {} on {} cores ({}), {:.1} GiB RAM, Linux {}; {}; Python {} with boto3 {}. \
         Load average at the start: {} (a shared machine: other builds may run alongside). \
         Figures are medians over the runs, with the range in brackets.\n",
        m.date, m.cores, m.cpu, m.mem_gib, m.kernel, m.rustc, m.python, m.boto3, m.load_at_start
    );
    if !m.binaries.is_empty() {
        let sizes: Vec<String> = m
            .binaries
            .iter()
            .map(|(b, n)| format!("{b} {:.1} MB", *n as f64 / 1e6))
            .collect();
        let _ = writeln!(
            s,
            "Binaries measured: `target/release/` (the workspace release profile: opt-level z, LTO, \
             one codegen unit, panic = abort, stripped): {}.\n",
            sizes.join(", ")
        );
    }
}

fn goals_section(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## Goals\n");
    let _ = writeln!(s, "| goal | target | measured | met |\n|---|---|---|---|");
    for g in goals(r) {
        let met = match g.met {
            Some(true) => "yes".to_string(),
            Some(false) => format!("**no** — {}", g.why),
            None => format!("— {}", g.why),
        };
        let _ = writeln!(s, "| {} | {} | {} | {met} |", g.what, g.target, g.measured);
    }
    s.push('\n');
}

fn offline_section(s: &mut String, o: &OfflineResult) {
    let _ = writeln!(s, "## Offline backend\n");
    let _ = writeln!(
        s,
        "- Toxicity scoring (embedded linear model + lexicons, `OfflineDetector::score`), one \
         thread, {} distinct chat messages a run: **{} messages/s** over {} runs.",
        o.messages_per_run,
        med_range(&o.scoring, 0),
        o.scoring.len()
    );
    let _ = writeln!(
        s,
        "- Embedding detector (lexicons + all-MiniLM-L6-v2 head): {}.",
        embedding_figure(o)
    );
    let _ = writeln!(
        s,
        "- Whisper real-time factor: {}.\n",
        whisper_figure(&o.whisper)
    );
}

/// The embedding detector's rate, and how much slower it is than the lexicons alone.
fn embedding_figure(o: &OfflineResult) -> String {
    match &o.embedding {
        Embedding::Measured {
            per_s,
            messages_per_run,
        } => format!(
            "**{} messages/s** ({messages_per_run} distinct messages a run, batches of 32, \
             all cores; {:.0}× slower than the lexicons alone on one core)",
            med_range(per_s, 0),
            median(&o.scoring) / median(per_s)
        ),
        Embedding::NotBuilt => "not measured: semantic feature not built".into(),
        Embedding::Failed(e) => format!("failed: {e}"),
    }
}

fn whisper_figure(whisper: &Whisper) -> String {
    match whisper {
        Whisper::Measured { rtf, clip_seconds } => format!(
            "RTF **{}** on a {clip_seconds:.0} s espeak-ng clip (processing time ÷ audio time)",
            med_range(rtf, 3)
        ),
        Whisper::NotBuilt => "not measured: whisper feature not built (hook in \
                              `crates/bench/src/offline.rs`)"
            .into(),
        Whisper::Failed(e) => format!("failed: {e}"),
    }
}

fn micro_section(s: &mut String, micro: &[Micro]) {
    if micro.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Micro-benchmarks (criterion, `crates/bench/benches/micro.rs`)\n"
    );
    let _ = writeln!(
        s,
        "| benchmark | median time | per element |\n|---|---|---|"
    );
    for b in micro {
        let per = b.elements.map_or("—".to_string(), |n| {
            let ns = b.median_ns / n as f64;
            format!("{} ({})", fmt_ns(ns), fmt_rate(1e9 / ns))
        });
        let _ = writeln!(s, "| `{}` | {} | {per} |", b.id, fmt_ns(b.median_ns));
    }
    s.push('\n');
}

/// Each build step, the harness run, and `make bench` in all when run through make.
fn time_section(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## Time taken\n");
    for (step, secs) in &r.build {
        let _ = writeln!(s, "- {step}: {secs:.0} s");
    }
    let _ = writeln!(
        s,
        "- harness run (all measurements above): {:.0} s",
        r.harness_seconds
    );
    if let Some(total) = r.total_seconds {
        // The steps named `…: run` are measurements, not builds.
        let build: f64 = r
            .build
            .iter()
            .filter(|(k, _)| !k.ends_with(": run"))
            .map(|(_, v)| v)
            .sum();
        let _ = writeln!(
            s,
            "- **`make bench` in all: {:.1} min**, of which building {:.1} min",
            total / 60.0,
            build / 60.0
        );
    }
}

fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1} k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0}/s")
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
