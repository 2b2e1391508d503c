//! The review loop end to end over moderated samples: the queue, decisions, undo, appeals,
//! the audit and its CSV, statements of reasons, and the report showing the latest decision —
//! asked in-process through the router, and over a real socket with 50 decisions at once.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use moderation_tests::review::{events_path, moderate_samples, review_router, reviewer};
use moderation_tests::{read_doc, FIXTURE_BUCKET};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Loop {
    router: axum::Router,
    dir: tempfile::TempDir,
}

async fn moderated() -> Loop {
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = moderate_samples(dir.path()).await;
    let router = review_router(reviewer(dir.path(), apps));
    Loop { router, dir }
}

async fn call(l: &Loop, method: &str, path: &str, body: Option<Value>) -> (u16, Value, String) {
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .expect("request");
    let resp = l.router.clone().oneshot(req).await.expect("answered");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

async fn queue(l: &Loop, query: &str) -> Vec<Value> {
    let (status, body, text) = call(l, "GET", &format!("/v1/review/queue{query}"), None).await;
    assert_eq!(status, 200, "{text}");
    body["items"].as_array().expect("items").clone()
}

fn decision(item: &Value, verdict: &str, moderator: &str) -> Value {
    json!({"report_id": item["report_id"], "item_id": item["item_id"], "verdict": verdict,
           "reason": format!("{verdict} by {moderator}"), "moderator": moderator})
}

fn report_item(l: &Loop, report_id: &str, item_id: &str) -> Value {
    let report: Value = read_doc(l.dir.path(), &format!("reports/{report_id}.json"));
    report["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == item_id))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn flagged_items_wait_oldest_first_and_filter_by_state_category_and_kind() {
    let l = moderated().await;
    let open = queue(&l, "?limit=500").await;
    assert!(open.len() >= 10, "{} open items", open.len());
    for item in &open {
        assert_eq!(item["state"], "open");
        let v = item["verdict"].as_str().expect("verdict");
        assert!(v == "violation" || v == "needs_review", "{item}");
        for field in [
            "report_id",
            "item_id",
            "source",
            "categories",
            "text",
            "created_at",
        ] {
            assert!(!item[field].is_null(), "{field} missing in {item}");
        }
    }
    let times: Vec<&str> = open
        .iter()
        .filter_map(|i| i["created_at"].as_str())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {times:?}"
    );
    let pictures = queue(&l, "?kind=image&limit=500").await;
    assert!(!pictures.is_empty() && pictures.iter().all(|i| i["source"]["kind"] == "image"));
    let threats = queue(&l, "?category=violence_or_threat").await;
    assert!(!threats.is_empty());
    assert!(threats.iter().all(|i| i["categories"]
        .as_array()
        .is_some_and(|c| c.contains(&json!("violence_or_threat")))));
    assert!(queue(&l, "?state=decided").await.is_empty());
    // Pages of the queue meet without a gap or an overlap.
    let (_, first, _) = call(&l, "GET", "/v1/review/queue?limit=3", None).await;
    let next = first["next"].as_str().expect("a cursor");
    let rest = queue(&l, &format!("?after={next}&limit=500")).await;
    assert_eq!(
        first["items"].as_array().expect("items").len() + rest.len(),
        open.len()
    );
    let (status, body, _) = call(&l, "GET", "/v1/review/queue?state=closed", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
}

#[tokio::test]
async fn a_decision_is_recorded_published_and_shown_beside_the_automatic_verdict() {
    let l = moderated().await;
    let item = queue(&l, "").await.remove(0);
    let (rid, iid) = (
        item["report_id"].as_str().expect("id"),
        item["item_id"].as_str().expect("id"),
    );
    let (status, body, text) = call(
        &l,
        "POST",
        "/v1/review/decisions",
        Some(decision(&item, "no_violation", "m-1")),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let d = &body["decision"];
    assert_eq!(d["verdict"], "no_violation");
    assert_eq!(d["moderator"], "m-1");
    assert!(d["id"].is_string() && d["at"].is_string());
    assert!(d["policy_version"]
        .as_str()
        .is_some_and(|v| v.starts_with("sha256:")));
    assert!(!d["models"].as_array().expect("models").is_empty());
    // The report shows it; its own verdict stays.
    let shown = report_item(&l, rid, iid);
    assert_eq!(shown["decision"]["verdict"], "no_violation");
    assert_eq!(shown["verdict"], item["verdict"]);
    let page = std::fs::read_to_string(
        l.dir
            .path()
            .join(FIXTURE_BUCKET)
            .join(format!("reports/{rid}.html")),
    )
    .expect("page");
    assert!(page.contains("data-decision=\"no_violation\""));
    // Out of the open queue, into the decided one.
    assert!(!queue(&l, "?limit=500")
        .await
        .iter()
        .any(|i| i["report_id"] == rid && i["item_id"] == iid));
    let decided = queue(&l, "?state=decided").await;
    assert!(decided
        .iter()
        .any(|i| i["item_id"] == iid && i["decision"]["verdict"] == "no_violation"));
    let events = std::fs::read_to_string(events_path(l.dir.path())).expect("events");
    let event: Value = serde_json::from_str(events.lines().next().expect("a line")).expect("JSON");
    assert_eq!(event["detail-type"], "moderation.decision");
    assert_eq!(event["detail"]["id"], d["id"]);

    // Undo is a new record; the item waits again and the report no longer shows it.
    let undo =
        json!({"report_id": rid, "item_id": iid, "decision_id": d["id"], "moderator": "m-1"});
    let (status, _, text) = call(&l, "POST", "/v1/review/undo", Some(undo.clone())).await;
    assert_eq!(status, 201, "{text}");
    assert!(report_item(&l, rid, iid)["decision"].is_null());
    assert!(queue(&l, "?limit=500")
        .await
        .iter()
        .any(|i| i["item_id"] == iid && i["report_id"] == rid));
    let (status, _, _) = call(&l, "POST", "/v1/review/undo", Some(undo)).await;
    assert_eq!(status, 400, "the same decision cannot be taken back twice");

    let (_, audit, _) = call(&l, "GET", &format!("/v1/review/reports/{rid}/audit"), None).await;
    let kinds: Vec<&str> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["decision", "undo"]);
    let (status, _, csv) = call(&l, "GET", "/v1/review/decisions.csv", None).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("at,kind,id,report_id,item_id,verdict,moderator,reason"));
    assert_eq!(lines.len(), 3, "{csv}");
}

#[tokio::test]
async fn bad_requests_name_the_problem_and_unknown_ones_are_404() {
    let l = moderated().await;
    let item = queue(&l, "").await.remove(0);
    let cases = [
        (
            json!({"item_id": item["item_id"], "verdict": "violation", "moderator": "m"}),
            400,
            "report_id",
        ),
        (
            json!({"report_id": item["report_id"], "item_id": item["item_id"], "verdict": "maybe", "moderator": "m"}),
            400,
            "verdict",
        ),
        (
            json!({"report_id": item["report_id"], "item_id": item["item_id"], "verdict": "violation"}),
            400,
            "moderator",
        ),
        (
            json!({"report_id": "no-such-report", "item_id": "line-1", "verdict": "violation", "moderator": "m"}),
            404,
            "no-such-report",
        ),
        (
            json!({"report_id": item["report_id"], "item_id": "line-99999", "verdict": "violation", "moderator": "m"}),
            404,
            "line-99999",
        ),
        (
            json!({"report_id": "../../etc", "item_id": "x", "verdict": "violation", "moderator": "m"}),
            400,
            "report_id",
        ),
    ];
    for (body, want, names) in cases {
        let (status, answer, text) =
            call(&l, "POST", "/v1/review/decisions", Some(body.clone())).await;
        assert_eq!(status, want, "{body} → {text}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(message.contains(names), "{message} should name {names}");
    }
    let (status, _, _) = call(
        &l,
        "POST",
        "/v1/review/appeals",
        Some(json!({"report_id": item["report_id"], "item_id": item["item_id"]})),
    )
    .await;
    assert_eq!(status, 400, "an appeal needs a statement");
    let (status, _, _) = call(&l, "GET", "/v1/review/items/no-such-report/line-1", None).await;
    assert_eq!(status, 404);
    assert!(!events_path(l.dir.path()).exists(), "nothing was published");
}

#[tokio::test]
async fn an_appeal_is_checked_again_queued_for_a_person_and_settled_by_the_next_decision() {
    let l = moderated().await;
    let open = queue(&l, "?category=violence_or_threat").await;
    let item = open
        .iter()
        .find(|i| i["verdict"] == "violation")
        .expect("a threat")
        .clone();
    let (rid, iid) = (
        item["report_id"].as_str().expect("id"),
        item["item_id"].as_str().expect("id"),
    );
    let (status, _, _) = call(
        &l,
        "POST",
        "/v1/review/decisions",
        Some(decision(&item, "violation", "m-1")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body, text) = call(
        &l,
        "POST",
        "/v1/review/appeals",
        Some(json!({"report_id": rid, "item_id": iid, "statement": "I was quoting a film"})),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let appeal = &body["appeal"];
    assert_eq!(appeal["state"], "open");
    assert_eq!(appeal["original"], "violation");
    // Judged again against today's policy, with its passages.
    assert_eq!(appeal["reevaluation"]["verdict"], "violation");
    assert!(!appeal["reevaluation"]["evaluation"]["references"]
        .as_array()
        .expect("refs")
        .is_empty());
    let appeals = queue(&l, "?state=appeal").await;
    assert!(appeals
        .iter()
        .any(|i| i["item_id"] == iid && i["appeal"]["statement"] == "I was quoting a film"));
    let (status, _, _) = call(
        &l,
        "POST",
        "/v1/review/appeals",
        Some(json!({"report_id": rid, "item_id": iid, "statement": "again"})),
    )
    .await;
    assert_eq!(status, 400, "one open appeal at a time");
    let (status, _, _) = call(
        &l,
        "POST",
        "/v1/review/decisions",
        Some(decision(&item, "no_violation", "m-2")),
    )
    .await;
    assert_eq!(status, 201);
    let shown = report_item(&l, rid, iid);
    assert_eq!(shown["appeal"]["state"], "overturned");
    assert_eq!(shown["decision"]["moderator"], "m-2");
    assert!(queue(&l, "?state=appeal").await.is_empty());

    let (status, s, _) = call(
        &l,
        "GET",
        &format!("/v1/review/statements/{rid}/{iid}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (s["decided_by"].as_str(), s["verdict"].as_str()),
        (Some("human"), Some("no_violation"))
    );
    assert!(s["how_to_appeal"]
        .as_str()
        .is_some_and(|h| h.contains("/v1/review/appeals")));
    let (status, _, page) = call(&l, "GET", &format!("/review/statements/{rid}/{iid}"), None).await;
    assert_eq!(status, 200);
    assert!(page.contains("Statement of reasons") && page.contains("by a person"));
}

#[tokio::test]
async fn an_item_of_a_report_with_nothing_flagged_can_be_escalated_and_then_waits() {
    use moderation_core::chain::keys::{self, Stage};
    use moderation_tests::deliver_via_sqs;
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = moderate_samples(dir.path()).await;
    // A clean chat log: its report lists nothing in the queue.
    let key = "incoming/text/clean-lobby.txt";
    let path = dir.path().join(FIXTURE_BUCKET).join(key);
    std::fs::write(&path, "gg everyone\nnice shot\nheal pls\n").expect("staged");
    deliver_via_sqs(&apps, Stage::ScreenText, key, 1).await;
    let id = keys::source_id(FIXTURE_BUCKET, key);
    deliver_via_sqs(&apps, Stage::EvaluatePolicy, &keys::screened_key(&id), 1).await;
    deliver_via_sqs(&apps, Stage::WriteReport, &keys::evaluated_key(&id), 1).await;
    let l = Loop {
        router: review_router(reviewer(dir.path(), apps)),
        dir,
    };
    let report: Value = read_doc(l.dir.path(), &format!("reports/{id}.json"));
    assert_eq!(report["summary"]["violations"], 0, "{report}");
    assert!(!queue(&l, "?limit=500")
        .await
        .iter()
        .any(|i| i["report_id"] == id.as_str()));
    let body = json!({"report_id": id, "item_id": "line-1", "verdict": "escalated",
                      "reason": "a player reported it", "moderator": "m-1"});
    let (status, _, text) = call(&l, "POST", "/v1/review/decisions", Some(body)).await;
    assert_eq!(status, 201, "{text}");
    let escalated = queue(&l, "?state=escalated").await;
    assert!(
        escalated
            .iter()
            .any(|i| i["item_id"] == "line-1" && i["report_id"] == id.as_str()),
        "{escalated:?}"
    );
    assert_eq!(
        report_item(&l, &id, "line-1")["decision"]["verdict"],
        "escalated"
    );
}

/// 50 moderators decide on one report at once, over a real socket: every decision is
/// recorded, applied, published and listed in the audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_decisions_on_one_report_all_survive() {
    let l = moderated().await;
    let open = queue(&l, "?limit=500").await;
    let rid = open[0]["report_id"].as_str().expect("id").to_string();
    let items: Vec<Value> = open
        .iter()
        .filter(|i| i["report_id"] == rid.as_str())
        .cloned()
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    let router = l.router.clone();
    tokio::spawn(moderation_http::serve(
        listener,
        router,
        std::future::pending(),
    ));
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let body = decision(
                &items[n % items.len()],
                ["violation", "no_violation", "escalated"][n % 3],
                &format!("m-{n}"),
            );
            tokio::spawn(async move { post(addr, "/v1/review/decisions", &body.to_string()).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 201, "{body}");
        ids.insert(body["decision"]["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids.len(), 50);
    let (_, audit, _) = call(&l, "GET", &format!("/v1/review/reports/{rid}/audit"), None).await;
    let recorded: HashSet<String> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(recorded, ids, "every decision is in the audit");
    let doc: Value = read_doc(l.dir.path(), &format!("review/reports/{rid}.json"));
    let applied: usize = doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["decisions"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(applied, 50, "every decision is applied");
    let events = std::fs::read_to_string(events_path(l.dir.path())).expect("events");
    assert_eq!(events.lines().count(), 50);
    // The report shows each item's last decision.
    for e in doc["entries"].as_array().expect("entries") {
        let last = e["decisions"].as_array().and_then(|d| d.last()).cloned();
        if let Some(last) = last {
            let shown = report_item(&l, &rid, e["item_id"].as_str().expect("id"));
            assert_eq!(shown["decision"]["id"], last["id"], "{}", e["item_id"]);
        }
    }
    // The queue's counts agree with the document.
    let decided = queue(&l, "?state=decided&limit=500").await;
    let escalated = queue(&l, "?state=escalated&limit=500").await;
    let here = |v: &[Value]| v.iter().filter(|i| i["report_id"] == rid.as_str()).count();
    assert_eq!(here(&decided) + here(&escalated), items.len());
}

async fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("reads");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}
