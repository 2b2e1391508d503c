//! The criterion micro-benchmarks (`benches/micro.rs`, run by `make bench` before the harness):
//! read back their medians from `target/criterion/**/new/{benchmark,estimates}.json`.

use std::path::Path;

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Micro {
    pub id: String,
    /// Median time per iteration, nanoseconds.
    pub median_ns: f64,
    /// Elements per iteration when the benchmark declared a throughput.
    pub elements: Option<u64>,
}

pub fn read(dir: &Path) -> Vec<Micro> {
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn walk(dir: &Path, out: &mut Vec<Micro>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(m) = one(&path) {
                out.push(m);
            }
        } else if path.file_name().is_some_and(|n| n != "report") {
            walk(&path, out);
        }
    }
}

fn json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn one(new: &Path) -> Option<Micro> {
    let bench = json(&new.join("benchmark.json"))?;
    let est = json(&new.join("estimates.json"))?;
    Some(Micro {
        id: bench["full_id"].as_str()?.to_string(),
        median_ns: est["median"]["point_estimate"].as_f64()?,
        elements: bench["throughput"]["Elements"].as_u64(),
    })
}
