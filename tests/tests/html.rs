//! The HTML report as a browser sees it: rendered by headless Chromium (`--dump-dom`), with
//! hostile chat lines that must stay text, never become elements.

use moderation_core::chain::delivery::run_chain;
use moderation_core::chain::keys;
use moderation_core::model::Report;
use moderation_tests::{
    chromium_or_skip, dispatch, dump_dom, file_url, read_doc, workspace_root, Apps, FIXTURE_BUCKET,
};

#[tokio::test]
async fn report_html_renders_every_item_and_keeps_user_text_inert() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket_dir = dir.path().join(FIXTURE_BUCKET);
    let key = "incoming/text/hostile-chat.txt";
    std::fs::create_dir_all(bucket_dir.join("incoming/text")).expect("mkdir");
    std::fs::copy(
        workspace_root().join("tests/data/hostile-chat.txt"),
        bucket_dir.join(key),
    )
    .expect("copy upload");
    let apps = Apps::offline(dir.path()).await;
    run_chain(FIXTURE_BUCKET, vec![key.to_string()], |stage, obj| {
        let apps = &apps;
        async move { dispatch(apps, stage, &obj.key).await }
    })
    .await
    .expect("chain");

    let id = keys::source_id(FIXTURE_BUCKET, key);
    let json: Report = read_doc(dir.path(), &keys::report_json_key(&id));
    let dom = dump_dom(
        &browser,
        &file_url(&bucket_dir.join(keys::report_html_key(&id))),
        0,
    );

    // Every item is rendered, with its verdict, and the summary matches the JSON.
    assert_eq!(
        dom.matches("<section class=\"item ").count(),
        json.items.len(),
        "{dom}"
    );
    for item in &json.items {
        let verdict = item.verdict.expect("verdict").as_str();
        assert!(
            dom.contains(&format!("id=\"{}\" data-verdict=\"{verdict}\"", item.id)),
            "{} {verdict}",
            item.id
        );
    }
    assert!(dom.contains(&format!(
        "data-k=\"violations\">{}<",
        json.summary.violations
    )));
    assert!(json.summary.violations >= 2, "{:?}", json.summary);
    // Hostile text stayed text: no element was created from it, and it is shown escaped.
    assert!(!dom.contains("<script"), "a script element was created");
    assert!(!dom.contains("<img"), "an img element was created");
    assert!(dom.contains("&lt;script&gt;alert(\"xss\")&lt;/script&gt; you idiot"));
    assert!(dom.contains("a &amp; b &lt; c &gt; d"));

    // The index links the report.
    let index = dump_dom(
        &browser,
        &file_url(&bucket_dir.join("reports/index.html")),
        0,
    );
    assert!(index.contains(&format!("href=\"{id}.html\"")), "{index}");
}

/// The index past one page, as a browser sees it: the newest page links the sealed page before
/// it, which lists its reports and links back; hostile source names stay text.
#[tokio::test]
async fn index_pages_render_and_link_in_a_browser() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    use moderation_core::stages::write_report::index::{add_to_index, PAGE_ROWS};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = moderation_offline::FolderStore::new(dir.path());
    let bucket = "b";
    for n in 0..PAGE_ROWS + 3 {
        let mut r = moderation_tests::sample_report(bucket, n);
        if n == 0 {
            r.source.uri = "s3://b/incoming/text/<img src=x onerror=alert(1)>.txt".into();
        }
        add_to_index(&store, bucket, &r, 4).await.expect("indexed");
    }
    let bucket_dir = dir.path().join(bucket);
    let index = dump_dom(
        &browser,
        &file_url(&bucket_dir.join(keys::report_index_key())),
        0,
    );
    assert_eq!(index.matches("<tr data-report=").count(), 3, "{index}");
    assert!(index.contains("href=\"pages/000001.html\""), "{index}");
    assert!(index.contains(&format!("<span id=\"total\">{}</span>", PAGE_ROWS + 3)));
    let page = dump_dom(
        &browser,
        &file_url(&bucket_dir.join(keys::index_page_key(1))),
        0,
    );
    assert_eq!(
        page.matches("<tr data-report=").count(),
        PAGE_ROWS,
        "{page}"
    );
    assert!(page.contains("href=\"../index.html\""), "{page}");
    let first = moderation_tests::sample_report(bucket, 0).report_id;
    assert!(
        page.contains(&format!("href=\"../{first}.html\"")),
        "{page}"
    );
    assert!(!page.contains("<img"), "an img element was created");
}

/// The report of a 100,000-message upload opens in a browser: every flagged item in full,
/// the below-threshold ones counted and collapsed, the page a few megabytes at most.
#[tokio::test]
async fn a_huge_report_opens_with_every_flagged_item_and_the_rest_collapsed() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    use moderation_core::model::{Item, Verdict};
    let mut report = moderation_tests::sample_report("b", 1);
    let mut flagged = Vec::new();
    for n in 0..100_000 {
        let mut item = Item::new(
            format!("m{n:06}"),
            format!("message {n}: push mid, heal me, nice shot <b>{n}</b>"),
        );
        item.user = Some(format!("player{}", n % 97));
        item.verdict = Some(match n % 200 {
            0 => Verdict::Violation,
            1 => Verdict::NeedsReview,
            _ => Verdict::BelowThreshold,
        });
        if item.verdict != Some(Verdict::BelowThreshold) {
            item.toxicity = 0.9;
            flagged.push(item.id.clone());
        } else {
            item.toxicity = 0.1;
        }
        report.items.push(item);
    }
    report.summary.items = 100_000;
    let html = moderation_core::stages::write_report::render_html(&report, 0.5, None);
    assert!(html.len() < 3_000_000, "{} bytes", html.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.html");
    std::fs::write(&path, &html).expect("write");
    let started = std::time::Instant::now();
    let dom = dump_dom(&browser, &file_url(&path), 0);
    let took = started.elapsed();
    eprintln!(
        "100k-message report: {} KB of HTML, loaded and dumped by Chromium in {took:?}",
        html.len() / 1024
    );
    // Generous: the measurement is the printed time; this only catches a page that hangs.
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    assert_eq!(flagged.len(), 1_000);
    for id in &flagged {
        assert!(
            dom.contains(&format!("id=\"{id}\" data-verdict=")),
            "{id} missing"
        );
    }
    assert!(dom.contains("data-count=\"99000\""), "collapsed count");
    assert_eq!(
        dom.matches("<section class=\"item ").count(),
        flagged.len(),
        "only flagged items are rendered in full"
    );
    // User text stays text in the collapsed rows too.
    assert!(!dom.contains("<b>5</b>"));
}
