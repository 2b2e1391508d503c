//! The machine the figures were measured on.

use std::process::Command;

use crate::Ctx;

#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub mem_gib: f64,
    pub kernel: String,
    pub load_at_start: String,
    pub rustc: String,
    pub python: String,
    pub boto3: String,
    pub date: String,
    /// Sizes of the release binaries measured, bytes.
    pub binaries: Vec<(String, u64)>,
}

impl Machine {
    pub fn one_line(&self) -> String {
        format!(
            "{} × {}, {:.1} GiB, load {}",
            self.cores, self.cpu, self.mem_gib, self.load_at_start
        )
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub async fn describe(ctx: &Ctx) -> Machine {
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, v)| v.trim().to_string());
    let mem_kib: f64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let python = ctx.python.display().to_string();
    let versions = output(
        &python,
        &[
            "-c",
            "import sys, boto3; print(sys.version.split()[0], boto3.__version__)",
        ],
    );
    let (py, boto3) = versions
        .split_once(' ')
        .map_or((versions.clone(), "not installed".to_string()), |(a, b)| {
            (a.to_string(), b.to_string())
        });
    let binaries = ["screen-text", "evaluate-policy"]
        .iter()
        .filter_map(|b| {
            let len = std::fs::metadata(ctx.binary(b)).ok()?.len();
            Some((b.to_string(), len))
        })
        .collect();
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_gib: mem_kib / 1024.0 / 1024.0,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        load_at_start: read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        rustc: output("rustc", &["--version"]),
        python: py,
        boto3,
        date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        binaries,
    }
}
