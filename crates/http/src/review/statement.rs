//! The statement of reasons as a printable page: what was decided, on which grounds and
//! policy passages, by a person or automatically, and how to appeal.

use std::fmt::Write as _;

use moderation_core::stages::review::Statement;
use moderation_core::stages::write_report::esc;

pub(super) fn render(s: &Statement) -> String {
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Statement of \
         reasons</title><style>body{font:15px/1.5 system-ui,sans-serif;max-width:46em;margin:2em \
         auto;padding:0 1em}dt{font-weight:600;margin-top:.8em}blockquote{border-left:4px solid \
         #999;margin:0;padding:.2em .8em;white-space:pre-wrap}@media print{a{color:#000}}\
         </style></head><body><h1>Statement of reasons</h1><dl>",
    );
    let mut row = |name: &str, value: String| {
        let _ = write!(out, "<dt>{name}</dt><dd>{value}</dd>");
    };
    row(
        "Content",
        format!(
            "<blockquote id=\"content\">{}</blockquote>item <code>{}</code> of {} ({})",
            esc(&s.content),
            esc(&s.item_id),
            esc(&s.source.uri),
            s.source.kind.as_str()
        ),
    );
    row(
        "Decision",
        format!(
            "<b id=\"verdict\">{}</b>, decided <span id=\"decided-by\">{}</span>",
            esc(&s.verdict.replace('_', " ")),
            if s.decided_by == "human" {
                "by a person"
            } else {
                "automatically"
            }
        ),
    );
    if let Some(d) = &s.decision {
        row(
            "Decided by a person",
            format!(
                "{} at {}: {} (policy version <code>{}</code>; the automatic verdict was {})",
                esc(&d.moderator),
                esc(&d.at),
                if d.reason.is_empty() {
                    "no reason given".into()
                } else {
                    esc(&d.reason)
                },
                esc(&d.policy_version),
                d.automatic_verdict.as_str().replace('_', " ")
            ),
        );
    }
    let grounds = if s.grounds.is_empty() {
        "none recorded".to_string()
    } else {
        esc(&s.grounds.join(", ").replace('_', " "))
    };
    row("Grounds", grounds);
    if !s.analysis.is_empty() {
        row("Assessment", esc(&s.analysis));
    }
    let mut passages = String::new();
    for r in &s.policy {
        let _ = write!(
            passages,
            "<blockquote>{}</blockquote><small>{}</small>",
            esc(&r.text),
            esc(&r.uri)
        );
    }
    if passages.is_empty() {
        passages = "no passage was cited".into();
    }
    row("Policy", passages);
    if !s.models.is_empty() {
        row("Automated means used", esc(&s.models.join(", ")));
    }
    row("How to appeal", esc(&s.how_to_appeal));
    out.push_str("</dl></body></html>");
    out
}
