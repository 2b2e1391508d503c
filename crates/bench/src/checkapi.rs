//! The real-time check API offline: `modctl serve` (release, the default embedding detector)
//! driven over loopback by 1, 8 and 32 clients sending distinct lines, against the same kind
//! of lines through the batch path (`modctl moderate` on a log) in the same run; the cost of
//! one `/v1/check/image`; the server's peak RSS.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

use crate::stats::median;
use crate::workload::message;
use crate::Ctx;

/// One load level.
#[derive(Debug, Clone, Default)]
pub struct Load {
    pub clients: usize,
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub per_s: f64,
    /// Answers that were not 200.
    pub errors: usize,
}

#[derive(Debug, Clone, Default)]
pub struct CheckApiResult {
    pub loads: Vec<Load>,
    /// The batch path's messages a second on the same kind of lines (start-up subtracted).
    pub batch_per_s: f64,
    pub batch_lines: usize,
    /// `/v1/check/image` of a 10 KB chat screenshot, one client, ms each.
    pub image_ms: Vec<f64>,
    pub rss_mib: Option<f64>,
    /// The AWS composition's own time over the services', or why it was not measured (None:
    /// not asked for).
    pub on_aws: Option<Result<crate::checkapi_aws::AwsOverhead, String>>,
    pub failure: Option<String>,
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(ctx: &Ctx) -> Result<Server, String> {
    let out = ctx.work.join("serve");
    let mut child = Command::new(ctx.binary("modctl"))
        .args(["serve", "--addr", "127.0.0.1:0", "--quiet", "--out"])
        .arg(&out)
        .current_dir(&ctx.root)
        .env("CHECK_MAX_IN_FLIGHT", "256")
        .env_remove("OFFLINE_DETECTOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("modctl serve: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("modctl serve: {e}"))?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .ok_or_else(|| format!("modctl serve did not start: {line:?}"))?
        .to_string();
    Ok(Server { child, addr })
}

/// A keep-alive HTTP/1.1 connection that sends one request at a time.
pub struct Conn {
    stream: AsyncBufReader<TcpStream>,
}

impl Conn {
    pub async fn open(addr: &str) -> Result<Self, String> {
        let s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        // As curl and hyper's client do: with Nagle on, the body written after the head waits
        // for the server's delayed ACK (40 ms on Linux), which the bench would report as ours.
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Conn {
            stream: AsyncBufReader::new(s),
        })
    }

    /// POST `body`; the status.
    pub async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<u16, String> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(body).await.map_err(|e| e.to_string())?;
        let mut status = 0;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            let n = self
                .stream
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            if line == "\r\n" {
                break;
            }
            if status == 0 {
                status = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
            } else if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut answer = vec![0; length];
        self.stream
            .read_exact(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        Ok(status)
    }
}

/// `clients` connections, `per_client` distinct lines each (numbered from `first`).
async fn load(addr: &str, clients: usize, per_client: usize, first: usize) -> Load {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors = 0;
            let Ok(mut conn) = Conn::open(&addr).await else {
                return (times, per_client);
            };
            for i in 0..per_client {
                let text = message(first + c * per_client + i);
                let body = serde_json::json!({ "text": text }).to_string();
                let t = Instant::now();
                match conn
                    .post("/v1/check/text", "application/json", body.as_bytes())
                    .await
                {
                    Ok(200) => times.push(t.elapsed().as_secs_f64() * 1000.0),
                    _ => errors += 1,
                }
            }
            (times, errors)
        }));
    }
    let mut times = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((mut ts, e)) = t.await {
            times.append(&mut ts);
            errors += e;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| crate::stats::quantile(&times, q);
    Load {
        clients,
        requests: clients * per_client,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        per_s: times.len() as f64 / wall,
        errors,
    }
}

