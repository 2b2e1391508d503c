//! The index and the rules judge, over a small policy.

use super::*;
use moderation_core::model::{Item, Verdict};
use moderation_core::ports::{JudgeRequest, Judgement, PolicyPassage};

const POLICY: &str = "# Community policy\nIntro text.\n\n## Threats of violence\n\
    Applies to: violence_or_threat, harassment_or_abuse; bar: 0.5\nNo threats of harm.\n\n\
    ## Profanity\nApplies to: profanity; bar: none\nCasual swearing is allowed.\n\n\
    ## Scams\nApplies to: scam; bar: 0\nNo phishing links or fake giveaways.\n\n\
    ## Insults\nApplies to: insult; bar: 0.6\nNo name-calling aimed at a player.\n";

#[test]
fn sections_split_at_headings_with_anchors() {
    let s = split_sections(POLICY, "policy.md");
    let titles: Vec<&str> = s.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "Community policy",
            "Threats of violence",
            "Profanity",
            "Scams",
            "Insults"
        ]
    );
    assert_eq!(s[1].uri, "policy.md#threats-of-violence");
    assert!(s[1].text.starts_with("## Threats of violence"));
}

#[test]
fn governs_lines_parse() {
    let g = parse_governs("## X\nApplies to: insult, profanity; bar: 0.6\n").expect("line");
    assert_eq!(g.categories, vec!["insult", "profanity"]);
    assert_eq!(g.bar, Some(0.6));
    let g = parse_governs("> **Applies to:** `profanity`; bar: none").map(|g| g.bar);
    assert_eq!(g, None.or(Some(None)));
    assert!(parse_governs("no declaration").is_none());
    assert!(parse_governs("Applies to: x; bar: high").is_none());
}

fn item(categories: serde_json::Value, rule_hits: serde_json::Value) -> Item {
    let mut c = serde_json::json!({"profanity":0.0,"hate_speech":0.0,"sexual":0.0,"insult":0.0,
        "violence_or_threat":0.0,"graphic":0.0,"harassment_or_abuse":0.0});
    if let (Some(base), Some(over)) = (c.as_object_mut(), categories.as_object()) {
        base.extend(over.clone());
    }
    serde_json::from_value(serde_json::json!({"id":"line-1","text":"x","toxicity":0.9,
        "categories":c,"rule_hits":rule_hits}))
    .expect("item")
}

fn judge(item: &Item, sections: &[&str]) -> Judgement {
    let idx = PolicyIndex::from_sections(split_sections(POLICY, "p.md")).expect("index");
    let passages: Vec<PolicyPassage> = sections
        .iter()
        .filter_map(|want| idx.sections().iter().find(|s| s.uri.ends_with(want)))
        .map(|s| PolicyPassage {
            text: s.text.clone(),
            uri: s.uri.clone(),
            score: 1.0,
        })
        .collect();
    judge_by_rules(&JudgeRequest {
        item,
        passages: &passages,
        signals: "",
        threshold: 0.5,
        context: &[],
        conversation: None,
    })
}

#[test]
fn rules_judge_decides_from_the_sections_it_was_given() {
    let threat = item(
        serde_json::json!({"violence_or_threat": 0.9}),
        serde_json::json!([]),
    );
    let j = judge(&threat, &["#threats-of-violence"]);
    assert_eq!(j.verdict, Verdict::Violation);
    assert!(
        j.evaluation.analysis.contains("Threats of violence"),
        "{j:?}"
    );
    let swear = item(
        serde_json::json!({"profanity": 0.95}),
        serde_json::json!([]),
    );
    let j = judge(&swear, &["#profanity", "#threats-of-violence"]);
    assert_eq!(j.verdict, Verdict::NoViolation);
    assert_eq!(j.evaluation.answer.as_deref(), Some("N"));
    let scam = item(
        serde_json::json!({}),
        serde_json::json!([{"rule":"scam:free robux","matched":"FREE R0BUX"}]),
    );
    let j = judge(&scam, &["#scams"]);
    assert_eq!(j.verdict, Verdict::Violation);
    assert!(
        j.evaluation.analysis.contains("forbidden term in scam"),
        "{j:?}"
    );
    // A classifier's hit is explained as a reading, not as a listed term.
    let classified = item(
        serde_json::json!({}),
        serde_json::json!([{"rule": format!("scam{}", crate::text::head::RULE_SUFFIX),
            "matched": "trade me your knife, paypal after (p 0.91)"}]),
    );
    let j = judge(&classified, &["#scams"]);
    assert_eq!(j.verdict, Verdict::Violation);
    assert!(
        j.evaluation
            .analysis
            .contains("the offline classifier reads scam in \"trade me your knife")
            && !j.evaluation.analysis.contains("forbidden term"),
        "{j:?}"
    );
}

