//! One item shown in full: its verdict and who said it when, the text (beside its English
//! translation), how it reads once evasions are undone, why it is held, the rule hits, the
//! category scores, and the policy check.

use std::fmt::Write as _;

use super::escape::esc;
use super::evaluation::render_evaluation;
use super::player::play_button;
use crate::model::{Category, Item, Verdict};

/// The item as a `<section>`; `player` adds a "play" button to a timed segment.
pub(super) fn render_item(out: &mut String, item: &Item, threshold: f64, player: bool) {
    let verdict = item.verdict.unwrap_or(Verdict::NeedsReview).as_str();
    let _ = write!(
        out,
        "<section class=\"item {verdict}\" id=\"{id}\" data-verdict=\"{verdict}\">\
         <div><span class=\"verdict\">{}</span> <code>{id}</code> \
         <span class=\"who\">",
        verdict.replace('_', " "),
        id = esc(&item.id),
    );
    render_who(out, item, player);
    render_human(out, item);
    render_text(out, item);
    render_revealed(out, item);
    if let Some(r) = &item.review_reason {
        let _ = write!(out, "<p class=\"review\">Needs a person: {}</p>", esc(r));
    }
    render_rule_hits(out, item);
    render_category_bars(out, item, threshold);
    if let Some(ev) = &item.evaluation {
        render_evaluation(out, ev);
    }
    out.push_str("</section>");
}

/// The moderator's decision and the appeal, beside the automatic verdict (which stays).
fn render_human(out: &mut String, item: &Item) {
    if let Some(d) = &item.decision {
        let _ = write!(
            out,
            "<p class=\"decision {v}\" data-decision=\"{v}\">Moderator decision: \
             <b>{}</b> by {} at {} ({}); policy version <code>{}</code></p>",
            d.verdict.as_str().replace('_', " "),
            esc(&d.moderator),
            esc(&d.at),
            if d.reason.is_empty() {
                "no reason given".to_string()
            } else {
                esc(&d.reason)
            },
            esc(&d.policy_version),
            v = d.verdict.as_str(),
        );
    }
    if let Some(a) = &item.appeal {
        let _ = write!(
            out,
            "<p class=\"appeal\" data-appeal=\"{s}\">Appeal ({s}) at {}: {}{}</p>",
            esc(&a.at),
            esc(&a.statement),
            a.reevaluation
                .map(|v| format!("; policy check again: {}", v.as_str().replace('_', " ")))
                .unwrap_or_default(),
            s = a.state.as_str(),
        );
    }
}

/// User, time, segment (with its play button), language and toxicity; closes the heading.
fn render_who(out: &mut String, item: &Item, player: bool) {
    if let Some(u) = &item.user {
        let _ = write!(out, "user <b>{}</b> ", esc(u));
    }
    if let Some(t) = &item.timestamp {
        let _ = write!(out, "at {} ", esc(t));
    }
    if let (Some(s), Some(e)) = (item.start_time, item.end_time) {
        let _ = write!(out, "{s:.2}s–{e:.2}s ");
        if player {
            play_button(out, item, s);
        }
    }
    if let Some(lang) = &item.language {
        let _ = write!(
            out,
            "<span class=\"lang\" title=\"language of the original\">{}</span> ",
            esc(lang)
        );
    }
    let _ = write!(out, "· toxicity {:.2}</span></div>", item.toxicity);
}

/// The text as written, and beside it the English that was scored when it was translated.
fn render_text(out: &mut String, item: &Item) {
    let lang_attr = item
        .language
        .as_ref()
        .map(|l| format!(" lang=\"{}\"", esc(l)))
        .unwrap_or_default();
    match &item.translation {
        // The original and the English that was scored, side by side.
        Some(english) => {
            let _ = write!(
                out,
                "<div class=\"bilingual\"><p class=\"text\"{lang_attr}>{}</p>\
                 <p class=\"translation\" lang=\"en\"><small>English (machine translation, scored)</small><br>{}</p></div>",
                esc(&item.text),
                esc(english)
            );
        }
        None => {
            let _ = write!(out, "<p class=\"text\"{lang_attr}>{}</p>", esc(&item.text));
        }
    }
}

/// How the text reads once its evasions are undone, which evasions, over which lines.
fn render_revealed(out: &mut String, item: &Item) {
    let Some(r) = &item.revealed else {
        return;
    };
    let joined = if r.lines.is_empty() {
        String::new()
    } else {
        format!(": {}", r.lines.join(", "))
    };
    let _ = write!(
        out,
        "<p class=\"revealed\">Reads as: “{}” <small>({}{}; scored too)</small></p>",
        esc(&r.text),
        esc(&r.evasions.join(", ").replace('_', " ")),
        esc(&joined)
    );
}

fn render_rule_hits(out: &mut String, item: &Item) {
    if item.rule_hits.is_empty() {
        return;
    }
    out.push_str("<p class=\"rules\">Rule hits: ");
    for h in &item.rule_hits {
        let _ = write!(
            out,
            "<code>{}</code> matched “{}” ",
            esc(&h.rule),
            esc(&h.matched)
        );
    }
    out.push_str("</p>");
}

/// One bar per category, highlighted at or over the threshold.
fn render_category_bars(out: &mut String, item: &Item, threshold: f64) {
    out.push_str("<div class=\"bars\">");
    for c in Category::ALL {
        let v = item.categories.get(c).clamp(0.0, 1.0);
        let hi = if v >= threshold { " class=\"hi\"" } else { "" };
        let _ = write!(
            out,
            "<span>{}</span><div class=\"bar\"><span{hi} style=\"width:{:.0}%\"></span></div><span>{v:.2}</span>",
            c.as_str(),
            v * 100.0
        );
    }
    out.push_str("</div>");
}
