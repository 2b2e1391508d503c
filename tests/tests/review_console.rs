//! The moderator console in headless Chromium, used by keyboard as a moderator uses it:
//! `j`/`k` move, `n` decides and moves on, `u` takes the decision back, and a picture stays
//! blurred and grey until `r` reveals it. Each step is checked in the page and in the records.

use std::time::Duration;

use moderation_tests::devtools::Browser;
use moderation_tests::review::{moderate_samples, review_router, reviewer};
use moderation_tests::{chromium_or_skip, keys_under};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_works_the_queue_by_keyboard() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = moderate_samples(dir.path()).await;
    let router = review_router(reviewer(dir.path(), apps));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}/review", listener.local_addr().expect("addr"));
    tokio::spawn(moderation_http::serve(
        listener,
        router,
        std::future::pending(),
    ));
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("review-console.png");
    let root = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || drive(&chromium, &url, &root, &shot))
        .await
        .expect("the browser session");
}

fn selected(b: &mut Browser) -> (String, String, i64) {
    let v = b.eval(
        "(() => { const li = document.querySelector('#queue li[aria-selected=true]'); \
         const all = [...document.querySelectorAll('#queue li')]; \
         return [li.dataset.report, li.dataset.item, all.indexOf(li)]; })()",
    );
    (
        v[0].as_str().expect("report").to_string(),
        v[1].as_str().expect("item").to_string(),
        v[2].as_i64().expect("index"),
    )
}

fn records(root: &std::path::Path, report: &str) -> Vec<Value> {
    keys_under(root, &format!("decisions/{report}/"))
        .iter()
        .filter(|k| k.ends_with(".json") && !k.contains("/."))
        .map(|k| moderation_tests::read_doc::<Value>(root, k))
        .collect()
}

fn drive(chromium: &std::path::Path, url: &str, root: &std::path::Path, shot: &std::path::Path) {
    let mut b = Browser::launch(chromium, 1280, 860);
    b.navigate(url);
    b.wait_for("document.querySelectorAll('#queue li').length > 1", WAIT);
    b.wait_for("!!document.querySelector('#detail #text')", WAIT);
    let (report, item, index) = selected(&mut b);
    assert_eq!(index, 0);
    b.press('j');
    assert_eq!(selected(&mut b).2, 1, "j moves down");
    b.press('k');
    assert_eq!(selected(&mut b).2, 0, "k moves up");
    b.wait_for(
        &format!("document.querySelector('#detail h2 code').textContent === {item:?}"),
        WAIT,
    );

    // n: no violation, recorded, and the next item is selected.
    b.press('n');
    b.wait_for(
        "document.querySelector('#status').textContent.startsWith('Recorded')",
        WAIT,
    );
    let recs = records(root, &report);
    let decision = recs
        .iter()
        .find(|r| r["kind"] == "decision" && r["item_id"] == item.as_str())
        .unwrap_or_else(|| panic!("no decision recorded for {item}: {recs:?}"));
    assert_eq!(decision["verdict"], "no_violation");
    let (r2, i2, _) = selected(&mut b);
    assert_ne!((r2, i2), (report.clone(), item.clone()), "submit and next");

    // u: taken back, as a record of its own; the item is back in the queue.
    b.press('u');
    b.wait_for(
        "document.querySelector('#status').textContent.startsWith('Took back')",
        WAIT,
    );
    let recs = records(root, &report);
    assert!(recs
        .iter()
        .any(|r| r["kind"] == "undo" && r["decision_id"] == decision["id"]));
    b.wait_for(
        &format!("[...document.querySelectorAll('#queue li')].some(li => li.dataset.item === {item:?} && li.dataset.report === {report:?})"),
        WAIT,
    );

    // Pictures: covered (blurred and grey) until revealed.
    b.eval("(() => { const k = document.querySelector('#kind'); k.value = 'image'; k.dispatchEvent(new Event('change')); })()");
    b.wait_for(
        "!!document.querySelector('#media img') && document.querySelector('#media img').complete",
        WAIT,
    );
    let filter = b.eval("getComputedStyle(document.querySelector('#media img')).filter");
    let filter = filter.as_str().expect("filter");
    assert!(
        filter.contains("blur") && filter.contains("grayscale"),
        "{filter}"
    );
    b.screenshot(shot);
    b.press('r');
    let filter = b.eval("getComputedStyle(document.querySelector('#media img')).filter");
    assert_eq!(filter, "none", "r reveals the picture");
    eprintln!("console screenshot: {}", shot.display());
}
