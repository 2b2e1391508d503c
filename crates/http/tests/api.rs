//! The API's HTTP surface over a scripted checker: every route in-process (`oneshot`), the
//! error bodies, the limits, the token, and the same router over a real socket.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use moderation_http::{router, Settings};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{app, call, post, settings, Scripted};
use tokio::sync::Semaphore;

#[tokio::test]
async fn one_message_and_a_batch_get_decisions() {
    let (status, body, _) = call(
        app(),
        post("/v1/check/text", r#"{"text":"i will kill you"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["decision"], "block");
    assert_eq!(body["verdict"], "violation");
    assert!(body["elapsed_ms"].is_u64());
    assert_eq!(body["reasons"], json!(["toxicity 0.97"]));
    let (status, body, _) = call(
        app(),
        post(
            "/v1/check/text",
            r#"{"messages":[{"text":"gg"},{"text":"kill"}]}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let decisions: Vec<&str> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["decision"].as_str())
        .collect();
    assert_eq!(decisions, ["allow", "block"]);
}

#[tokio::test]
async fn a_prompt_gets_its_decision_and_the_negative_prompt() {
    let (status, body, _) = call(
        app(),
        post(
            "/v1/check/prompt",
            r#"{"prompt":"a knight, gore","negative_prompt":"blurry"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["decision"], "warn");
    assert_eq!(body["negative_prompt"], "nudity, gore, blurry");
}

#[tokio::test]
async fn health_answers_without_a_token() {
    let app = router(Arc::new(Scripted::new()), settings(), Some("s3cret".into()));
    let req = Request::get("/healthz")
        .body(Body::empty())
        .expect("request");
    let (status, body, _) = call(app, req).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
}

async fn error_of(req: Request<Body>) -> (StatusCode, String, String) {
    let (status, body, _) = call(app(), req).await;
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn every_bad_request_gets_its_status_and_a_json_error() {
    let (s, code, _) = error_of(post("/v1/check/text", "{not json")).await;
    assert_eq!((s, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    let (s, code, m) = error_of(post("/v1/check/text", r#"{"message":"hi"}"#)).await;
    assert_eq!((s, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(m.contains("does not fit"), "{m}");
    let big = format!(r#"{{"text":"{}"}}"#, "a".repeat(5000));
    let (s, code, _) = error_of(post("/v1/check/text", &big)).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    let req = Request::post("/v1/check/text")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"text":"hi"}"#))
        .expect("request");
    let (s, code, _) = error_of(req).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let (s, code, _) = error_of(post("/v1/nothing", "{}")).await;
    assert_eq!((s, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let req = Request::get("/v1/check/text")
        .body(Body::empty())
        .expect("request");
    let (s, code, _) = error_of(req).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn a_token_is_required_when_set() {
    let app = router(Arc::new(Scripted::new()), settings(), Some("s3cret".into()));
    let (s, body, headers) = call(app.clone(), post("/v1/check/text", r#"{"text":"gg"}"#)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let mut req = post("/v1/check/text", r#"{"text":"gg"}"#);
    req.headers_mut().insert(
        header::AUTHORIZATION,
        "Bearer s3cret".parse().expect("header"),
    );
    let (s, body, _) = call(app, req).await;
    assert_eq!(
        (s, body["decision"].as_str()),
        (StatusCode::OK, Some("allow"))
    );
}

#[tokio::test]
async fn past_the_in_flight_limit_the_answer_is_429_not_a_queue() {
    let gate = Arc::new(Semaphore::new(0));
    let checker = Scripted {
        gate: Some(gate.clone()),
        ..Scripted::new()
    };
    let app = router(Arc::new(checker), settings(), None);
    let held: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(call(
                app.clone(),
                post("/v1/check/text", r#"{"text":"gg"}"#),
            ))
        })
        .collect();
    // Let the four reach the checker and hold their places.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (s, body, headers) = call(app.clone(), post("/v1/check/text", r#"{"text":"gg"}"#)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    gate.add_permits(4);
    for h in held {
        let (s, body, _) = h.await.expect("joined");
        assert_eq!(
            (s, body["decision"].as_str()),
            (StatusCode::OK, Some("allow"))
        );
    }
}

#[tokio::test]
async fn a_check_past_the_deadline_is_503_and_decides_nothing() {
    let gate = Arc::new(Semaphore::new(0));
    let checker = Scripted {
        gate: Some(gate),
        ..Scripted::new()
    };
    let quick = Settings {
        timeout: Duration::from_millis(100),
        ..settings()
    };
    let app = router(Arc::new(checker), quick, None);
    let (s, body, _) = call(app, post("/v1/check/text", r#"{"text":"gg"}"#)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(body.get("decision").is_none());
}

/// One HTTP/1.1 exchange on a fresh connection: the status line and the JSON body.
async fn over_socket(addr: std::net::SocketAddr, raw: String) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stream.write_all(raw.as_bytes()).await.expect("sends");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("reads");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_same_router_over_a_real_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(moderation_http::serve(listener, app(), async {
        let _ = stopped.await;
    }));
    let body = r#"{"text":"i will kill you"}"#;
    let raw = format!(
        "POST /v1/check/text HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, answer) = over_socket(addr, raw).await;
    assert_eq!((status, answer["decision"].as_str()), (200, Some("block")));
    let raw = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_string();
    assert_eq!(over_socket(addr, raw).await, (200, json!({"status": "ok"})));
    // A request line that is not HTTP at all: the server answers 400 or closes; it never hangs.
    let raw = "HELLO\r\n\r\n".to_string();
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), over_socket(addr, raw))
        .await
        .expect("no hang");
    assert!(status == 400 || status == 0, "{status}");
    let _ = stop.send(());
    server.await.expect("joined").expect("stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_connections_gets_answers_or_429s_and_the_server_stays_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    // Checks take 50 ms and 4 run at once: most of the burst finds the server full.
    let checker = Scripted {
        delay: Duration::from_millis(50),
        ..Scripted::new()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(moderation_http::serve(
        listener,
        router(Arc::new(checker), settings(), None),
        async {
            let _ = stopped.await;
        },
    ));
    let body = r#"{"text":"gg"}"#;
    let raw = format!(
        "POST /v1/check/text HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // All 1,000 at once; the client bounds itself only by its 30 s deadline.
    let burst: Vec<_> = (0..1000)
        .map(|_| {
            let raw = raw.clone();
            tokio::spawn(tokio::time::timeout(
                Duration::from_secs(30),
                over_socket(addr, raw),
            ))
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for b in burst {
        let (status, answer) = b.await.expect("joined").expect("answered in time");
        match status {
            200 => {
                assert_eq!(answer["decision"], "allow");
                ok += 1;
            }
            429 => {
                assert_eq!(answer["error"]["code"], "rate_limited", "{answer}");
                limited += 1;
            }
            other => panic!("status {other}: {answer}"),
        }
    }
    assert_eq!(ok + limited, 1000);
    assert!(ok >= 4 && limited > 0, "{ok} answered, {limited} refused");
    let health = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_string();
    assert_eq!(over_socket(addr, health).await.0, 200);
    let _ = stop.send(());
    server.await.expect("joined").expect("stopped cleanly");
}
