use super::*;
use crate::model::{Reevaluation, SourceKind};

fn flagged(id: &str, verdict: Verdict) -> Item {
    let mut item = Item::new(id, format!("text of {id}"));
    item.verdict = Some(verdict);
    item.toxicity = 0.9;
    item.categories.insult = 0.9;
    item
}

fn doc() -> ReviewDoc {
    let mut d = ReviewDoc {
        schema: REVIEW_SCHEMA.into(),
        report_id: "r1".into(),
        created_at: "2026-12-07T00:00:00.000Z".into(),
        source: Source::new("s3://b/incoming/text/a.txt", SourceKind::Text),
        queue_page: None,
        seq: 0,
        entries: Vec::new(),
    };
    d.entries
        .push(ReviewEntry::of(&flagged("line-1", Verdict::Violation), 0.5));
    d.entries.push(ReviewEntry::of(
        &flagged("line-2", Verdict::NeedsReview),
        0.5,
    ));
    d
}

fn decision(id: &str, item: &str, verdict: HumanVerdict) -> Decision {
    Decision {
        id: id.into(),
        report_id: "r1".into(),
        item_id: item.into(),
        verdict,
        reason: "because".into(),
        moderator: "m-1".into(),
        at: format!("2026-12-07T00:00:0{}.000Z", id.len()),
        policy_version: "p1".into(),
        automatic_verdict: Verdict::Violation,
        models: vec![],
    }
}

fn appeal(id: &str, item: &str) -> Appeal {
    Appeal {
        id: id.into(),
        report_id: "r1".into(),
        item_id: item.into(),
        state: AppealState::Open,
        statement: "it was a joke".into(),
        at: "2026-12-07T01:00:00.000Z".into(),
        original: "violation".into(),
        reevaluation: Reevaluation {
            verdict: Verdict::Violation,
            evaluation: None,
            policy_version: "p2".into(),
            problem: None,
        },
        settled_by: None,
    }
}

#[test]
fn flagged_items_start_open_with_their_categories() {
    let d = doc();
    assert_eq!(d.counts().open, 2);
    assert_eq!(d.entries[0].categories, vec!["insult".to_string()]);
    assert_eq!(d.categories(), vec!["insult".to_string()]);
}

#[test]
fn a_decision_closes_an_item_and_undo_reopens_it() {
    let mut d = doc();
    d.apply_decision(&decision("d1", "line-1", HumanVerdict::NoViolation))
        .expect("applied");
    assert_eq!(d.entries[0].state, Some(QueueState::Decided));
    assert_eq!(d.seq, 1);
    // The same record again (a retried swap) changes nothing.
    d.apply_decision(&decision("d1", "line-1", HumanVerdict::NoViolation))
        .expect("applied");
    assert_eq!(d.entries[0].decisions.len(), 1);
    d.apply_decision(&decision("d22", "line-1", HumanVerdict::Violation))
        .expect("applied");
    let undo = Undo {
        id: "u1".into(),
        report_id: "r1".into(),
        item_id: "line-1".into(),
        decision_id: "d22".into(),
        moderator: "m-1".into(),
        at: "x".into(),
    };
    d.apply_undo(&undo).expect("undone");
    assert_eq!(
        d.entries[0].standing().map(|x| x.id.as_str()),
        Some("d1"),
        "the one before stands again"
    );
    assert!(matches!(d.apply_undo(&undo), Err(Error::Invalid(_))));
    let u2 = Undo {
        decision_id: "d1".into(),
        ..undo.clone()
    };
    d.apply_undo(&u2).expect("undone");
    assert_eq!(d.entries[0].state, Some(QueueState::Open));
    let unknown = Undo {
        decision_id: "nope".into(),
        ..undo
    };
    assert!(matches!(d.apply_undo(&unknown), Err(Error::Unknown { .. })));
}

