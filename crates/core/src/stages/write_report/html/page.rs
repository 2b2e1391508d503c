//! The frame of every page: head with its Content-Security-Policy and style, and the tail
//! that carries the player's script when there is one.

use super::escape::esc;
use super::player::PLAYER_SCRIPT;

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
.decision,.appeal{border-left:4px solid var(--r);padding:2px 8px;margin:6px 0}.decision.no_violation{border-color:var(--ok)}.decision.violation{border-color:var(--v)}
.violation .verdict{background:var(--v)}.needs_review .verdict{background:var(--r)}.no_violation .verdict{background:var(--ok)}
.text{white-space:pre-wrap;word-break:break-word;margin:6px 0;font-size:16px}
.lang{display:inline-block;padding:0 6px;border-radius:4px;background:#1d4ed8;color:#fff;font-weight:600;text-transform:uppercase;font-size:12px}
.bilingual{display:grid;grid-template-columns:1fr 1fr;gap:12px}.translation{white-space:pre-wrap;word-break:break-word;margin:6px 0;color:#374151;border-left:3px solid #93c5fd;padding-left:8px}
@media (max-width:700px){.bilingual{grid-template-columns:1fr}}.who{color:#555;font-size:13px}.link-expiry{color:#555;font-size:13px}
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
.frame .box.flagged{border-color:var(--v)}
.thread{list-style:none;padding:0;margin:6px 0}.thread li{padding:3px 8px;border-left:3px solid transparent;white-space:pre-wrap;word-break:break-word}
.thread li.evidence{background:#fde2e1;border-left-color:var(--v)}.thread li.signalled{background:#fff4e5;border-left-color:var(--r)}
.thread code.signal{font-size:11px;background:#eee;padding:0 4px;border-radius:3px}.users .instigator{font-weight:700}.age{color:#555}.notchecked{background:#fff4e5;border:1px solid #f5c16c;border-radius:6px;padding:6px 10px}
"#;

/// The Content-Security-Policy: nothing but inline style, plus the player's script (by hash)
/// and media, or the image, when the page has them.
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

/// A whole page around `body`.
pub(crate) fn page(title: &str, body: &str, with_player: bool, with_image: bool) -> String {
    format!(
        "{}{body}{}",
        page_head(title, with_player, with_image),
        page_tail(with_player)
    )
}

/// A page up to the start of its body.
pub(super) fn page_head(title: &str, with_player: bool, with_image: bool) -> String {
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
pub(super) fn page_tail(with_player: bool) -> String {
    let script = if with_player {
        format!("<script>{PLAYER_SCRIPT}</script>")
    } else {
        String::new()
    };
    format!("{script}</body></html>\n")
}
