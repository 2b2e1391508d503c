//! The conversations over the conversation gate: who talked (with their ages), the signals
//! named, the thread with the evidence lines marked, and what the policy check said.

use std::fmt::Write as _;

use super::escape::esc;
use super::evaluation::render_evaluation;
use crate::model::Conversation;

pub(super) fn render_conversations(out: &mut String, conversations: &[Conversation]) {
    if conversations.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<section class=\"conversations\"><h2>Conversations ({})</h2>",
        conversations.len()
    );
    for c in conversations {
        render_conversation(out, c);
    }
    out.push_str("</section>");
}

fn render_conversation(out: &mut String, c: &Conversation) {
    let verdict = c.verdict.map_or("needs_review", |v| v.as_str());
    let _ = write!(
        out,
        "<article class=\"item conversation {verdict}\" id=\"conversation-{}\" data-conversation=\"{}\">\
         <span class=\"verdict\">{verdict}</span> <b>Conversation {}</b> \
         <span class=\"who\">risk {:.2}</span>",
        esc(&c.id),
        esc(&c.id),
        esc(&c.id),
        c.risk
    );
    out.push_str("<p class=\"who users\">");
    for (n, user) in c.users.iter().enumerate() {
        let age = c.ages.get(user).map_or("age unknown", String::as_str);
        let mark = if c.user.as_deref() == Some(user) {
            " class=\"instigator\" title=\"the signals are in this user's messages\""
        } else {
            ""
        };
        let sep = if n > 0 { ", " } else { "" };
        let _ = write!(
            out,
            "{sep}<span{mark}>{}</span> <span class=\"age\">({})</span>",
            esc(user),
            esc(age)
        );
    }
    out.push_str("</p>");
    render_signal_names(out, c);
    render_thread(out, c);
    if let Some(ev) = &c.evaluation {
        render_evaluation(out, ev);
    }
    out.push_str("</article>");
}

fn render_signal_names(out: &mut String, c: &Conversation) {
    let names = c.signal_names();
    out.push_str("<p class=\"rules signals\">Signals: ");
    for (n, name) in names.iter().enumerate() {
        let sep = if n > 0 { " " } else { "" };
        let _ = write!(out, "{sep}<code>{}</code>", esc(name));
    }
    out.push_str("</p>");
}

fn render_thread(out: &mut String, c: &Conversation) {
    out.push_str("<ol class=\"thread\">");
    for line in &c.thread {
        let names: Vec<&str> = c
            .signals
            .iter()
            .filter(|s| s.item == line.item)
            .map(|s| s.name.as_str())
            .collect();
        let class = if c.evidence.contains(&line.item) {
            " class=\"evidence\""
        } else if !names.is_empty() {
            " class=\"signalled\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<li{class} data-item=\"{}\"><span class=\"who\">{}</span> {}",
            esc(&line.item),
            esc(line.user.as_deref().unwrap_or("unknown")),
            esc(&line.text)
        );
        for name in names {
            let _ = write!(out, " <code class=\"signal\">{}</code>", esc(name));
        }
        out.push_str("</li>");
    }
    out.push_str("</ol>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversationSignal, ThreadLine, Verdict};

    #[test]
    fn the_thread_marks_evidence_and_escapes_what_players_wrote() {
        let c = Conversation {
            id: "m-<1>".into(),
            users: vec!["a".into(), "b<script>".into()],
            risk: 0.81,
            verdict: Some(Verdict::Violation),
            signals: vec![ConversationSignal {
                name: "secrecy".into(),
                item: "line-2".into(),
            }],
            evidence: vec!["line-2".into()],
            evaluation: None,
            user: Some("a".into()),
            ages: [("b<script>".to_string(), "13-15".to_string())].into(),
            thread: vec![
                ThreadLine {
                    item: "line-1".into(),
                    user: Some("b<script>".into()),
                    text: "hi".into(),
                },
                ThreadLine {
                    item: "line-2".into(),
                    user: Some("a".into()),
                    text: "dont tell <b>mom</b>".into(),
                },
            ],
        };
        let mut out = String::new();
        render_conversations(&mut out, &[c]);
        assert!(
            out.contains("<li class=\"evidence\" data-item=\"line-2\">"),
            "{out}"
        );
        assert!(out.contains("dont tell &lt;b&gt;mom&lt;/b&gt;"), "{out}");
        assert!(
            out.contains("b&lt;script&gt;</span> <span class=\"age\">(13-15)"),
            "{out}"
        );
        assert!(
            out.contains("<span class=\"age\">(age unknown)</span>"),
            "{out}"
        );
        assert!(!out.contains("<script>") && !out.contains("<b>mom"));
        assert!(out.contains("conversation violation"));
    }
}
