//! Run a Lambda bootstrap (the Rust release binary, or the Python baseline) as a child process
//! under its own Runtime API emulator, and time it from just before `exec`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::runtime_api::{Answer, Marks, RuntimeApi};

pub struct Launch {
    /// Names the log file (`<log_dir>/<label>.log`).
    pub label: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to a cleared environment (plus `PATH`, `LANG` and the Runtime API variables).
    pub env: Vec<(String, String)>,
    pub events: Vec<Vec<u8>>,
    pub log_dir: PathBuf,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Run {
    /// exec → the first `GET …/invocation/next`: the init phase.
    pub to_first_poll: Duration,
    /// exec → the first response (or error) posted back.
    pub to_first_response: Duration,
    /// First event handed out → its answer: the invocation alone, without init.
    pub invoke: Duration,
    pub responses: Vec<Answer>,
    /// `VmHWM`: the process's peak resident set, read before it is stopped.
    pub peak_rss_kib: u64,
    /// User + system CPU time of the process (10 ms resolution).
    pub cpu: Duration,
}

impl Run {
    /// The first answer, when it was a successful response; otherwise the error text.
    pub fn first_ok(&self) -> Result<&[u8], String> {
        match self.responses.first() {
            Some(a) if !a.error => Ok(&a.body),
            Some(a) => Err(String::from_utf8_lossy(&a.body).into_owned()),
            None => Err("no response".into()),
        }
    }
}

pub async fn run(l: &Launch) -> Result<Run, String> {
    let n = l.events.len();
    let api = RuntimeApi::start(l.events.clone())
        .await
        .map_err(|e| format!("runtime API emulator: {e}"))?;
    std::fs::create_dir_all(&l.log_dir).map_err(|e| format!("{}: {e}", l.log_dir.display()))?;
    let log_path = l.log_dir.join(format!("{}.log", l.label));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&l.program);
    cmd.args(&l.args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
        .env("AWS_LAMBDA_FUNCTION_NAME", &l.label)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .envs(l.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log);
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", l.program.display()))?;
    let pid = child.id();
    // Done: every event answered and the function back at `next` (its work is over).
    let done = |m: &Marks| m.init_error.is_some() || (m.responses.len() >= n && m.polls.len() > n);
    let marks = loop {
        let m = api.wait_for(Duration::from_millis(50), done).await;
        if done(&m) {
            break m;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{} exited ({status}) before answering; log: {}",
                l.label,
                log_tail(&log_path)
            ));
        }
        if t0.elapsed() > l.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} gave no answer within {:?}; log: {}",
                l.label,
                l.timeout,
                log_tail(&log_path)
            ));
        }
    };
    let peak_rss_kib = peak_rss_kib(pid).unwrap_or(0);
    let cpu = cpu_time(pid).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    if let Some(e) = &marks.init_error {
        return Err(format!("{}: init error {e}", l.label));
    }
    let since = |t: Option<&Instant>| t.map(|t| t.duration_since(t0)).unwrap_or_default();
    let first_answer = marks.responses.first().map(|a| &a.at);
    Ok(Run {
        to_first_poll: since(marks.polls.first()),
        to_first_response: since(first_answer),
        invoke: match (marks.delivered.first(), first_answer) {
            (Some(d), Some(a)) => a.duration_since(*d),
            _ => Duration::ZERO,
        },
        responses: marks.responses,
        peak_rss_kib,
        cpu,
    })
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// `VmHWM` from `/proc/<pid>/status`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kib(&status, "VmHWM:")
}

fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// utime + stime from `/proc/<pid>/stat` (clock ticks of 1/100 s, Linux's USER_HZ).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu(&stat)
}

fn stat_cpu(stat: &str) -> Option<Duration> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_parse() {
        let status =
            "Name:\tscreen-text\nVmPeak:\t  100 kB\nVmHWM:\t   23456 kB\nVmRSS:\t 2000 kB\n";
        assert_eq!(status_field_kib(status, "VmHWM:"), Some(23456));
        let stat = "4242 (odd) name) S 1 4242 4242 0 -1 4194304 100 0 0 0 150 25 0 0 20 0 1 0";
        assert_eq!(stat_cpu(stat), Some(Duration::from_millis(1750)));
    }
}
