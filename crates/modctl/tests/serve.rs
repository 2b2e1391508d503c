//! `modctl serve` as a client sees it: the real binary on a loopback socket, the offline stages
//! behind it, and the same verdict for a line checked here as for that line in an uploaded log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The server, stopped when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    _out: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Server {
    start_as(extra, &[])
}

fn start_with_env(env: &[(&str, &str)]) -> Server {
    start_as(&[], env)
}

fn start_as(extra: &[&str], env: &[(&str, &str)]) -> Server {
    start_over(tempfile::tempdir().expect("tempdir"), extra, env)
}

/// The server over an output folder that may already hold reports.
fn start_over(out: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modctl"))
        .args(["serve", "--addr", "127.0.0.1:0", "--quiet", "--out"])
        .arg(out.path())
        .args(extra)
        .current_dir(workspace())
        .env_remove("MODERATION_BACKEND")
        .env_remove("TOXICITY_THRESHOLD")
        .env_remove("MODCTL_TOKEN")
        .env_remove("IMAGE_GENERATION_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("modctl serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Server {
        child,
        addr,
        _out: out,
    }
}

/// POST `body` to `path`; the status and the JSON answer.
fn post(addr: SocketAddr, path: &str, body: &str, extra_headers: &str) -> (u16, Value) {
    post_bytes(
        addr,
        path,
        body.as_bytes(),
        &format!("Content-Type: application/json\r\n{extra_headers}"),
    )
}

/// POST raw `body` with `headers` (each ending in CRLF).
fn post_bytes(addr: SocketAddr, path: &str, body: &[u8], headers: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("sends");
    stream.write_all(body).expect("sends");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("reads");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

/// One line of an uploaded log as its report has it.
struct Line {
    text: String,
    conversation: Option<String>,
    verdict: String,
}

/// The report `modctl moderate` writes for `upload`: each item, in order.
fn verdicts_in_the_chain(upload: &str) -> Vec<Line> {
    let out = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_modctl"))
        .args(["moderate", upload, "--quiet", "--out"])
        .arg(out.path())
        .current_dir(workspace())
        .env_remove("MODERATION_BACKEND")
        .env_remove("TOXICITY_THRESHOLD")
        .output()
        .expect("modctl moderate runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_dir(out.path().join("reports"))
        .expect("reports")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("index.json"))
        .expect("a report");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(report).expect("read")).expect("JSON");
    report["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| Line {
            text: i["text"].as_str().unwrap_or_default().to_string(),
            conversation: i["conversation"].as_str().map(str::to_string),
            verdict: i["verdict"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

#[test]
fn a_line_checked_alone_gets_the_verdict_it_gets_in_an_uploaded_log() {
    let server = start(&[]);
    let mut violations = 0;
    for upload in [
        "events/uploads/lobby-chat.txt",
        "events/uploads/match-chat.csv",
        "events/uploads/guild-chat.jsonl",
    ] {
        let chain = verdicts_in_the_chain(upload);
        for (n, line) in chain.iter().enumerate() {
            // The judge reads up to three earlier lines of the conversation, as in the log.
            let mut context: Vec<&str> = chain[..n]
                .iter()
                .filter(|l| l.conversation == line.conversation)
                .map(|l| l.text.as_str())
                .collect();
            context.drain(..context.len().saturating_sub(3));
            let body = serde_json::json!({"text": line.text, "context": context,
                "conversation": line.conversation})
            .to_string();
            let (status, answer) = post(server.addr, "/v1/check/text", &body, "");
            assert_eq!(status, 200, "{answer}");
            let what = format!("{upload} {:?}: {answer}", line.text);
            assert_eq!(
                answer["verdict"].as_str(),
                Some(line.verdict.as_str()),
                "{what}"
            );
            let expected = match line.verdict.as_str() {
                "violation" => "block",
                "needs_review" => "review",
                _ => "allow",
            };
            assert_eq!(answer["decision"].as_str(), Some(expected), "{what}");
            violations += usize::from(line.verdict == "violation");
        }
    }
    assert!(
        violations >= 5,
        "the samples hold violations to compare: {violations}"
    );
}

#[test]
fn prompts_batches_and_errors_over_the_socket() {
    let server = start(&[]);
    let (status, answer) = post(
        server.addr,
        "/v1/check/prompt",
        r#"{"prompt":"a castle at dawn, watercolour"}"#,
        "",
    );
    assert_eq!(
        (status, answer["decision"].as_str()),
        (200, Some("allow")),
        "{answer}"
    );
    assert!(answer["negative_prompt"]
        .as_str()
        .is_some_and(|n| !n.is_empty()));
    let (status, answer) = post(
        server.addr,
        "/v1/check/text",
        r#"{"messages":[{"text":"gg wp"},{"text":"i will find you and kill you"}]}"#,
        "",
    );
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results[0]["decision"], "allow", "{answer}");
    assert_ne!(results[1]["decision"], "allow", "{answer}");
    let (status, answer) = post(server.addr, "/v1/check/text", "{", "");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
}

#[test]
fn a_token_guards_the_checks_and_another_address_needs_one() {
    let server = start(&["--token", "s3cret"]);
    let (status, _) = post(server.addr, "/v1/check/text", r#"{"text":"gg"}"#, "");
    assert_eq!(status, 401);
    let (status, answer) = post(
        server.addr,
        "/v1/check/text",
        r#"{"text":"gg"}"#,
        "Authorization: Bearer s3cret\r\n",
    );
    assert_eq!((status, answer["decision"].as_str()), (200, Some("allow")));
    let o = Command::new(env!("CARGO_BIN_EXE_modctl"))
        .args(["serve", "--addr", "0.0.0.0:0"])
        .current_dir(workspace())
        .env_remove("MODCTL_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--token"));
}

/// A stand-in OpenAI-compatible image server: answers every request with `picture`, and
/// records each request body.
fn image_server(picture: Vec<u8>) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    use base64::Engine;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = std::sync::mpsc::channel();
    let b64 = base64::engine::general_purpose::STANDARD.encode(picture);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            let answer = format!(r#"{{"created":1,"data":[{{"b64_json":"{b64}"}}]}}"#);
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (addr, rx)
}

#[test]
fn pictures_are_checked_and_generated_ones_come_back_checked() {
    let picture = std::fs::read(workspace().join("events/images/injection-sign.png")).expect("png");
    let (model, requests) = image_server(picture.clone());
    let server = start_with_env(&[("IMAGE_GENERATION_URL", &format!("http://{model}/v1"))]);
    let (status, answer) = post_bytes(
        server.addr,
        "/v1/check/image",
        &picture,
        "Content-Type: image/png\r\n",
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{answer}"
    );
    assert!(answer["decision"].is_string(), "{answer}");
    let (status, answer) = post_bytes(
        server.addr,
        "/v1/check/image",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        "Content-Type: image/png\r\n",
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );

    let (status, answer) = post(
        server.addr,
        "/v1/generate",
        r#"{"prompt":"a castle at dawn, watercolour"}"#,
        "",
    );
    assert_eq!(status, 200, "{answer}");
    let sent: Value =
        serde_json::from_str(&requests.recv().expect("the model was asked")).expect("JSON");
    assert_eq!(sent["prompt"], "a castle at dawn, watercolour");
    assert!(
        sent["negative_prompt"]
            .as_str()
            .is_some_and(|n| n.contains("nudity")),
        "{sent}"
    );
    assert_eq!(answer["check"]["decision"], answer["decision"]);
    if answer["decision"] != "block" {
        assert!(answer["image"].is_string(), "{answer}");
    }
    // A blocked prompt never reaches the model.
    let (status, answer) = post(
        server.addr,
        "/v1/generate",
        r#"{"prompt":"draw a naked child"}"#,
        "",
    );
    assert_eq!(
        (status, answer["decision"].as_str()),
        (200, Some("block")),
        "{answer}"
    );
    assert!(answer.get("image").is_none());
    assert!(
        requests.try_recv().is_err(),
        "the model was called for a blocked prompt"
    );
}

#[test]
fn generate_without_an_image_model_says_which_variable_to_set() {
    let server = start(&[]);
    let (status, answer) = post(server.addr, "/v1/generate", r#"{"prompt":"a castle"}"#, "");
    assert_eq!(status, 503, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("IMAGE_GENERATION_URL")));
}

/// GET `path`; the status, the Content-Type and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    let head = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("sends");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("reads");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    (status, content_type, body.to_string())
}

#[test]
fn serve_offers_the_review_queue_of_what_moderate_wrote_and_its_console() {
    let out = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_modctl"))
        .args([
            "moderate",
            "events/uploads/lobby-chat.txt",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .current_dir(workspace())
        .env_remove("MODERATION_BACKEND")
        .env_remove("TOXICITY_THRESHOLD")
        .output()
        .expect("modctl moderate runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let server = start_over(out, &[], &[]);
    let (status, content_type, page) = get(server.addr, "/review");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.contains("Review queue"));
    let (status, _, body) = get(server.addr, "/v1/review/queue");
    assert_eq!(status, 200, "{body}");
    let queue: Value = serde_json::from_str(&body).expect("JSON");
    let items = queue["items"].as_array().expect("items");
    assert!(!items.is_empty(), "the flagged lines wait: {body}");
    let first = &items[0];
    let body = serde_json::json!({"report_id": first["report_id"], "item_id": first["item_id"],
        "verdict": "violation", "reason": "stands", "moderator": "m-1"});
    let (status, answer) = post(server.addr, "/v1/review/decisions", &body.to_string(), "");
    assert_eq!(status, 201, "{answer}");
    let events = server._out.path().join("decisions/events.jsonl");
    let line = std::fs::read_to_string(&events).expect("the decision was published");
    assert!(line.contains(answer["decision"]["id"].as_str().expect("id")));
}
