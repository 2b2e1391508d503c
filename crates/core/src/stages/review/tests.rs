use super::queue::{Cursor, QueueRow};
use super::*;
use crate::model::{Source, SourceKind};

#[test]
fn ids_that_would_leave_their_folder_are_refused() {
    assert!(check_id("report_id", "3f2a9c_x-1.b").is_ok());
    for bad in ["", "../x", "a/b", ".hidden", "a b", "é", &"x".repeat(201)] {
        assert!(
            matches!(check_id("report_id", bad), Err(Error::Invalid(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn record_ids_do_not_repeat() {
    let ids: std::collections::HashSet<String> =
        (0..1000).map(|_| new_id(&["same", "parts"])).collect();
    assert_eq!(ids.len(), 1000);
}

#[test]
fn a_queue_row_is_read_only_when_it_may_hold_what_is_asked() {
    let mut doc = ReviewDoc::empty("r1");
    doc.source = Source::new("s3://b/k", SourceKind::Audio);
    let mut item = Item::new("seg-1", "x");
    item.verdict = Some(crate::model::Verdict::Violation);
    item.categories.violence_or_threat = 0.9;
    item.conversation = Some("c-7".into());
    doc.entries.push(ReviewEntry::of(&item, 0.5));
    let row = QueueRow::of(&doc);
    let open = QueueFilter::default();
    assert!(row.may_match(&open));
    let decided = QueueFilter {
        state: QueueState::Decided,
        ..QueueFilter::default()
    };
    assert!(!row.may_match(&decided));
    let wrong_category = QueueFilter {
        category: Some("sexual".into()),
        ..QueueFilter::default()
    };
    assert!(!row.may_match(&wrong_category));
    let text_only = QueueFilter {
        kind: Some(SourceKind::Text),
        ..QueueFilter::default()
    };
    assert!(!row.may_match(&text_only));
    let conversation = QueueFilter {
        conversation: Some("c-7".into()),
        category: Some("violence_or_threat".into()),
        ..QueueFilter::default()
    };
    assert!(row.may_match(&conversation));
}

#[test]
fn cursors_round_trip_and_bad_ones_are_none() {
    let c = Cursor { page: 3, row: 17 };
    assert_eq!(Cursor::parse(&c.render()), Some(c));
    assert_eq!(Cursor::parse("3"), None);
    assert_eq!(Cursor::parse("a:1"), None);
}

#[test]
fn a_cell_that_starts_like_a_formula_is_kept_as_text() {
    use super::audit::inert;
    assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    assert_eq!(inert("+1"), "'+1");
    assert_eq!(inert("@sum"), "'@sum");
    assert_eq!(inert("fine text"), "fine text");
    assert_eq!(inert("2026-12-07T00:00:00Z"), "2026-12-07T00:00:00Z");
}
