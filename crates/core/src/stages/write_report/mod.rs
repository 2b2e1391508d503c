//! write-report: the moderator report per source — `reports/<id>.json` (the
//! `moderation.report/v1` contract), a self-contained `reports/<id>.html`, and a row in the
//! report index (`crate::stages::write_report::index`).

pub mod index;

use std::fmt::Write as _;

use tracing::{info, warn};

use crate::chain::delivery::{now_rfc3339, put_spooled, read_stage_document, write_temp, Outcome};
use crate::chain::keys::{self, Stage};
use crate::chain::spool::{ErrorLog, ItemSource, ItemSpool, ItemsSlot, SpooledItems};
use crate::error::{Error, Result};
use crate::model::ObjectRef;
use crate::model::SourceKind;
use crate::model::{
    Category, ErrorEntry, Item, Report, StageDocument, Status, Summary, TriggerKind, Verdict,
    REPORT_SCHEMA,
};
use crate::ports::{MediaLinks, ObjectStore};

const STAGE: &str = "write-report";

/// Counts and fixes items on their way into a report: every item leaves with a verdict, and
/// one that somehow has none is `needs_review` with an error, never dropped and never clean.
struct ReportBuilder {
    summary: Summary,
    errors: ErrorLog,
    status: Status,
    threshold: f64,
}

impl ReportBuilder {
    fn new<I>(doc: &StageDocument<I>) -> Self {
        let mut summary = Summary::default();
        if let Some(u) = &doc.unlisted {
            // Counted at screening: below the threshold, never checked against the policy.
            summary.items += u.below_threshold;
            summary.max_toxicity = summary.max_toxicity.max(u.max_toxicity);
        }
        ReportBuilder {
            summary,
            errors: ErrorLog::new(STAGE),
            status: doc.status,
            threshold: doc.threshold,
        }
    }

    fn add(&mut self, mut item: Item) -> Item {
        if item.verdict.is_none() {
            self.errors.push(ErrorEntry::new(
                STAGE,
                Some(&item.id),
                "no verdict was recorded for this item",
            ));
            item.verdict = Some(Verdict::NeedsReview);
            if self.status == Status::Complete {
                self.status = Status::Partial;
            }
        }
        let s = &mut self.summary;
        s.items += 1;
        if crate::stages::screen_text::over_threshold(&item, self.threshold) {
            s.over_threshold += 1;
        }
        if item.evaluation.is_some() {
            s.evaluated += 1;
        }
        match item.verdict {
            Some(Verdict::Violation) => s.violations += 1,
            Some(Verdict::NeedsReview) => s.needs_review += 1,
            _ => {}
        }
        s.max_toxicity = s.max_toxicity.max(item.toxicity);
        item
    }

    fn finish<I, J>(self, doc: StageDocument<I>, items: J) -> Report<J> {
        let mut errors = doc.errors;
        errors.extend(self.errors.into_entries());
        Report {
            schema: REPORT_SCHEMA.into(),
            report_id: doc.id,
            created_at: now_rfc3339(),
            source: doc.source,
            trigger: doc.trigger,
            status: self.status,
            summary: self.summary,
            items,
            unlisted: doc.unlisted,
            errors,
            usage: doc.usage,
            image: doc.image,
        }
    }
}

/// Build the report from an evaluated document held in memory.
pub fn build_report(doc: StageDocument) -> Report {
    let mut b = ReportBuilder::new(&doc);
    let items: Vec<Item> = doc.items.iter().cloned().map(|i| b.add(i)).collect();
    b.finish(doc, items)
}

/// Build the report from an evaluated document whose items are on disk, item by item.
pub fn build_report_spooled(doc: StageDocument<SpooledItems>) -> Result<Report<SpooledItems>> {
    let mut b = ReportBuilder::new(&doc);
    let mut out = ItemSpool::new()?;
    for item in doc.items.iter()? {
        out.push(&b.add(item?))?;
    }
    let items = out.finish()?;
    Ok(b.finish(doc, items))
}

