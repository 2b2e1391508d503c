use super::*;
use crate::model::{Item, SignalKind};
use crate::text::signals::SignalPatterns;

/// An item as screening leaves it: signals from the shipped patterns.
fn line(n: usize, conv: &str, user: &str, band: Option<&str>, text: &str) -> Item {
    let mut item = Item::new(format!("line-{n}"), text);
    item.conversation = Some(conv.to_string());
    item.user = Some(user.to_string());
    item.age_band = band.map(str::to_string);
    item.signals = SignalPatterns::embedded().find(text);
    item
}

fn run(
    lines: &[(&str, &str, Option<&str>, &str)],
    cfg: ConversationConfig,
) -> Vec<crate::model::Conversation> {
    let mut t = Tracker::new(cfg);
    for (n, (conv, user, band, text)) in lines.iter().enumerate() {
        t.observe(&line(n + 1, conv, user, *band, text));
    }
    t.finish("upload-1").0
}

const ARC: &[(&str, &str, Option<&str>, &str)] = &[
    ("c-1", "grown", Some("18+"), "nice build"),
    ("c-1", "kid", Some("13-15"), "thx"),
    ("c-1", "grown", Some("18+"), "how old r u"),
    ("c-1", "kid", Some("13-15"), "13"),
    (
        "c-1",
        "grown",
        Some("18+"),
        "cool. dont tell ur parents we talk ok",
    ),
    ("c-1", "grown", Some("18+"), "add me on snap"),
];

#[test]
fn an_adults_arc_towards_a_child_is_listed_with_its_evidence() {
    let out = run(ARC, ConversationConfig::default());
    assert_eq!(out.len(), 1);
    let c = &out[0];
    assert_eq!(c.id, "c-1");
    assert_eq!(c.user.as_deref(), Some("grown"));
    assert_eq!(c.users, vec!["grown", "kid"]);
    assert_eq!(c.evidence, vec!["line-3", "line-5", "line-6"]);
    let names: Vec<&str> = c.signals.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["age_probe", "secrecy", "off_platform"]);
    assert_eq!(c.ages.get("kid").map(String::as_str), Some("13-15"));
    assert_eq!(c.thread.len(), 6);
    assert!(c.risk >= 0.5 && c.verdict.is_none(), "{c:?}");
}

#[test]
fn the_same_words_between_two_children_stay_under_the_gate() {
    let peers: Vec<_> = ARC
        .iter()
        .map(|(c, u, _, t)| (*c, *u, Some("13-15"), *t))
        .collect();
    assert!(run(&peers, ConversationConfig::default()).is_empty());
}

#[test]
fn an_age_said_in_chat_counts_even_when_said_after_the_signals() {
    let lines = [
        ("c", "a", None, "dont tell ur mom about this"),
        ("c", "a", None, "send me a pic of u"),
        ("c", "b", None, "ok"),
    ];
    let unknown = run(&lines, ConversationConfig::default());
    let mut with_age = lines.to_vec();
    with_age.push(("c", "b", None, "im 12 btw"));
    let minor = run(&with_age, ConversationConfig::default());
    assert_eq!(minor.len(), 1);
    assert!(unknown.is_empty() || unknown[0].risk < minor[0].risk);
    assert_eq!(
        minor[0].ages.get("b").map(String::as_str),
        Some("under 18 (said in chat)")
    );
}

#[test]
fn the_window_forgets_old_signals_and_the_gate_is_configurable() {
    let mut lines: Vec<(&str, &str, Option<&str>, &str)> =
        vec![("c", "a", Some("18+"), "dont tell ur parents")];
    lines.extend(std::iter::repeat_n(("c", "b", Some("13-15"), "gg"), 10));
    lines.push(("c", "a", Some("18+"), "send me a selfie"));
    let narrow = ConversationConfig {
        window: 5,
        ..Default::default()
    };
    let wide = run(&lines, ConversationConfig::default());
    assert_eq!(wide[0].evidence, vec!["line-1", "line-12"]);
    // Twelve messages apart, the two never share a five-message window, and one marker
    // alone is not an arc.
    assert!(run(&lines, narrow.clone()).is_empty());
    let strict = ConversationConfig {
        threshold: 0.99,
        ..Default::default()
    };
    assert!(run(&lines, strict).is_empty());
}

#[test]
fn messages_without_a_conversation_are_the_uploads_and_all_are_counted() {
    let mut t = Tracker::new(ConversationConfig::default());
    for (n, text) in [
        "hi",
        "are you home alone",
        "dont tell anyone",
        "send me a pic of you",
    ]
    .iter()
    .enumerate()
    {
        let mut item = Item::new(format!("line-{n}"), *text);
        item.signals = SignalPatterns::embedded().find(text);
        t.observe(&item);
    }
    let mut other = Item::new("line-9", "gg");
    other.conversation = Some("m-2".into());
    t.observe(&other);
    let (out, count) = t.finish("upload-1");
    assert_eq!(count.assessed, 2);
    assert_eq!(count.over_threshold, 1);
    assert_eq!(out[0].id, "upload-1");
    assert_eq!(out[0].user, None);
}

#[test]
fn user_context_gives_ages_the_upload_does_not() {
    let users = UserContexts::parse(
        "u.csv",
        b"user,age_band,prior_strikes\ngrown,25+,1\nkid,under-13,0\n",
    )
    .expect("parse");
    let bare: Vec<_> = ARC.iter().map(|(c, u, _, t)| (*c, *u, None, *t)).collect();
    let cfg = ConversationConfig {
        users: std::sync::Arc::new(users),
        ..Default::default()
    };
    let out = run(&bare, cfg);
    assert_eq!(out[0].ages.get("kid").map(String::as_str), Some("under-13"));
    assert!(
        out[0].risk
            > run(&bare, ConversationConfig::default())
                .first()
                .map_or(0.0, |c| c.risk)
    );
}

#[test]
fn detected_sexual_content_is_a_signal() {
    let mut item = Item::new("line-1", "x");
    item.categories.sexual = 0.8;
    add_detected_signals(&mut item, 0.5);
    assert_eq!(item.signals, vec![SignalKind::Sexual]);
    let mut low = Item::new("line-2", "x");
    low.categories.sexual = 0.2;
    add_detected_signals(&mut low, 0.5);
    assert!(low.signals.is_empty());
}
