//! The parts of a report page around its items: the header with the source, trigger and
//! summary cards, the errors, and the usage line at the foot.

use std::fmt::Write as _;

use super::escape::esc;
use crate::model::{Report, Status, Summary, TriggerKind, Usage};

/// Error lines shown; the JSON report has them all.
const MAX_ERRORS_SHOWN: usize = 200;

pub(crate) fn status_str(s: Status) -> &'static str {
    match s {
        Status::Complete => "complete",
        Status::Partial => "partial",
        Status::Failed => "failed",
    }
}

/// The page header: title and source line, who reported it (user reports), summary cards.
pub(super) fn render_header<I>(b: &mut String, report: &Report<I>, threshold: f64) {
    render_source_line(b, report);
    render_user_report(b, report);
    render_summary_cards(b, &report.summary, threshold);
}

/// The link back to the index, the title, and where the source came from and when.
fn render_source_line<I>(b: &mut String, report: &Report<I>) {
    let _ = write!(
        b,
        "<header><p class=\"meta\"><a href=\"index.html\">← all reports</a></p>\
         <h1>Moderation report: {}</h1><p class=\"meta\">Source <code>{}</code> ({}{}) · \
         created {} · status <b class=\"status-{st}\">{st}</b> · trigger {}</p>",
        esc(&report.report_id),
        esc(&report.source.uri),
        report.source.kind.as_str(),
        report
            .source
            .language
            .as_deref()
            .map(|l| format!(", spoken language <span class=\"lang\">{}</span>", esc(l)))
            .unwrap_or_default(),
        esc(&report.created_at),
        trigger_str(report.trigger.kind),
        st = status_str(report.status),
    );
}

fn trigger_str(kind: TriggerKind) -> &'static str {
    match kind {
        TriggerKind::Upload => "upload",
        TriggerKind::UserReport => "user report",
    }
}

/// Who reported whom, when a user report started the moderation.
fn render_user_report<I>(b: &mut String, report: &Report<I>) {
    let Some(ur) = &report.trigger.user_report else {
        return;
    };
    let _ = write!(
        b,
        "<p class=\"meta\">Reported by <b>{}</b> about <b>{}</b> in <code>{}</code>: {} ({})</p>",
        esc(&ur.reporter_id),
        esc(&ur.reported_user_id),
        esc(&ur.conversation_id),
        esc(&ur.reason),
        esc(&ur.reported_at)
    );
}

/// The summary cards; they close the header and open the page's main part.
fn render_summary_cards(b: &mut String, s: &Summary, threshold: f64) {
    let _ = write!(
        b,
        "<div class=\"cards\" id=\"summary\">\
         <div class=\"card\"><b data-k=\"items\">{}</b>items</div>\
         <div class=\"card\"><b data-k=\"over_threshold\">{}</b>over threshold ({threshold:.2})</div>\
         <div class=\"card\"><b data-k=\"evaluated\">{}</b>policy-checked</div>\
         <div class=\"card\"><b data-k=\"violations\">{}</b>violations</div>\
         <div class=\"card\"><b data-k=\"needs_review\">{}</b>need review</div>\
         <div class=\"card\"><b>{:.2}</b>max toxicity</div>{}</div></header><main>",
        s.items,
        s.over_threshold,
        s.evaluated,
        s.violations,
        s.needs_review,
        s.max_toxicity,
        conversation_card(s)
    );
}

/// Conversations flagged of those assessed, when the source had any.
fn conversation_card(s: &Summary) -> String {
    match s.conversations {
        Some(c) if c.assessed > 0 => format!(
            "<div class=\"card\"><b data-k=\"conversations\">{}</b>of {} conversations flagged</div>",
            c.over_threshold, c.assessed
        ),
        _ => String::new(),
    }
}

/// The report's errors, the first [`MAX_ERRORS_SHOWN`] of them; nothing when there are none.
pub(super) fn render_errors<I>(b: &mut String, report: &Report<I>) {
    if report.errors.is_empty() {
        return;
    }
    b.push_str("<h2>Errors</h2><ul class=\"errors\">");
    for e in report.errors.iter().take(MAX_ERRORS_SHOWN) {
        let _ = write!(
            b,
            "<li>[{}]{} {}</li>",
            esc(&e.stage),
            e.item
                .as_deref()
                .map(|i| format!(" <code>{}</code>", esc(i)))
                .unwrap_or_default(),
            esc(&e.message)
        );
    }
    if report.errors.len() > MAX_ERRORS_SHOWN {
        let _ = write!(
            b,
            "<li>… and {} more in <code>{}.json</code></li>",
            report.errors.len() - MAX_ERRORS_SHOWN,
            esc(&report.report_id)
        );
    }
    b.push_str("</ul>");
}

/// What the moderation cost; it closes the page's main part.
pub(super) fn render_usage(b: &mut String, u: &Usage) {
    let _ = write!(
        b,
        "<p class=\"meta\">Usage: {} Comprehend units · {} language-detection units · {} \
         characters translated · {:.1} s transcribed · {} LLM calls ({} input / {} output \
         tokens)</p></main>",
        u.comprehend_units,
        u.language_units,
        u.translated_characters,
        u.transcribe_seconds,
        u.llm_calls,
        u.llm_input_tokens,
        u.llm_output_tokens
    );
}
