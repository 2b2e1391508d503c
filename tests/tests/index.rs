//! The report index on the folder bucket: concurrent writers lose no row, redeliveries add
//! none, full pages are sealed and linked, a bucket of older reports is seeded once, and a
//! damaged head does not stop new reports.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use moderation_core::chain::keys;
use moderation_core::model::Report;
use moderation_core::ports::{ObjectStore, WriteObjects};
use moderation_core::stages::write_report::index::{add_to_index, PAGE_ROWS};
use moderation_offline::FolderStore;

const BUCKET: &str = "b";

fn report(n: usize) -> Report {
    moderation_tests::sample_report(BUCKET, n)
}

fn ids_on(path: &Path) -> Vec<String> {
    moderation_tests::ids_on_index_page(path)
}

fn listed(bucket_dir: &Path) -> BTreeMap<String, usize> {
    moderation_tests::listed_in_index(bucket_dir)
}

async fn add_all(store: Arc<FolderStore>, reports: Vec<Report>, at_once: usize) {
    let gate = Arc::new(tokio::sync::Semaphore::new(at_once));
    let mut tasks = tokio::task::JoinSet::new();
    for r in reports {
        let store = store.clone();
        let gate = gate.clone();
        // Each writer on its own task, as concurrent Lambda invocations are.
        tasks.spawn(async move {
            let _turn = gate.acquire().await.expect("semaphore");
            add_to_index(store.as_ref(), BUCKET, &r, 4)
                .await
                .expect("indexed")
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_writers_list_every_report_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(FolderStore::new(dir.path()));
    add_all(store, (0..50).map(report).collect(), 50).await;
    let seen = listed(&dir.path().join(BUCKET));
    assert_eq!(seen.len(), 50, "{seen:?}");
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_pages_are_sealed_linked_and_nothing_is_lost_across_a_seal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(FolderStore::new(dir.path()));
    let n = 2 * PAGE_ROWS + 30;
    add_all(store, (0..n).map(report).collect(), 50).await;
    let bucket_dir = dir.path().join(BUCKET);
    let seen = listed(&bucket_dir);
    assert_eq!(seen.len(), n);
    assert!(seen.values().all(|&c| c == 1));
    // Two sealed pages of PAGE_ROWS, the newest 30 on index.html.
    assert_eq!(
        ids_on(&bucket_dir.join(keys::index_page_key(1))).len(),
        PAGE_ROWS
    );
    assert_eq!(
        ids_on(&bucket_dir.join(keys::index_page_key(2))).len(),
        PAGE_ROWS
    );
    assert!(!bucket_dir.join(keys::index_page_key(3)).exists());
    let index = std::fs::read_to_string(bucket_dir.join(keys::report_index_key())).expect("index");
    assert_eq!(ids_on(&bucket_dir.join(keys::report_index_key())).len(), 30);
    assert!(index.contains("href=\"pages/000002.html\""), "{index}");
    assert!(index.contains(&format!("<span id=\"total\">{n}</span>")));
}

#[tokio::test]
async fn a_redelivered_report_is_listed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FolderStore::new(dir.path());
    let r = report(7);
    let first = add_to_index(&store, BUCKET, &r, 4).await.expect("first");
    assert!(first.new_row);
    assert_eq!(first.swaps, 1);
    let again = add_to_index(&store, BUCKET, &r, 4).await.expect("again");
    assert!(!again.new_row);
    // A crash after the row but before the marker: the head still knows the report.
    std::fs::remove_file(
        dir.path()
            .join(BUCKET)
            .join(keys::index_marker_key(&r.report_id)),
    )
    .expect("marker");
    let after_crash = add_to_index(&store, BUCKET, &r, 4)
        .await
        .expect("redelivery");
    assert!(!after_crash.new_row);
    let seen = listed(&dir.path().join(BUCKET));
    assert_eq!(seen.get(&r.report_id), Some(&1));
}

#[tokio::test]
async fn a_bucket_of_older_reports_is_seeded_once_oldest_pages_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FolderStore::new(dir.path());
    let older = PAGE_ROWS + 50;
    for n in 0..older {
        let r = report(n);
        moderation_core::chain::delivery::put_json(
            &store,
            BUCKET,
            &keys::report_json_key(&r.report_id),
            &r,
        )
        .await
        .expect("put");
    }
    // One unreadable report is left out, not fatal.
    store
        .put(
            BUCKET,
            "reports/broken-ffffff.json",
            b"{".to_vec(),
            "application/json",
        )
        .await
        .expect("put");
    let new = report(older);
    moderation_core::chain::delivery::put_json(
        &store,
        BUCKET,
        &keys::report_json_key(&new.report_id),
        &new,
    )
    .await
    .expect("put");
    let added = add_to_index(&store, BUCKET, &new, 8).await.expect("seeded");
    let bucket_dir = dir.path().join(BUCKET);
    let seen = listed(&bucket_dir);
    assert_eq!(seen.len(), older + 1);
    assert!(seen.values().all(|&c| c == 1));
    // The oldest reports are on the sealed page, the newest first on index.html.
    let page1 = ids_on(&bucket_dir.join(keys::index_page_key(1)));
    assert!(page1.contains(&report(0).report_id));
    let front = ids_on(&bucket_dir.join(keys::report_index_key()));
    assert_eq!(front.first(), Some(&new.report_id));
    assert!(added.written.contains(&keys::index_head_key()));
    // The next report does not list the bucket again: one swap, no seeding.
    let next = add_to_index(&store, BUCKET, &report(older + 1), 8)
        .await
        .expect("next");
    assert_eq!(next.swaps, 1);
}

#[tokio::test]
async fn a_damaged_head_starts_a_new_page_and_keeps_the_sealed_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FolderStore::new(dir.path());
    for n in 0..=PAGE_ROWS {
        add_to_index(&store, BUCKET, &report(n), 4)
            .await
            .expect("indexed");
    }
    let store_dyn: &dyn ObjectStore = &store;
    store_dyn
        .put(
            BUCKET,
            &keys::index_head_key(),
            b"not json".to_vec(),
            "application/json",
        )
        .await
        .expect("damage");
    let r = report(9999);
    let added = add_to_index(&store, BUCKET, &r, 4).await.expect("indexed");
    assert!(added.new_row);
    let bucket_dir = dir.path().join(BUCKET);
    assert_eq!(
        ids_on(&bucket_dir.join(keys::index_page_key(1))).len(),
        PAGE_ROWS
    );
    let front = ids_on(&bucket_dir.join(keys::report_index_key()));
    assert_eq!(front, vec![r.report_id.clone()]);
    let index = std::fs::read_to_string(bucket_dir.join(keys::report_index_key())).expect("index");
    assert!(index.contains("href=\"pages/000001.html\""), "{index}");
}

/// A writer that read an older head (slow, or retried) never puts its page over a newer one.
#[tokio::test]
async fn a_slow_writer_never_puts_an_older_index_over_a_newer_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FolderStore::new(dir.path());
    add_to_index(&store, BUCKET, &report(1), 4)
        .await
        .expect("first");
    let old_head: moderation_core::stages::write_report::index::IndexHead = serde_json::from_slice(
        &std::fs::read(dir.path().join(BUCKET).join(keys::index_head_key())).expect("head"),
    )
    .expect("parses");
    add_to_index(&store, BUCKET, &report(2), 4)
        .await
        .expect("second");
    let page = dir.path().join(BUCKET).join(keys::report_index_key());
    let before = std::fs::read(&page).expect("index");
    let wrote =
        moderation_core::stages::write_report::index::refresh_index_html(&store, BUCKET, &old_head)
            .await
            .expect("refresh");
    assert_eq!(wrote, None);
    assert_eq!(std::fs::read(&page).expect("index"), before);
    assert_eq!(ids_on(&page).len(), 2);
}