/// HTML-escape text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // A raw control character (an ESC from a file name) is no HTML: shown as its escape.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => {
                out.extend(c.escape_default())
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{--v:#b3261e;--r:#b26a00;--ok:#1e7b34;--bt:#6b7280;--bg:#f7f7f8;--fg:#1f2328}
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:var(--bg);color:var(--fg)}
header,main{max-width:1100px;margin:0 auto;padding:16px 24px}h1{font-size:22px;margin:8px 0}
.meta{color:#555;font-size:13px}.meta code{background:#eee;padding:1px 4px;border-radius:3px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:22px}.status-failed{color:var(--v)}.status-partial{color:var(--r)}.status-complete{color:var(--ok)}
.item{background:#fff;border:1px solid #ddd;border-left:6px solid var(--bt);border-radius:8px;margin:10px 0;padding:10px 14px}
.item.violation{border-left-color:var(--v)}.item.needs_review{border-left-color:var(--r)}.item.no_violation{border-left-color:var(--ok)}
.verdict{font-weight:600;text-transform:uppercase;font-size:12px;padding:2px 8px;border-radius:10px;color:#fff;background:var(--bt)}
.violation .verdict{background:var(--v)}.needs_review .verdict{background:var(--r)}.no_violation .verdict{background:var(--ok)}
.text{white-space:pre-wrap;word-break:break-word;margin:6px 0;font-size:16px}
.lang{display:inline-block;padding:0 6px;border-radius:4px;background:#1d4ed8;color:#fff;font-weight:600;text-transform:uppercase;font-size:12px}
.bilingual{display:grid;grid-template-columns:1fr 1fr;gap:12px}.translation{white-space:pre-wrap;word-break:break-word;margin:6px 0;color:#374151;border-left:3px solid #93c5fd;padding-left:8px}
@media (max-width:700px){.bilingual{grid-template-columns:1fr}}.who{color:#555;font-size:13px}
.bars{display:grid;grid-template-columns:170px 1fr 44px;gap:2px 8px;align-items:center;font-size:12px;margin:6px 0}
.bar{background:#eee;height:8px;border-radius:4px;overflow:hidden}.bar span{display:block;height:100%;background:#7c3aed}
.bar span.hi{background:var(--v)}.rules{font-size:13px}.rules code{background:#fde2e1;padding:1px 4px;border-radius:3px}
.analysis{background:#f3f4f6;border-radius:6px;padding:8px 10px;margin:6px 0}.checklist{border-collapse:collapse;font-size:13px;margin:6px 0}.checklist caption{text-align:left;font-weight:bold}.checklist td{border:1px solid #ddd;padding:2px 6px}.checklist td.hi{background:#fde2e2;font-weight:bold}.refs{font-size:13px}.refs blockquote{margin:4px 0 8px;padding:4px 10px;border-left:3px solid #ccc;color:#444;white-space:pre-wrap}
.errors li{color:var(--v)}table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left}
th{background:#f0f0f2}td.num{text-align:right}a{color:#0b57d0}.review{color:var(--r);font-size:13px}
.frame{position:relative;display:inline-block;max-width:100%;overflow:hidden;border-radius:6px;background:#222}
.frame img{display:block;max-width:100%;height:auto}.frame.blurred img{filter:blur(28px) grayscale(60%)}
.reveal:checked~.frame.blurred img{filter:none}.reveal-label{cursor:pointer;font-weight:600;color:var(--r)}
.frame .box{position:absolute;border:2px solid #f59e0b;border-radius:2px;box-shadow:0 0 0 1px #0008}
.frame .box.flagged{border-color:var(--v)}.notchecked{background:#fff4e5;border:1px solid #f5c16c;border-radius:6px;padding:6px 10px}
"#;

/// The audio player's only script: "play" buttons seek the recording to their segment, and a
/// link to `#<item id>` opens the report at that segment. It is allowed by its hash alone, so
/// no other script (injected or not) can run. It records what it did in `data-*` attributes.
const PLAYER_SCRIPT: &str = "(function(){var a=document.getElementById('player');if(!a)return;\
function mark(){a.setAttribute('data-position',a.currentTime.toFixed(2));}\
function go(t,play){a.currentTime=t;mark();if(play){var p=a.play();if(p&&p.catch)p.catch(function(){});}}\
a.addEventListener('loadedmetadata',function(){a.setAttribute('data-duration',a.duration.toFixed(2));\
var h=decodeURIComponent(location.hash.slice(1));var b=h&&document.querySelector('button.play[data-item=\"'+CSS.escape(h)+'\"]');\
if(b)go(parseFloat(b.getAttribute('data-start')),false);});\
a.addEventListener('seeked',mark);\
a.addEventListener('error',function(){a.setAttribute('data-error','could not load the recording');});\
document.querySelectorAll('button.play').forEach(function(b){b.addEventListener('click',function(){\
go(parseFloat(b.getAttribute('data-start')),true);});});})();";

fn csp(with_player: bool, with_image: bool) -> String {
    // The image from the report's own folder (offline) or a presigned S3 URL (https).
    let img = if with_image {
        "; img-src 'self' file: https:"
    } else {
        ""
    };
    if !with_player {
        return format!("default-src 'none'; style-src 'unsafe-inline'{img}");
    }
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(PLAYER_SCRIPT.as_bytes()));
    // Media from the report's own folder (offline) or a presigned S3 URL (https).
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; media-src 'self' file: https:"
    )
}

pub(crate) fn page(title: &str, body: &str, with_player: bool, with_image: bool) -> String {
    format!(
        "{}{body}{}",
        page_head(title, with_player, with_image),
        page_tail(with_player)
    )
}

/// A page up to the start of its body.
fn page_head(title: &str, with_player: bool, with_image: bool) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        csp(with_player, with_image),
        esc(title)
    )
}

/// A page from the end of its body.
fn page_tail(with_player: bool) -> String {
    let script = if with_player {
        format!("<script>{PLAYER_SCRIPT}</script>")
    } else {
        String::new()
    };
    format!("{script}</body></html>\n")
}

/// The link a report's audio player uses for `key` in the report's own bucket: relative to
/// `reports/`, each path segment percent-encoded.
pub fn relative_media_link(key: &str) -> String {
    let encoded: Vec<String> = key
        .split('/')
        .map(|seg| {
            percent_encoding::utf8_percent_encode(seg, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .collect();
    format!("../{}", encoded.join("/"))
}

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
/// Error lines shown; the JSON report has them all.
const MAX_ERRORS_SHOWN: usize = 200;
/// Characters of a collapsed item's text shown.
const COLLAPSED_TEXT_CHARS: usize = 160;

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
    b.push_str("</details>");
    Ok(())
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

/// Past this much, rendered HTML goes to the output instead of growing in memory.
const SPILL_BYTES: usize = 64 * 1024;

fn spill(b: &mut String, out: &mut dyn std::io::Write) -> Result<()> {
    if b.len() >= SPILL_BYTES {
        flush_html(b, out)?;
    }
    Ok(())
}

fn flush_html(b: &mut String, out: &mut dyn std::io::Write) -> Result<()> {
    out.write_all(b.as_bytes()).map_err(|source| Error::Io {
        path: "report page".into(),
        source,
    })?;
    b.clear();
    Ok(())
}

pub(crate) fn status_str(s: Status) -> &'static str {
    match s {
        Status::Complete => "complete",
        Status::Partial => "partial",
        Status::Failed => "failed",
    }
}

fn render_item(out: &mut String, item: &Item, threshold: f64, player: bool) {
    let verdict = item.verdict.unwrap_or(Verdict::NeedsReview).as_str();
    let _ = write!(
        out,
        "<section class=\"item {verdict}\" id=\"{id}\" data-verdict=\"{verdict}\">\
         <div><span class=\"verdict\">{}</span> <code>{id}</code> \
         <span class=\"who\">",
        verdict.replace('_', " "),
        id = esc(&item.id),
    );
    if let Some(u) = &item.user {
        let _ = write!(out, "user <b>{}</b> ", esc(u));
    }
    if let Some(t) = &item.timestamp {
        let _ = write!(out, "at {} ", esc(t));
    }
    if let (Some(s), Some(e)) = (item.start_time, item.end_time) {
        let _ = write!(out, "{s:.2}s–{e:.2}s ");
        if player {
            let _ = write!(
                out,
                "<button class=\"play\" type=\"button\" data-item=\"{}\" data-start=\"{s:.2}\">▶ play</button> ",
                esc(&item.id)
            );
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
    if let Some(r) = &item.revealed {
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
    if let Some(r) = &item.review_reason {
        let _ = write!(out, "<p class=\"review\">Needs a person: {}</p>", esc(r));
    }
    if !item.rule_hits.is_empty() {
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
    if let Some(ev) = &item.evaluation {
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
        if !ev.checklist.is_empty() {
            out.push_str(
                "<table class=\"checklist\"><caption>Checklist answered by the model</caption>",
            );
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
        if !ev.context.is_empty() {
            let _ = write!(
                out,
                "<p class=\"who\">Context sent with it (earlier messages of the conversation): {}</p>",
                ev.context.iter().map(|c| esc(c)).collect::<Vec<_>>().join(", ")
            );
        }
        if !ev.references.is_empty() {
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
    }
    out.push_str("</section>");
}

/// The report page. `media_url` (audio sources) adds a player and a "play" button per timed
/// segment.
pub fn render_html(report: &Report, threshold: f64, media_url: Option<&str>) -> String {
    let mut out = Vec::new();
    match render_html_to(report, threshold, media_url, &mut out) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        // Items in memory cannot fail to be read, and a Vec takes every write.
        Err(e) => format!("report could not be rendered: {}", esc(&e.to_string())),
    }
}

/// [`render_html`] written to `out` as it is rendered, walking the items once per verdict
/// (most urgent first): a report of a million items never sits whole in memory.
pub fn render_html_to<I: ItemSource>(
    report: &Report<I>,
    threshold: f64,
    media_url: Option<&str>,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let image = report.source.kind == SourceKind::Image;
    let player = media_url.filter(|_| !image);
    let mut b = page_head(
        &format!("Moderation report {}", report.report_id),
        player.is_some(),
        image && media_url.is_some(),
    );
    let s = &report.summary;
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
        match report.trigger.kind {
            TriggerKind::Upload => "upload",
            TriggerKind::UserReport => "user report",
        },
        st = status_str(report.status),
    );
    if let Some(ur) = &report.trigger.user_report {
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
    let _ = write!(
        b,
        "<div class=\"cards\" id=\"summary\">\
         <div class=\"card\"><b data-k=\"items\">{}</b>items</div>\
         <div class=\"card\"><b data-k=\"over_threshold\">{}</b>over threshold ({threshold:.2})</div>\
         <div class=\"card\"><b data-k=\"evaluated\">{}</b>policy-checked</div>\
         <div class=\"card\"><b data-k=\"violations\">{}</b>violations</div>\
         <div class=\"card\"><b data-k=\"needs_review\">{}</b>need review</div>\
         <div class=\"card\"><b>{:.2}</b>max toxicity</div></div></header><main>",
        s.items, s.over_threshold, s.evaluated, s.violations, s.needs_review, s.max_toxicity
    );
    if image {
        render_image(&mut b, report, media_url)?;
    }
    if let Some(url) = player {
        let _ = write!(
            b,
            "<h2>Recording</h2><audio id=\"player\" controls preload=\"metadata\" src=\"{}\">\
             Your browser cannot play this recording.</audio>",
            esc(url)
        );
    }
    if !report.errors.is_empty() {
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
    // Most urgent first: what a moderator must act on, then what was checked, then the rest.
    let rank = |v: Option<Verdict>| -> usize {
        match v {
            Some(Verdict::Violation) => 0,
            Some(Verdict::NeedsReview) | None => 1,
            Some(Verdict::NoViolation) => 2,
            Some(Verdict::BelowThreshold) => 3,
        }
    };
    b.push_str("<h2>Items</h2>");
    let mut counts = [0u64; 4];
    report.items.each_item(&mut |item| {
        counts[rank(item.verdict)] += 1;
        Ok(())
    })?;
    let below = counts[3];
    let flagged = counts[0] + counts[1] + counts[2];
    let mut shown = 0u64;
    for wanted in 0..3 {
        report.items.each_item(&mut |item| {
            if rank(item.verdict) != wanted {
                return Ok(());
            }
            shown += 1;
            if shown <= MAX_FLAGGED_IN_FULL as u64 {
                render_item(&mut b, item, threshold, player.is_some());
            } else if shown <= (MAX_FLAGGED_IN_FULL + MAX_FLAGGED_LISTED) as u64 {
                if shown == MAX_FLAGGED_IN_FULL as u64 + 1 {
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
                compact_row(&mut b, item, true);
            }
            spill(&mut b, out)
        })?;
    }
    if flagged > MAX_FLAGGED_IN_FULL as u64 {
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
    if below > MAX_BELOW_IN_FULL as u64 || report.unlisted.is_some() {
        render_below_collapsed(&mut b, out, report, below, threshold)?;
    } else {
        report.items.each_item(&mut |item| {
            if rank(item.verdict) == 3 {
                render_item(&mut b, item, threshold, player.is_some());
            }
            spill(&mut b, out)
        })?;
    }
    let u = &report.usage;
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
    b.push_str(&page_tail(player.is_some()));
    flush_html(&mut b, out)
}

/// The image, blurred when anything on it was flagged (a click on "show" reveals it, no
/// script needed), the text lines outlined where they were read, the labels by category with
/// the model that gave them, and what no detector checked.
fn render_image<I: ItemSource>(
    b: &mut String,
    report: &Report<I>,
    media_url: Option<&str>,
) -> Result<()> {
    b.push_str("<h2>Image</h2>");
    // Anything short of a complete, clean check keeps the picture blurred: a failed upload
    // may still be an image a browser shows.
    let mut flagged = report.status != Status::Complete || report.items.item_count() == 0;
    let mut checklist_model: Option<String> = None;
    report.items.each_item(&mut |i| {
        flagged |= !matches!(
            i.verdict,
            Some(Verdict::BelowThreshold | Verdict::NoViolation)
        );
        if i.id == crate::stages::screen_image::PICTURE_ITEM {
            checklist_model = i
                .evaluation
                .as_ref()
                .filter(|e| !e.checklist.is_empty())
                .map(|e| e.model.clone());
        }
        Ok(())
    })?;
    if let Some(url) = media_url {
        let blurred = if flagged { " blurred" } else { "" };
        if flagged {
            // The checkbox is the frame's sibling: `.reveal:checked ~ .frame` lifts the blur.
            b.push_str(
                "<input type=\"checkbox\" id=\"reveal\" class=\"reveal\">\
                 <label for=\"reveal\" class=\"reveal-label\">Show the image \
                 (blurred: something on it was flagged, or it was not fully checked)</label><br>",
            );
        }
        let _ = write!(
            b,
            "<div class=\"frame{blurred}\" id=\"image\" data-blurred=\"{flagged}\">\
             <img src=\"{}\" alt=\"the moderated image\">",
            esc(url)
        );
        report.items.each_item(&mut |item| {
            let Some(bx) = item.bounding_box else {
                return Ok(());
            };
            let hit = matches!(
                item.verdict,
                Some(Verdict::Violation | Verdict::NeedsReview)
            );
            let _ = write!(
                b,
                "<a class=\"box{}\" href=\"#{id}\" title=\"{id}\" data-item=\"{id}\" \
                 style=\"left:{:.2}%;top:{:.2}%;width:{:.2}%;height:{:.2}%\"></a>",
                if hit { " flagged" } else { "" },
                bx.left * 100.0,
                bx.top * 100.0,
                bx.width * 100.0,
                bx.height * 100.0,
                id = esc(&item.id)
            );
            Ok(())
        })?;
        b.push_str("</div>");
    }
    let Some(f) = &report.image else {
        return Ok(());
    };
    let _ = write!(
        b,
        "<p class=\"meta\">{} · {}×{} px{}</p>",
        esc(&f.format.to_uppercase()),
        f.width,
        f.height,
        if f.prepared.is_empty() {
            String::new()
        } else {
            format!(" · checked after: {}", esc(&f.prepared.join("; ")))
        }
    );
    if !f.not_checked.is_empty() {
        let then = match checklist_model.as_deref() {
            Some(m) => format!(
                "The multimodal model {} answered the checklist below about the picture; a \
                 person should look for anything the checklist does not ask.",
                esc(m)
            ),
            None => "A person should look at the image for these.".to_string(),
        };
        let _ = write!(
            b,
            "<p class=\"notchecked\" id=\"not-checked\"><b>Not checked by any detector:</b> {}. \
             {then}</p>",
            esc(&f.not_checked.join(", "))
        );
    }
    let _ = write!(
        b,
        "<h3>Moderation labels</h3><p class=\"meta\">by {}</p>",
        esc(&f.label_model)
    );
    if f.labels.is_empty() {
        b.push_str("<p class=\"meta\">No labels.</p>");
    }
    let mut categories: Vec<&str> = Vec::new();
    for l in &f.labels {
        if !categories.contains(&l.category.as_str()) {
            categories.push(&l.category);
        }
    }
    for c in categories {
        let _ = write!(b, "<div class=\"bars\" data-category=\"{}\">", esc(c));
        for l in f.labels.iter().filter(|l| l.category == c) {
            let pct = l.confidence.clamp(0.0, 100.0);
            let _ = write!(
                b,
                "<span>{}{}</span><div class=\"bar\"><span class=\"hi\" style=\"width:{pct:.0}%\"></span></div><span>{pct:.0}%</span>",
                "&nbsp;&nbsp;".repeat(usize::from(l.level.saturating_sub(1))),
                esc(&l.name)
            );
        }
        b.push_str("</div>");
    }
    if !f.content_types.is_empty() {
        let types: Vec<String> = f
            .content_types
            .iter()
            .map(|t| format!("{} {:.0}%", esc(&t.name), t.confidence))
            .collect();
        let _ = write!(
            b,
            "<p class=\"meta\">Content type: {}</p>",
            types.join(", ")
        );
    }
    if let Some(t) = &f.text_model {
        let _ = write!(b, "<p class=\"meta\">Text read by {}</p>", esc(t));
    }
    Ok(())
}

pub struct ReportDeps<'a> {
    pub store: &'a dyn ObjectStore,
    /// Presigned links for the audio player; without them the report links the recording by
    /// its path relative to `reports/` (the offline folder bucket).
    pub media: Option<&'a dyn MediaLinks>,
    /// Reports fetched at once when seeding the index of a bucket that has none yet.
    pub max_concurrency: usize,
}

/// The whole stage for one `evaluated/<id>.json`: items stream from the document through the
/// report JSON and the page, never all in memory.
pub async fn write_report_object(obj: &ObjectRef, deps: &ReportDeps<'_>) -> Result<Outcome> {
    let (_, doc) = match read_stage_document::<SpooledItems>(
        deps.store,
        Stage::WriteReport,
        obj,
        keys::EVALUATED,
    )
    .await?
    {
        Ok(found) => found,
        Err(outcome) => return Ok(outcome),
    };
    let threshold = doc.threshold;
    let report = tokio::task::spawn_blocking(move || build_report_spooled(doc))
        .await
        .map_err(|e| Error::Input(format!("report builder failed: {e}")))??;
    let json_key = keys::report_json_key(&report.report_id);
    let html_key = keys::report_html_key(&report.report_id);
    put_spooled(
        deps.store,
        &obj.bucket,
        &json_key,
        report.clone().with_items(ItemsSlot),
        &report.items,
        "application/json",
    )
    .await?;
    let media = media_link(&report, &obj.bucket, deps).await;
    let (report, page) = tokio::task::spawn_blocking(move || {
        let page = write_temp(|w| render_html_to(&report, threshold, media.as_deref(), w));
        (report, page)
    })
    .await
    .map_err(|e| Error::Input(format!("report page writer failed: {e}")))?;
    deps.store
        .put_file(
            &obj.bucket,
            &html_key,
            page?.as_ref(),
            "text/html; charset=utf-8",
        )
        .await?;
    // A report not in the index is lost to moderators: a failure here fails the delivery, and
    // the retry rewrites the same report and adds the row once.
    let mut written = vec![json_key, html_key];
    let added = crate::stages::write_report::index::add_to_index(
        deps.store,
        &obj.bucket,
        &report,
        deps.max_concurrency,
    )
    .await?;
    written.extend(added.written);
    info!(
        items = report.summary.items,
        violations = report.summary.violations,
        needs_review = report.summary.needs_review,
        "report written"
    );
    Ok(Outcome::Wrote(written))
}

/// Where the report's audio player loads the recording from, for audio sources: a presigned
/// URL when the backend makes them, else the path relative to `reports/` in the same bucket.
/// A link that cannot be made leaves the report without a player rather than failing it.
async fn media_link<I>(report: &Report<I>, bucket: &str, deps: &ReportDeps<'_>) -> Option<String> {
    if !matches!(report.source.kind, SourceKind::Audio | SourceKind::Image) {
        return None;
    }
    let (src_bucket, key) = keys::parse_s3_uri(&report.source.uri)?;
    // A user report on an empty conversation names a folder, not a recording; a transcript
    // whose job record was lost names the transcript.
    if key.is_empty() || key.ends_with('/') || key.starts_with(keys::TRANSCRIPTS) {
        return None;
    }
    if let Some(links) = deps.media {
        match links.media_url(src_bucket, key).await {
            Ok(Some(url)) => return Some(url),
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "no link to the recording for the audio player");
                return None;
            }
        }
    }
    (src_bucket == bucket).then(|| relative_media_link(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup_and_no_raw_control_character() {
        assert_eq!(
            esc("<b>\"a\" & 'b'</b>"),
            "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;"
        );
        assert_eq!(
            esc("\u{1b}[2Jx\u{0}.txt\nnext"),
            "\\u{1b}[2Jx\\u{0}.txt\nnext"
        );
    }

    fn report_of(flagged: usize, below: usize) -> Report {
        let doc: StageDocument = serde_json::from_value(serde_json::json!({
            "schema": "moderation.evaluated/v1", "id": "r", "created_at": "2026-12-06T00:00:00Z",
            "source": {"uri": "s3://b/incoming/text/x.txt", "kind": "text"},
            "trigger": {"type": "upload"}, "status": "complete", "threshold": 0.5,
            "items": [], "errors": [], "usage": {"comprehend_units": 0, "transcribe_seconds": 0.0,
            "llm_calls": 0, "llm_input_tokens": 0, "llm_output_tokens": 0}
        }))
        .expect("document");
        let items = (0..flagged + below)
            .map(|n| {
                let mut item = Item::new(format!("line-{n}"), format!("message {n}"));
                item.verdict = Some(if n < flagged {
                    item.toxicity = 0.9;
                    if n % 2 == 0 {
                        Verdict::NeedsReview
                    } else {
                        Verdict::Violation
                    }
                } else {
                    Verdict::BelowThreshold
                });
                item
            })
            .collect();
        build_report(StageDocument { items, ..doc })
    }

    #[test]
    fn past_the_limit_flagged_items_are_one_line_each_and_then_counted() {
        let html = render_html(&report_of(MAX_FLAGGED_IN_FULL + 10, 3), 0.5, None);
        // The three clean items are few enough to be shown in full after them.
        assert_eq!(
            html.matches("<section class=\"item ").count(),
            MAX_FLAGGED_IN_FULL + 3
        );
        assert!(html.contains("id=\"more-flagged\" data-count=\"10\""));
        assert_eq!(html.matches("<td data-verdict=").count(), 10);
        assert!(!html.contains("flagged-not-shown"));
        // Violations come first, in full.
        assert!(html.contains("id=\"line-1\" data-verdict=\"violation\""));

        let n = MAX_FLAGGED_IN_FULL + MAX_FLAGGED_LISTED + 3;
        let html = render_html(&report_of(n, 0), 0.5, None);
        assert_eq!(
            html.matches("<td data-verdict=").count(),
            MAX_FLAGGED_LISTED
        );
        assert!(html.contains("id=\"flagged-not-shown\" data-count=\"3\""));
    }

    #[test]
    fn a_spooled_report_renders_the_same_page_as_one_in_memory() {
        let report = report_of(7, 600);
        let items = SpooledItems::from_items(&report.items).expect("spools");
        let spooled = report.clone().with_items(items);
        let mut out = Vec::new();
        render_html_to(&spooled, 0.5, None, &mut out).expect("renders");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            render_html(&report, 0.5, None)
        );
    }
}