#[test]
fn escalation_keeps_an_item_waiting() {
    let mut d = doc();
    d.apply_decision(&decision("d1", "line-2", HumanVerdict::Escalated))
        .expect("applied");
    assert_eq!(d.entries[1].state, Some(QueueState::Escalated));
    assert_eq!(d.counts().escalated, 1);
}

#[test]
fn an_appeal_reopens_and_a_final_decision_settles_it() {
    let mut d = doc();
    d.apply_decision(&decision("d1", "line-1", HumanVerdict::Violation))
        .expect("applied");
    d.apply_appeal(&appeal("a1", "line-1")).expect("appealed");
    assert_eq!(d.entries[0].state, Some(QueueState::Appeal));
    assert!(matches!(
        d.apply_appeal(&appeal("a2", "line-1")),
        Err(Error::Invalid(_))
    ));
    d.apply_decision(&decision("d2", "line-1", HumanVerdict::Escalated))
        .expect("applied");
    assert_eq!(d.entries[0].state, Some(QueueState::Appeal), "still open");
    d.apply_decision(&decision("d333", "line-1", HumanVerdict::NoViolation))
        .expect("applied");
    let a = d.entries[0].appeal.as_ref().expect("appeal");
    assert_eq!(a.state, AppealState::Overturned);
    assert_eq!(d.entries[0].state, Some(QueueState::Decided));
    // Undoing the settling decision opens the appeal again.
    let undo = Undo {
        id: "u".into(),
        report_id: "r1".into(),
        item_id: "line-1".into(),
        decision_id: "d333".into(),
        moderator: "m".into(),
        at: "x".into(),
    };
    d.apply_undo(&undo).expect("undone");
    assert_eq!(d.entries[0].state, Some(QueueState::Appeal));
}

#[test]
fn an_unflagged_item_enters_only_when_decided() {
    let mut d = doc();
    let clean = flagged("line-9", Verdict::BelowThreshold);
    d.ensure_entry(&clean, 0.5);
    assert_eq!(d.entry("line-9").and_then(|e| e.state), None);
    d.apply_decision(&decision("d1", "line-9", HumanVerdict::Violation))
        .expect("applied");
    assert_eq!(
        d.entry("line-9").and_then(|e| e.state),
        Some(QueueState::Decided)
    );
    assert!(matches!(
        d.apply_decision(&decision("d1", "line-404", HumanVerdict::Violation)),
        Err(Error::Unknown { .. })
    ));
}

#[test]
fn undoing_an_old_decision_leaves_a_later_one_settling_the_appeal() {
    let mut d = doc();
    d.apply_decision(&decision("d1", "line-1", HumanVerdict::Violation))
        .expect("applied");
    d.apply_appeal(&appeal("a1", "line-1")).expect("appealed");
    // Settled (overturned) by d22, then upheld by d333 after it.
    let mut later = decision("d22", "line-1", HumanVerdict::NoViolation);
    later.at = "2026-12-07T02:00:00.000Z".into();
    d.apply_decision(&later).expect("applied");
    let mut last = decision("d333", "line-1", HumanVerdict::Violation);
    last.at = "2026-12-07T03:00:00.000Z".into();
    d.apply_decision(&last).expect("applied");
    let a = d.entries[0].appeal.clone().expect("appeal");
    assert_eq!(
        (a.state, a.settled_by.as_deref()),
        (AppealState::Overturned, Some("d22"))
    );
    let undo = Undo {
        id: "u".into(),
        report_id: "r1".into(),
        item_id: "line-1".into(),
        decision_id: "d22".into(),
        moderator: "m".into(),
        at: "x".into(),
    };
    d.apply_undo(&undo).expect("undone");
    let a = d.entries[0].appeal.clone().expect("appeal");
    assert_eq!(
        (a.state, a.settled_by.as_deref()),
        (AppealState::Upheld, Some("d333")),
        "the later decision still stands and settles it"
    );
    assert_eq!(d.entries[0].state, Some(QueueState::Decided));
}