#[test]
fn rules_judge_never_passes_what_no_section_covers() {
    // Flagged for insult, but only the profanity section came back from the search.
    let insult = item(
        serde_json::json!({"insult": 0.9, "profanity": 0.6}),
        serde_json::json!([]),
    );
    let j = judge(&insult, &["#profanity"]);
    assert_eq!(j.verdict, Verdict::NeedsReview, "{j:?}");
    assert!(j.problem.as_deref().is_some_and(|p| p.contains("insult")));
    assert_eq!(j.evaluation.answer, None);
    // No section declares anything: needs review too.
    let j = judge(&insult, &[]);
    assert_eq!(j.verdict, Verdict::NeedsReview);
}

#[test]
fn swearing_at_a_person_is_judged_as_an_insult() {
    let with_text = |text: &str| {
        let mut i = item(serde_json::json!({"profanity": 0.9}), serde_json::json!([]));
        i.text = text.into();
        i
    };
    let j = judge(&with_text("stfu noob"), &["#profanity", "#insults"]);
    assert_eq!(j.verdict, Verdict::Violation, "{j:?}");
    assert!(j.evaluation.analysis.contains("aimed at a person"), "{j:?}");
    // The same words not aimed at anyone stay allowed.
    let j = judge(&with_text("this lag is shit"), &["#profanity", "#insults"]);
    assert_eq!(j.verdict, Verdict::NoViolation, "{j:?}");
    // No insult section in what came back, but harassment is: judged there.
    let j = judge(
        &with_text("fuck you"),
        &["#profanity", "#threats-of-violence"],
    );
    assert_eq!(j.verdict, Verdict::Violation, "{j:?}");
    // Neither: never passed on the strength of the profanity section alone.
    let j = judge(&with_text("fuck you"), &["#profanity"]);
    assert_eq!(j.verdict, Verdict::NeedsReview, "{j:?}");
    // Under the insult bar: not a violation, and the analysis says why.
    let mut mild = with_text("fuck you");
    mild.categories.profanity = 0.55;
    let j = judge(&mild, &["#profanity", "#insults"]);
    assert_eq!(j.verdict, Verdict::NoViolation, "{j:?}");
    assert!(j.evaluation.analysis.contains("aimed at a person"), "{j:?}");
    // A profanity rule hit counts as swearing even with a low score.
    let mut hit = item(
        serde_json::json!({}),
        serde_json::json!([{"rule":"profanity:bitch","matched":"b1tch"}]),
    );
    hit.text = "dumb b1tch".into();
    assert_eq!(judge(&hit, &["#insults"]).verdict, Verdict::Violation);
}

#[test]
fn search_finds_the_governing_section() {
    let idx = PolicyIndex::from_sections(split_sections(POLICY, "p.md")).expect("index");
    let hits = idx.search("i will hurt you threats violence harm", 2);
    assert!(hits[0].uri.ends_with("#threats-of-violence"), "{hits:?}");
    let hits = idx.search("free robux giveaway click this link scam", 2);
    assert!(hits[0].uri.ends_with("#scams"), "{hits:?}");
}

fn grooming_conversation(risk: f64) -> moderation_core::model::Conversation {
    serde_json::from_value(serde_json::json!({
        "id": "m-1", "users": ["a", "b"], "risk": risk,
        "signals": [{"name": "secrecy", "item": "line-2"}, {"name": "age_probe", "item": "line-1"}],
        "evidence": ["line-1", "line-2"]
    }))
    .expect("conversation")
}

#[test]
fn a_conversation_is_judged_against_the_grooming_section() {
    let item = Item::new("conversation:m-1", "how old r u\ndont tell ur mom");
    let section = |bar: &str| PolicyPassage {
        text: format!("## Grooming\n\nAdults must not…\n\nApplies to: grooming; bar: {bar}"),
        uri: "file://policy.md".into(),
        score: 1.0,
    };
    let judge = |risk: f64, passages: &[PolicyPassage]| {
        let c = grooming_conversation(risk);
        judge_by_rules(&JudgeRequest {
            item: &item,
            passages,
            signals: "",
            threshold: 0.5,
            context: &[],
            conversation: Some(&c),
        })
    };
    let over = judge(0.7, &[section("0.5")]);
    assert_eq!(over.verdict, Verdict::Violation);
    assert!(
        over.evaluation.analysis.contains("age_probe, secrecy"),
        "{}",
        over.evaluation.analysis
    );
    assert_eq!(over.evaluation.references.len(), 1);
    assert_eq!(judge(0.55, &[section("0.6")]).verdict, Verdict::NoViolation);
    let other = PolicyPassage {
        text: "## Insults\n\nApplies to: insult; bar: 0.6".into(),
        uri: "file://policy.md".into(),
        score: 1.0,
    };
    let unsure = judge(0.9, &[other]);
    assert_eq!(unsure.verdict, Verdict::NeedsReview);
    assert!(unsure.problem.is_some_and(|p| p.contains("grooming")));
}
