use super::*;
use crate::model::{Evaluation, RuleHit};

fn req(text: &str) -> TextRequest {
    TextRequest {
        text: text.into(),
        ..Default::default()
    }
}

#[test]
fn context_lines_come_first_and_share_the_message_conversation() {
    let requests = [
        TextRequest {
            text: "meet me after school, don't tell your mum".into(),
            user: Some("u-9".into()),
            conversation: None,
            context: vec!["how old are you".into(), "13".into()],
        },
        req("gg"),
    ];
    let (messages, asked) = messages_of(&requests);
    let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        ["context-0-0", "context-0-1", "message-0", "message-1"]
    );
    assert_eq!(asked, ["message-0", "message-1"]);
    // The context and its message are one conversation even when the game named none; a
    // request without context stays alone.
    assert!(messages[..3]
        .iter()
        .all(|m| m.conversation.as_deref() == Some("request-0")));
    assert_eq!(messages[2].user.as_deref(), Some("u-9"));
    assert_eq!(messages[3].conversation, None);
}

fn item(id: &str, toxicity: f64, verdict: Option<Verdict>) -> Item {
    let mut i = Item::new(id, "text");
    i.toxicity = toxicity;
    i.verdict = verdict;
    i
}

#[test]
fn verdicts_map_to_decisions_and_anything_unjudged_is_review() {
    assert_eq!(
        decide(&item("a", 0.1, Some(Verdict::BelowThreshold))),
        TextDecision::Allow
    );
    assert_eq!(
        decide(&item("a", 0.7, Some(Verdict::NoViolation))),
        TextDecision::Allow
    );
    assert_eq!(
        decide(&item("a", 0.9, Some(Verdict::Violation))),
        TextDecision::Block
    );
    assert_eq!(
        decide(&item("a", 0.9, Some(Verdict::NeedsReview))),
        TextDecision::Review
    );
    assert_eq!(decide(&item("a", 0.9, None)), TextDecision::Review);
    // Held for a person while below the gate (another language offline): not cleared.
    let mut held = item("a", 0.0, Some(Verdict::BelowThreshold));
    held.review_reason = Some("no offline toxicity model for es".into());
    assert_eq!(decide(&held), TextDecision::Review);
}

#[test]
fn a_budget_that_ran_out_is_review_with_the_reason_and_a_missing_item_is_never_allow() {
    let over = item("message-0", 0.8, None);
    let clean = item("message-1", 0.1, Some(Verdict::BelowThreshold));
    let asked = [
        "message-0".to_string(),
        "message-1".into(),
        "message-2".into(),
    ];
    let got = answers(
        vec![over, clean],
        &asked,
        0.5,
        Some("the policy check did not finish within 800 ms"),
    );
    assert_eq!(got[0].decision, TextDecision::Review);
    assert_eq!(got[0].item.verdict, Some(Verdict::NeedsReview));
    assert!(
        got[0].reasons.iter().any(|r| r.contains("within 800 ms")),
        "{:?}",
        got[0].reasons
    );
    assert!(
        got[0].reasons[0].starts_with("toxicity 0.80"),
        "{:?}",
        got[0].reasons
    );
    assert_eq!(got[1].decision, TextDecision::Allow);
    assert!(got[1].reasons.is_empty());
    assert_eq!(got[2].decision, TextDecision::Review);
}

#[test]
fn a_violation_gives_the_rule_and_the_judge_analysis() {
    let mut v = item("message-0", 0.95, Some(Verdict::Violation));
    v.rule_hits.push(RuleHit {
        rule: "violence_or_threat:kill you".into(),
        matched: "k1ll you".into(),
    });
    v.evaluation = Some(Evaluation {
        answer: Some("Y".into()),
        analysis: "A threat of violence against a player (Threats).".into(),
        ..Default::default()
    });
    let got = answers(vec![v], &["message-0".into()], 0.5, None);
    assert_eq!(got[0].decision, TextDecision::Block);
    assert_eq!(
        got[0].reasons,
        [
            "forbidden term violence_or_threat:kill you matched \"k1ll you\"",
            "toxicity 0.95",
            "A threat of violence against a player (Threats)."
        ]
    );
}
