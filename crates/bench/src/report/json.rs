//! `results.json`: every run's figure (not only the medians), section by section.

use serde_json::{json, Value};

use crate::coldstart::{Sample, Series};
use crate::evaluate::EvalResult;
use crate::images::ImageResult;
use crate::index::IndexResult;
use crate::machine::Machine;
use crate::offline::Embedding;
use crate::scale::{ChainRun, ModctlRun, ScaleResult, StageRun};
use crate::throughput::Scenario;

use super::{figures, Results};

pub fn json(r: &Results) -> Value {
    let mut out = base_json(r);
    // Only when measured: the fixed-measurement files predate the section.
    if let Some(c) = &r.check_api {
        out["check_api"] = json!({
            "loads": c.loads.iter().map(|l| json!({"clients": l.clients, "requests": l.requests,
                "p50_ms": l.p50_ms, "p99_ms": l.p99_ms, "per_s": l.per_s, "errors": l.errors}))
                .collect::<Vec<_>>(),
            "batch_path_per_s": c.batch_per_s, "image_ms": c.image_ms, "rss_mib": c.rss_mib,
            "failure": c.failure,
        });
        if let Some(Ok(o)) = &c.on_aws {
            out["check_api"]["on_aws"] = json!({"service_latency_ms": o.service_latency_ms,
                "requests": o.requests, "calls_per_request": o.calls_per_request,
                "p50_ms": o.p50_ms, "p99_ms": o.p99_ms,
                "added_p50_ms": o.added_p50_ms, "added_p99_ms": o.added_p99_ms});
        }
    }
    if let Some(rv) = &r.review {
        out["review"] = json!({
            "queue": rv.queue.iter().map(|q| json!({"reports": q.reports, "shape": q.shape,
                "p50_ms": q.p50_ms, "p99_ms": q.p99_ms, "requests_per_call": q.requests_per_call,
                "items": q.items})).collect::<Vec<_>>(),
            "decisions": rv.decisions.iter().map(|d| json!({"reports": d.reports,
                "concurrent": d.concurrent, "decisions": d.decisions, "recorded": d.recorded,
                "per_s": d.per_s})).collect::<Vec<_>>(),
        });
    }
    out
}

fn base_json(r: &Results) -> Value {
    json!({
        "machine": machine_json(&r.machine),
        "cold_start": r.cold.iter().flatten().map(cold_json).collect::<Vec<_>>(),
        "throughput": r.throughput.iter().flatten().map(scenario_json).collect::<Vec<_>>(),
        "evaluate_policy": r.evaluate.as_ref().map(evaluate_json),
        "images": r.images.as_ref().map(images_json),
        "index": r.index.as_ref().map(index_json),
        "scale": r.scale.as_ref().map(scale_json),
        "offline_scoring_messages_per_s": r.offline.as_ref().map(|o| o.scoring.clone()),
        "offline_embedding_messages_per_s": r.offline.as_ref().and_then(|o| match &o.embedding {
            Embedding::Measured { per_s, .. } => Some(per_s.clone()),
            _ => None,
        }),
        "micro": r.micro.iter().map(|m| json!({"id": m.id, "median_ns": m.median_ns})).collect::<Vec<_>>(),
        "build_seconds": r.build.iter().map(|(k, v)| json!({"step": k, "seconds": v})).collect::<Vec<_>>(),
        "harness_seconds": r.harness_seconds,
    })
}

fn machine_json(m: &Machine) -> Value {
    json!({"cpu": m.cpu, "cores": m.cores, "mem_gib": m.mem_gib, "date": m.date,
           "rustc": m.rustc, "python": m.python, "boto3": m.boto3})
}

fn cold_json(x: &Series) -> Value {
    let v = |f: fn(&Sample) -> f64| x.samples.iter().map(f).collect::<Vec<_>>();
    json!({"case": x.case.slug, "runtime": x.lang.name(),
           "first_poll_ms": v(|s| s.first_poll_ms),
           "first_response_ms": v(|s| s.first_response_ms),
           "rss_mib": v(|s| s.rss_mib), "failures": x.failures})
}

fn scenario_json(sc: &Scenario) -> Value {
    let f = figures(sc);
    json!({"scenario": sc.spec.describe(), "messages": sc.spec.messages,
           "cap": sc.spec.cap, "min_requests": sc.spec.min_requests(),
           "messages_per_s": f.msgs_per_s, "ok_requests_per_s": f.ok_per_s,
           "share_of_cap_percent": f.share_of_cap,
           "sustained_share_of_cap_percent": f.sustained_share, "requests": f.requests,
           "throttled": f.capped, "lost": f.lost, "unscored": f.unscored,
           "rss_mib": f.rss, "cpu_us_per_message": f.cpu_us_per_msg,
           "failures": sc.failures})
}

fn evaluate_json(e: &EvalResult) -> Value {
    json!({
        "items": e.items, "over_threshold": e.over_threshold,
        "rss_mib": e.runs.iter().map(|r| r.rss_mib).collect::<Vec<_>>(),
        "seconds": e.runs.iter().map(|r| r.seconds).collect::<Vec<_>>(),
        "failures": e.failures})
}

fn images_json(im: &ImageResult) -> Value {
    json!({
        "images": im.images,
        "images_per_s": im.runs.iter().map(|r| r.images_per_s).collect::<Vec<_>>(),
        "rss_mib": im.runs.iter().map(|r| r.rss_mib).collect::<Vec<_>>(),
        "open_nsfw_images_per_s": im.nsfw.as_ref().ok(),
        "tesseract_images_per_s": im.ocr.as_ref().ok(),
        "failures": im.failures})
}

fn index_json(ix: &IndexResult) -> Value {
    json!({
        "sizes": ix.sizes.iter().map(|z| json!({
            "existing": z.existing, "add_ms": z.add_ms, "add_requests": z.add_requests,
            "rebuild_ms": z.rebuild_ms, "rebuild_requests": z.rebuild_requests})).collect::<Vec<_>>(),
        "concurrent": ix.concurrent.as_ref().ok().map(|c| json!({
            "writers": c.writers, "listed_once": c.listed_once, "missing": c.missing,
            "doubled": c.doubled, "mean_swaps": c.mean_swaps, "seconds": c.seconds})),
    })
}

fn scale_json(sc: &ScaleResult) -> Value {
    json!({
        "template_memory_mb": sc.template_mb,
        "chains": sc.chains.iter().chain(&sc.shortest).map(chain_json).collect::<Vec<_>>(),
        "modctl": sc.modctl.as_ref().map(modctl_json),
    })
}

fn chain_json(c: &ChainRun) -> Value {
    let st = |r: &Option<StageRun>| {
        r.as_ref().map(
            |r| json!({"rss_mib": r.rss_mib, "seconds": r.seconds, "cpu_seconds": r.cpu_seconds}),
        )
    };
    json!({"upload": c.label, "messages": c.messages, "bytes": c.bytes,
           "screen_text": st(&c.screen), "evaluate_policy": st(&c.evaluate),
           "write_report": st(&c.report), "listed": c.listed,
           "unlisted": c.unlisted, "counted": c.counted,
           "failure": c.failure})
}

fn modctl_json(m: &Result<ModctlRun, String>) -> Value {
    match m {
        Ok(m) => json!({"lines": m.lines, "max_rss_mib": m.max_rss_mib, "seconds": m.seconds}),
        Err(e) => json!({"failure": e}),
    }
}
