//! A minimal Lambda Runtime API (`2018-06-01`) on loopback: hands out queued events on
//! `GET /runtime/invocation/next` (holding the poll open when there are none, as Lambda does),
//! and records `…/response`, `…/error` and `/runtime/init/error` with the instant they arrived,
//! so a cold start can be timed from the harness's own clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::http::{read_request, write_response};

const PREFIX: &str = "/2018-06-01/runtime";

/// What the function did, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    /// Every `next` poll.
    pub polls: Vec<Instant>,
    /// When each event was handed out.
    pub delivered: Vec<Instant>,
    pub responses: Vec<Answer>,
    pub init_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub at: Instant,
    pub error: bool,
    pub body: Vec<u8>,
}

struct Shared {
    events: Mutex<VecDeque<(String, Vec<u8>)>>,
    marks: watch::Sender<Marks>,
    /// Set when the emulator is dropped: held polls give up.
    closed: watch::Sender<bool>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.closed.send_replace(true);
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Start on an ephemeral loopback port with these events queued.
    pub async fn start(events: Vec<Vec<u8>>) -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let queue = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("bench-request-{i}"), e))
            .collect();
        let shared = Arc::new(Shared {
            events: Mutex::new(queue),
            marks: watch::channel(Marks::default()).0,
            closed: watch::channel(false).0,
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, s.clone()));
            }
        });
        Ok(RuntimeApi { addr, shared, task })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    pub fn marks(&self) -> Marks {
        self.shared.marks.borrow().clone()
    }

    /// Wait until `done` holds for the marks, or `timeout`; the marks either way.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&Marks) -> bool) -> Marks {
        let mut rx = self.shared.marks.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|m| done(m))).await;
        self.marks()
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    while let Some(req) = read_request(&mut reader, &mut write).await {
        let now = Instant::now();
        let path = req.path.strip_prefix(PREFIX).unwrap_or(&req.path);
        let json = [("content-type", "application/json".to_string())];
        let accepted = br#"{"status":"OK"}"#;
        let written = if req.method == "GET" && path == "/invocation/next" {
            shared.marks.send_modify(|m| m.polls.push(now));
            let next = shared.events.lock().ok().and_then(|mut q| q.pop_front());
            let Some((id, event)) = next else {
                // Nothing more to run: hold the poll, as Lambda does between invocations.
                let mut closed = shared.closed.subscribe();
                let _ = closed.wait_for(|c| *c).await;
                return;
            };
            shared
                .marks
                .send_modify(|m| m.delivered.push(Instant::now()));
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() + 900_000);
            let headers = [
                ("content-type", "application/json".to_string()),
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:bench".to_string(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000;Sampled=0".to_string(),
                ),
            ];
            write_response(&mut write, 200, &headers, &event, false).await
        } else if req.method == "POST" && path == "/init/error" {
            let text = String::from_utf8_lossy(&req.body).into_owned();
            shared.marks.send_modify(|m| m.init_error = Some(text));
            write_response(&mut write, 202, &json, accepted, false).await
        } else if let Some((_, kind)) = req.method.eq("POST").then(|| invocation(path)).flatten() {
            let answer = Answer {
                at: now,
                error: kind == "error",
                body: req.body,
            };
            shared.marks.send_modify(|m| m.responses.push(answer));
            write_response(&mut write, 202, &json, accepted, false).await
        } else {
            write_response(
                &mut write,
                404,
                &json,
                br#"{"message":"unknown route"}"#,
                false,
            )
            .await
        };
        if written.is_err() {
            return;
        }
    }
}

/// `/invocation/<id>/response` or `/invocation/<id>/error`.
fn invocation(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/invocation/")?;
    let (id, kind) = rest.split_once('/')?;
    (kind == "response" || kind == "error").then_some((id, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_routes() {
        assert_eq!(
            invocation("/invocation/r-1/response"),
            Some(("r-1", "response"))
        );
        assert_eq!(invocation("/invocation/r-1/error"), Some(("r-1", "error")));
        assert_eq!(invocation("/invocation/next"), None);
    }
}
