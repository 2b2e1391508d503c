//! The self-contained report page (`reports/<id>.html`), section by section: the page frame
//! (`page`), header and summary (`summary`), the picture (`image`), the audio player
//! (`player`), the items (`listing`, each in full by `item` and `evaluation`). Every piece of
//! text goes through the one escaper (`escape`); HTML is written as it is rendered (`sink`).

mod conversation;
mod escape;
mod evaluation;
mod image;
mod item;
mod listing;
mod page;
mod player;
mod sink;
mod summary;

use std::fmt::Write as _;

use super::media::MediaLink;
use crate::chain::spool::ItemSource;
use crate::error::Result;
use crate::model::{Report, SourceKind};

pub use escape::esc;
pub use listing::{MAX_BELOW_IN_FULL, MAX_BELOW_LISTED, MAX_FLAGGED_IN_FULL, MAX_FLAGGED_LISTED};
pub(crate) use page::page;
pub(crate) use summary::status_str;

/// The report page. `media` (audio and image sources) adds the player and a "play" button per
/// timed segment, or the picture, with when its link stops working if it does.
pub fn render_html(report: &Report, threshold: f64, media: Option<&MediaLink>) -> String {
    let mut out = Vec::new();
    match render_html_to(report, threshold, media, &mut out) {
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
    media: Option<&MediaLink>,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let image = report.source.kind == SourceKind::Image;
    let media_url = media.map(|m| m.url.as_str());
    // An image's link is the picture's, never a recording's.
    let player = media_url.filter(|_| !image);
    let mut b = page::page_head(
        &format!("Moderation report {}", report.report_id),
        player.is_some(),
        image && media_url.is_some(),
    );
    summary::render_header(&mut b, report, threshold);
    if image {
        image::render_image(&mut b, report, media_url)?;
    }
    if let Some(url) = player {
        player::render_player(&mut b, url);
    }
    if let Some(note) = media.and_then(|m| m.note.as_deref()) {
        let _ = write!(b, "<p class=\"link-expiry\">{}</p>", esc(note));
    }
    summary::render_errors(&mut b, report);
    conversation::render_conversations(&mut b, &report.conversations);
    listing::render_items(&mut b, out, report, threshold, player.is_some())?;
    summary::render_usage(&mut b, &report.usage);
    b.push_str(&page::page_tail(player.is_some()));
    sink::flush_html(&mut b, out)
}
