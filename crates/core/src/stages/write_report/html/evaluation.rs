//! What the policy check said about an item: the model's analysis and answer, the category it
//! named, its checklist answers (pictures), the context it was sent and the passages consulted.

use std::fmt::Write as _;

use super::escape::esc;
use crate::model::Evaluation;

pub(super) fn render_evaluation(out: &mut String, ev: &Evaluation) {
    let _ = write!(
        out,
        "<div class=\"analysis\"><b>Policy check</b> ({}, answer {}): {}</div>",
        esc(&ev.model),
        esc(ev.answer.as_deref().unwrap_or("none")),
        esc(&ev.analysis)
    );
    if let Some(category) = &ev.category {
        let _ = write!(
            out,
            "<p class=\"who\">Category named by the model: <b>{}</b></p>",
            esc(category)
        );
    }
    render_checklist(out, ev);
    if !ev.context.is_empty() {
        let _ =
            write!(
            out,
            "<p class=\"who\">Context sent with it (earlier messages of the conversation): {}</p>",
            ev.context.iter().map(|c| esc(c)).collect::<Vec<_>>().join(", ")
        );
    }
    render_references(out, ev);
}

/// The checklist a multimodal model answered, a "yes" highlighted.
fn render_checklist(out: &mut String, ev: &Evaluation) {
    if ev.checklist.is_empty() {
        return;
    }
    out.push_str("<table class=\"checklist\"><caption>Checklist answered by the model</caption>");
    for a in &ev.checklist {
        let yes = if a.answer == "yes" {
            " class=\"hi\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td{yes}>{}</td></tr>",
            esc(&a.category),
            esc(&a.question),
            esc(&a.answer)
        );
    }
    out.push_str("</table>");
}

/// The policy passages the judge was given, in a closed `<details>`.
fn render_references(out: &mut String, ev: &Evaluation) {
    if ev.references.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<details class=\"refs\"><summary>{} policy passage(s) consulted</summary>",
        ev.references.len()
    );
    for r in &ev.references {
        let _ = write!(
            out,
            "<div><code>{}</code><blockquote>{}</blockquote></div>",
            esc(&r.uri),
            esc(&r.text)
        );
    }
    out.push_str("</details>");
}
