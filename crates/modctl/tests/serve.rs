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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Server {
    let out = std::env::temp_dir().join(format!("modctl-serve-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_modctl"))
        .args(["serve", "--addr", "127.0.0.1:0", "--quiet", "--out"])
        .arg(&out)
        .args(extra)
        .current_dir(workspace())
        .env_remove("MODERATION_BACKEND")
        .env_remove("TOXICITY_THRESHOLD")
        .env_remove("MODCTL_TOKEN")
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
    Server { child, addr }
}

/// POST `body` to `path`; the status and the JSON answer.
fn post(addr: SocketAddr, path: &str, body: &str, extra_headers: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{extra_headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("sends");
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
