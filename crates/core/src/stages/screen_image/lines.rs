//! Text in the image: each line read becomes an item `text-<n>` with its box, screened like a
//! chat line, plus `caption` when the lines read as one text. Text that could not be read is
//! said, never passed.

use tracing::warn;

use crate::error::Result;
use crate::model::{ErrorEntry, Item, Usage, Verdict};
use crate::ports::{TextLine, TextRead};
use crate::stages::screen_text::screen_messages_within;
use crate::text::parse::ParsedMessage;

use super::{ImageConfig, ImageDeps, STAGE};

/// What became of the text in the image.
#[derive(Default)]
pub(super) struct TextFound {
    pub items: Vec<Item>,
    pub errors: Vec<ErrorEntry>,
    pub usage: Usage,
    /// The reader, when one read the image.
    pub model: Option<String>,
}

/// Item `text`: text in the image that no reader could check, held for a person.
fn unread_text_item(why: String) -> Item {
    Item {
        verdict: Some(Verdict::NeedsReview),
        review_reason: Some(why),
        ..Item::new("text", "[text in the image] not checked")
    }
}

/// Whether the lines read as one text split over lines (a meme's top and bottom caption)
/// rather than separate messages (a chat screenshot: `name: message` lines, or many of them).
fn is_caption(lines: &[TextLine]) -> bool {
    let chat_like = lines
        .iter()
        .filter(|l| {
            l.text.split_once(':').is_some_and(|(name, _)| {
                !name.is_empty() && name.len() <= 24 && !name.contains(' ')
            })
        })
        .count();
    (2..=6).contains(&lines.len()) && chat_like * 2 < lines.len()
}

/// The lines with text, as messages `text-<n>`, plus `caption`, all of them joined, when they
/// read as one text: a meme's top and bottom text is one sentence.
fn line_messages(lines: &[TextLine]) -> Vec<ParsedMessage> {
    let message = |id: String, text: String| ParsedMessage {
        id,
        text,
        ..Default::default()
    };
    let mut messages: Vec<ParsedMessage> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| message(format!("text-{}", n + 1), l.text.trim().to_string()))
        .collect();
    if is_caption(lines) {
        let all: Vec<&str> = lines.iter().map(|l| l.text.trim()).collect();
        messages.push(message("caption".into(), all.join(" ")));
    }
    messages
}

/// The lines screened as messages, each `text-<n>` item kept with its box.
async fn screen_lines(
    lines: Vec<TextLine>,
    deps: &ImageDeps<'_>,
    cfg: &ImageConfig,
) -> (Vec<Item>, Vec<ErrorEntry>, Usage) {
    let lines: Vec<_> = lines
        .into_iter()
        .filter(|l| !l.text.trim().is_empty())
        .collect();
    let messages = line_messages(&lines);
    if messages.is_empty() {
        return (Vec::new(), Vec::new(), Usage::default());
    }
    let (mut items, errors, usage) = screen_messages_within(
        messages,
        &deps.screen,
        cfg.text_threshold,
        cfg.max_concurrency,
        cfg.max_translated_chars,
    )
    .await;
    for (item, line) in items.iter_mut().zip(&lines) {
        item.bounding_box = Some(line.bounding_box);
    }
    (items, errors, usage)
}

/// The text the reader found, screened; or, when it failed or read only part, item `text`
/// held for a person with the reason.
pub(super) async fn screen_text_read(
    read: Result<TextRead>,
    deps: &ImageDeps<'_>,
    cfg: &ImageConfig,
) -> TextFound {
    match read {
        Ok(read) => {
            let (mut items, mut errors, usage) = screen_lines(read.lines, deps, cfg).await;
            if let Some(why) = read.incomplete {
                items.push(unread_text_item(why.clone()));
                errors.push(ErrorEntry::new(STAGE, Some("text"), why));
            }
            TextFound {
                items,
                errors,
                usage,
                model: Some(deps.text.name().to_string()),
            }
        }
        Err(e) => {
            warn!(error = %e, "reading text in the image failed");
            let why = format!(
                "text in the image was not read ({}: {e}); a caption or chat in it is unchecked",
                deps.text.name()
            );
            TextFound {
                items: vec![unread_text_item(why.clone())],
                errors: vec![ErrorEntry::new(STAGE, Some("text"), why)],
                ..TextFound::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> TextLine {
        TextLine {
            text: text.into(),
            confidence: 99.0,
            bounding_box: crate::model::BoundingBox {
                left: 0.1,
                top: 0.1,
                width: 0.5,
                height: 0.1,
            },
        }
    }

    #[test]
    fn a_meme_caption_is_also_screened_as_one_text() {
        let meme = [line(" when you lose "), line("blame the team")];
        assert!(is_caption(&meme));
        let ids: Vec<(String, String)> = line_messages(&meme)
            .into_iter()
            .map(|m| (m.id, m.text))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("text-1".into(), "when you lose".into()),
                ("text-2".into(), "blame the team".into()),
                ("caption".into(), "when you lose blame the team".into()),
            ]
        );
    }

    #[test]
    fn a_chat_screenshot_or_a_single_line_is_no_caption() {
        let chat = [
            line("alice: hi"),
            line("bob: you idiot"),
            line("alice: wow"),
        ];
        assert!(!is_caption(&chat));
        assert!(!is_caption(&[line("just one line")]));
        assert_eq!(line_messages(&chat).len(), 3);
    }
}
