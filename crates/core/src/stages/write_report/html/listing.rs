//! The "Items" section: every item, most urgent first. A few thousand are shown in full; past
//! the limits they are one table row each, and past those counted and left to the JSON report,
//! so a chat log of a million lines still opens in a browser in seconds.

use std::fmt::Write as _;

use super::escape::esc;
use super::item::render_item;
use super::sink::spill;
use crate::chain::spool::ItemSource;
use crate::error::Result;
use crate::model::{Item, Report, Verdict};

/// Below-threshold items shown in full; past this a report collapses them (a chat log of a
/// million lines must still open in a browser in seconds).
pub const MAX_BELOW_IN_FULL: usize = 500;
/// Collapsed below-threshold items listed one line each; the rest are counted.
pub const MAX_BELOW_LISTED: usize = 2_000;
/// Items over the threshold or held for review shown in full; past this they are one line
/// each (a moderator reads a few thousand, and a page of a million must still open).
pub const MAX_FLAGGED_IN_FULL: usize = 2_000;
/// Flagged items shown one line each after those; the rest are counted and left to the JSON.
pub const MAX_FLAGGED_LISTED: usize = 10_000;
/// Characters of a collapsed item's text shown.
const COLLAPSED_TEXT_CHARS: usize = 160;
/// The rank of below-threshold items, shown last; lower ranks are "flagged".
const BELOW: usize = 3;

/// Most urgent first: what a moderator must act on, then what was checked, then the rest.
fn urgency(v: Option<Verdict>) -> usize {
    match v {
        Some(Verdict::Violation) => 0,
        Some(Verdict::NeedsReview) | None => 1,
        Some(Verdict::NoViolation) => 2,
        Some(Verdict::BelowThreshold) => BELOW,
    }
}

/// How the `n`th flagged item (from 1, most urgent first) is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    InFull,
    /// One table row; the first of them opens the table.
    Row {
        first: bool,
    },
    /// Only counted.
    Counted,
}

fn flagged_shown(n: u64) -> Shown {
    let full = MAX_FLAGGED_IN_FULL as u64;
    if n <= full {
        Shown::InFull
    } else if n <= (MAX_FLAGGED_IN_FULL + MAX_FLAGGED_LISTED) as u64 {
        Shown::Row {
            first: n == full + 1,
        }
    } else {
        Shown::Counted
    }
}

/// The section, walking the items once to count them and once per urgency to show them.
pub(super) fn render_items<I: ItemSource>(
    b: &mut String,
    out: &mut dyn std::io::Write,
    report: &Report<I>,
    threshold: f64,
    player: bool,
) -> Result<()> {
    b.push_str("<h2>Items</h2>");
    let mut counts = [0u64; 4];
    report.items.each_item(&mut |item| {
        counts[urgency(item.verdict)] += 1;
        Ok(())
    })?;
    let below = counts[BELOW];
    let flagged = counts[0] + counts[1] + counts[2];
    render_flagged(b, out, report, flagged, threshold, player)?;
    if below > MAX_BELOW_IN_FULL as u64 || report.unlisted.is_some() {
        render_below_collapsed(b, out, report, below, threshold)
    } else {
        render_below_in_full(b, out, report, threshold, player)
    }
}

/// Items over the threshold or held for review, `flagged` of them, most urgent first.
fn render_flagged<I: ItemSource>(
    b: &mut String,
    out: &mut dyn std::io::Write,
    report: &Report<I>,
    flagged: u64,
    threshold: f64,
    player: bool,
) -> Result<()> {
    let mut shown = 0u64;
    for wanted in 0..BELOW {
        report.items.each_item(&mut |item| {
            if urgency(item.verdict) != wanted {
                return Ok(());
            }
            shown += 1;
            match flagged_shown(shown) {
                Shown::InFull => render_item(b, item, threshold, player),
                Shown::Row { first } => {
                    if first {
                        open_more_flagged(b, flagged);
                    }
                    compact_row(b, item, true);
                }
                Shown::Counted => {}
            }
            spill(b, out)
        })?;
    }
    if flagged > MAX_FLAGGED_IN_FULL as u64 {
        close_more_flagged(b, report, flagged);
    }
    Ok(())
}

/// The table of flagged items past those shown in full.
fn open_more_flagged(b: &mut String, flagged: u64) {
    let _ = write!(
        b,
        "<details open id=\"more-flagged\" data-count=\"{n}\"><summary>{n} more \
         items over the threshold or held for review, one line each (most urgent \
         first)</summary><table class=\"below\"><thead><tr><th>Item</th>\
         <th>Verdict</th><th>User</th><th>Toxicity</th><th>Text</th></tr></thead>\
         <tbody>",
        n = flagged - MAX_FLAGGED_IN_FULL as u64
    );
}

/// Ends that table, counting the flagged items not shown at all.
fn close_more_flagged<I>(b: &mut String, report: &Report<I>, flagged: u64) {
    b.push_str("</tbody></table>");
    let left = flagged.saturating_sub((MAX_FLAGGED_IN_FULL + MAX_FLAGGED_LISTED) as u64);
    if left > 0 {
        let _ = write!(
            b,
            "<p class=\"meta\" id=\"flagged-not-shown\" data-count=\"{left}\">… and {left} \
             more, listed in <code>{}.json</code>.</p>",
            esc(&report.report_id)
        );
    }
    b.push_str("</details>");
}

/// Below-threshold items of a report small enough to show them all in full.
fn render_below_in_full<I: ItemSource>(
    b: &mut String,
    out: &mut dyn std::io::Write,
    report: &Report<I>,
    threshold: f64,
    player: bool,
) -> Result<()> {
    report.items.each_item(&mut |item| {
        if urgency(item.verdict) == BELOW {
            render_item(b, item, threshold, player);
        }
        spill(b, out)
    })
}