/// `modctl moderate` on a log of `lines` distinct lines, less a one-line run: the batch path's
/// messages a second without start-up.
fn batch_path(ctx: &Ctx, lines: usize, first: usize) -> Result<f64, String> {
    let time = |n: usize, name: &str| -> Result<f64, String> {
        let dir = ctx.work.join(format!("checkapi-{name}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let log = dir.join(format!("{name}.txt"));
        let text: String = (0..n).map(|i| message(first + i) + "\n").collect();
        std::fs::write(&log, text).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let o = Command::new(ctx.binary("modctl"))
            .arg("moderate")
            .arg(&log)
            .args(["--quiet", "--out"])
            .arg(dir.join("out"))
            .current_dir(&ctx.root)
            .env_remove("OFFLINE_DETECTOR")
            .output()
            .map_err(|e| format!("modctl moderate: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "modctl moderate: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let one = time(1, "one")?;
    let all = time(lines, "all")?;
    Ok((lines - 1) as f64 / (all - one).max(1e-3))
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

pub async fn run(ctx: &Ctx, quick: bool) -> CheckApiResult {
    match measure(ctx, quick).await {
        Ok(r) => r,
        Err(e) => CheckApiResult {
            failure: Some(e),
            ..Default::default()
        },
    }
}

async fn measure(ctx: &Ctx, quick: bool) -> Result<CheckApiResult, String> {
    let scale = if quick { 1 } else { 4 };
    let server = start(ctx)?;
    // Warm up: the first requests page the model in.
    let _ = load(&server.addr, 1, 20, 900_000).await;
    let mut loads = Vec::new();
    let mut first = 1_000_000;
    for (clients, per_client) in [(1, 50 * scale), (8, 25 * scale), (32, 12 * scale)] {
        let l = load(&server.addr, clients, per_client, first).await;
        eprintln!(
            "bench:   check API {clients} clients: p50 {:.1} ms, p99 {:.1} ms, {:.0} req/s",
            l.p50_ms, l.p99_ms, l.per_s
        );
        first += clients * per_client;
        loads.push(l);
    }
    let image = std::fs::read(ctx.root.join("events/uploads/squad-chat-screenshot.png"))
        .map_err(|e| e.to_string())?;
    let mut conn = Conn::open(&server.addr).await?;
    let mut image_ms = Vec::new();
    for _ in 0..(5 * scale) {
        let t = Instant::now();
        if conn.post("/v1/check/image", "image/png", &image).await? == 200 {
            image_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let rss_mib = peak_rss_mib(server.child.id());
    drop(server);
    let batch_lines = 400 * scale;
    let batch_per_s = batch_path(ctx, batch_lines, 2_000_000)?;
    eprintln!("bench:   batch path {batch_per_s:.0} msg/s");
    // Measured apart: a failure here keeps the offline figures above.
    let on_aws = crate::checkapi_aws::measure(50 * scale).await;
    match &on_aws {
        Ok(o) => eprintln!(
            "bench:   check API on the AWS adapters: {:.1} ms added at p50 over {:.1} calls",
            o.added_p50_ms, o.calls_per_request
        ),
        Err(e) => eprintln!("bench:   check API on the AWS adapters: not measured: {e}"),
    }
    Ok(CheckApiResult {
        loads,
        batch_per_s,
        batch_lines,
        image_ms,
        rss_mib,
        on_aws: Some(on_aws),
        failure: None,
    })
}

/// The report's section.
pub fn section(s: &mut String, r: &CheckApiResult) {
    use std::fmt::Write;
    let _ = writeln!(s, "## Real-time check API (offline)\n");
    if let Some(e) = &r.failure {
        let _ = writeln!(s, "Not measured: {e}\n");
        return;
    }
    let _ = writeln!(
        s,
        "`modctl serve` (release, default offline detector: lexicons + MiniLM head, micro-batched) \
         on loopback; each client sends distinct lines one request at a time on a keep-alive \
         connection. Batch path: `modctl moderate` on a {}-line log of the same kind of lines, \
         less a one-line run (start-up).\n",
        r.batch_lines
    );
    let _ = writeln!(
        s,
        "| clients | requests | p50 (ms) | p99 (ms) | requests/s | vs batch path | errors |\n|---|---|---|---|---|---|---|"
    );
    for l in &r.loads {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.1} | {:.0} | {:.2}× | {} |",
            l.clients,
            l.requests,
            l.p50_ms,
            l.p99_ms,
            l.per_s,
            l.per_s / r.batch_per_s.max(1e-9),
            l.errors
        );
    }
    let _ = writeln!(
        s,
        "| batch path | {} | | | {:.0} | 1.00× | |\n",
        r.batch_lines, r.batch_per_s
    );
    let _ = writeln!(
        s,
        "`/v1/check/image` of a 10 KB chat screenshot (open_nsfw + Tesseract + its lines screened \
         and judged): {:.0} ms median of {}. Peak RSS of `modctl serve`: {}.\n",
        median(&r.image_ms),
        r.image_ms.len(),
        r.rss_mib
            .map_or("not read".into(), |m| format!("{m:.0} MiB"))
    );
    match &r.on_aws {
        Some(Ok(o)) => crate::checkapi_aws::section(s, o),
        Some(Err(e)) => {
            let _ = writeln!(
                s,
                "On the AWS adapters against the fake: not measured: {e}\n"
            );
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_gives_each_load_against_the_batch_path() {
        let r = CheckApiResult {
            loads: vec![Load {
                clients: 8,
                requests: 200,
                p50_ms: 20.0,
                p99_ms: 45.5,
                per_s: 270.0,
                errors: 0,
            }],
            batch_per_s: 300.0,
            batch_lines: 1600,
            image_ms: vec![400.0, 420.0, 410.0],
            rss_mib: Some(310.4),
            on_aws: Some(Ok(crate::checkapi_aws::AwsOverhead {
                service_latency_ms: 50.0,
                requests: 200,
                calls_per_request: 2.5,
                p50_ms: 131.0,
                p99_ms: 160.0,
                added_p50_ms: 4.2,
                added_p99_ms: 9.9,
            })),
            failure: None,
        };
        let mut s = String::new();
        section(&mut s, &r);
        assert!(
            s.contains("| 8 | 200 | 20.0 | 45.5 | 270 | 0.90× | 0 |"),
            "{s}"
        );
        assert!(
            s.contains("| batch path | 1600 | | | 300 | 1.00× | |"),
            "{s}"
        );
        assert!(
            s.contains("410 ms median of 3") && s.contains("310 MiB"),
            "{s}"
        );
        assert!(
            s.contains("2.5 service calls each") && s.contains("p50 4.2 ms, p99 9.9 ms"),
            "{s}"
        );
        let mut failed = String::new();
        section(
            &mut failed,
            &CheckApiResult {
                failure: Some("modctl serve: not found".into()),
                ..Default::default()
            },
        );
        assert!(failed.contains("Not measured: modctl serve: not found"));
    }
}