/// Below-threshold items of a huge report: counted, one line each for the first
/// [`MAX_BELOW_LISTED`] in a closed `<details>`, the rest left to the JSON report (and those
/// screening only counted, named by their range).
fn render_below_collapsed<I: ItemSource>(
    b: &mut String,
    out: &mut dyn std::io::Write,
    report: &Report<I>,
    listed: u64,
    threshold: f64,
) -> Result<()> {
    let unlisted = report.unlisted.as_ref().map_or(0, |u| u.below_threshold);
    let _ = write!(
        b,
        "<details id=\"below-threshold\" data-count=\"{n}\"><summary>{n} items below the \
         threshold ({threshold:.2}), collapsed: none was checked against the policy</summary>\
         <table class=\"below\"><thead><tr><th>Item</th><th>User</th><th>Toxicity</th>\
         <th>Text</th></tr></thead><tbody>",
        n = listed + unlisted
    );
    let mut shown = 0usize;
    report.items.each_item(&mut |item| {
        if item.verdict != Some(Verdict::BelowThreshold) || shown >= MAX_BELOW_LISTED {
            return Ok(());
        }
        shown += 1;
        compact_row(b, item, false);
        spill(b, out)
    })?;
    b.push_str("</tbody></table>");
    render_below_not_listed(b, report, listed);
    b.push_str("</details>");
    Ok(())
}

/// The below-threshold items past those listed, and those screening only counted.
fn render_below_not_listed<I>(b: &mut String, report: &Report<I>, listed: u64) {
    if listed > MAX_BELOW_LISTED as u64 {
        let _ = write!(
            b,
            "<p class=\"meta\">… and {} more below the threshold, listed in <code>{}.json</code>.</p>",
            listed - MAX_BELOW_LISTED as u64,
            esc(&report.report_id)
        );
    }
    if let Some(u) = &report.unlisted {
        let _ = write!(
            b,
            "<p class=\"meta\" id=\"unlisted\" data-count=\"{}\">… and {} more below the \
             threshold (<code>{}</code> to <code>{}</code>, toxicity at most {:.2}) counted at \
             screening and not listed (<code>MAX_LISTED_BELOW_THRESHOLD</code>): the upload \
             itself holds their text.</p>",
            u.below_threshold,
            u.below_threshold,
            esc(&u.first),
            esc(&u.last),
            u.max_toxicity
        );
    }
}

/// One item as a table row: id, (verdict), user, toxicity and the start of its text.
fn compact_row(b: &mut String, item: &Item, with_verdict: bool) {
    let text: String = item.text.chars().take(COLLAPSED_TEXT_CHARS).collect();
    let cut = if item.text.chars().nth(COLLAPSED_TEXT_CHARS).is_some() {
        "…"
    } else {
        ""
    };
    let _ = write!(
        b,
        "<tr id=\"{id}\"><td><code>{id}</code></td>",
        id = esc(&item.id)
    );
    if with_verdict {
        let verdict = item.verdict.unwrap_or(Verdict::NeedsReview).as_str();
        let _ = write!(
            b,
            "<td data-verdict=\"{verdict}\">{}</td>",
            verdict.replace('_', " ")
        );
    }
    let _ = write!(
        b,
        "<td>{}</td><td class=\"num\">{:.2}</td><td>{}{cut}</td></tr>",
        esc(item.user.as_deref().unwrap_or("")),
        item.toxicity,
        esc(&text)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_come_first_and_below_threshold_last() {
        let order = [
            Some(Verdict::Violation),
            Some(Verdict::NeedsReview),
            Some(Verdict::NoViolation),
            Some(Verdict::BelowThreshold),
        ];
        let ranks: Vec<usize> = order.iter().map(|v| urgency(*v)).collect();
        assert_eq!(ranks, [0, 1, 2, BELOW]);
        // An item with no verdict is held for a person, never shown as clean.
        assert_eq!(urgency(None), urgency(Some(Verdict::NeedsReview)));
    }

    #[test]
    fn flagged_items_go_from_full_to_rows_to_counted_at_the_limits() {
        let full = MAX_FLAGGED_IN_FULL as u64;
        let listed = MAX_FLAGGED_LISTED as u64;
        assert_eq!(flagged_shown(1), Shown::InFull);
        assert_eq!(flagged_shown(full), Shown::InFull);
        assert_eq!(flagged_shown(full + 1), Shown::Row { first: true });
        assert_eq!(flagged_shown(full + 2), Shown::Row { first: false });
        assert_eq!(flagged_shown(full + listed), Shown::Row { first: false });
        assert_eq!(flagged_shown(full + listed + 1), Shown::Counted);
    }

    #[test]
    fn a_compact_row_cuts_long_text_and_marks_the_cut() {
        let mut item = Item::new("l<1>", "é".repeat(COLLAPSED_TEXT_CHARS + 1));
        item.verdict = Some(Verdict::NeedsReview);
        let mut b = String::new();
        compact_row(&mut b, &item, true);
        assert!(b.starts_with("<tr id=\"l&lt;1&gt;\">"), "{b}");
        assert!(b.contains("<td data-verdict=\"needs_review\">needs review</td>"));
        assert!(b.contains(&format!("{}…</td>", "é".repeat(COLLAPSED_TEXT_CHARS))));
        let mut short = String::new();
        compact_row(&mut short, &Item::new("x", "hi"), false);
        assert!(short.ends_with("<td>hi</td></tr>") && !short.contains("data-verdict"));
    }
}
