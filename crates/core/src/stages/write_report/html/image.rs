//! The "Image" section of an image upload's report: the picture, blurred when anything on it
//! was flagged (a click on "show" reveals it, no script needed), the text lines outlined where
//! they were read, the labels by category with the model that gave them, and what no detector
//! checked.

use std::fmt::Write as _;

use super::escape::esc;
use crate::chain::spool::ItemSource;
use crate::error::Result;
use crate::model::{ImageFindings, ImageLabel, Item, Report, Status, Verdict};

pub(super) fn render_image<I: ItemSource>(
    b: &mut String,
    report: &Report<I>,
    media_url: Option<&str>,
) -> Result<()> {
    b.push_str("<h2>Image</h2>");
    let seen = PictureState::of(report)?;
    if let Some(url) = media_url {
        render_frame(b, report, url, seen.flagged)?;
    }
    let Some(f) = &report.image else {
        return Ok(());
    };
    render_findings_line(b, f);
    render_not_checked(b, f, seen.checklist_model.as_deref());
    render_labels(b, f);
    render_content_and_text_models(b, f);
    Ok(())
}

/// What the items say about the picture as a whole.
#[derive(Debug, Default, PartialEq)]
struct PictureState {
    /// Keep it blurred: something on it was flagged, or it was not fully and cleanly checked.
    flagged: bool,
    /// The multimodal model that answered the checklist about the picture, if one did.
    checklist_model: Option<String>,
}

impl PictureState {
    fn of<I: ItemSource>(report: &Report<I>) -> Result<Self> {
        // Anything short of a complete, clean check keeps the picture blurred: a failed upload
        // may still be an image a browser shows.
        let mut state = PictureState {
            flagged: report.status != Status::Complete || report.items.item_count() == 0,
            checklist_model: None,
        };
        report.items.each_item(&mut |i| {
            state.see(i);
            Ok(())
        })?;
        Ok(state)
    }

    fn see(&mut self, i: &Item) {
        self.flagged |= !matches!(
            i.verdict,
            Some(Verdict::BelowThreshold | Verdict::NoViolation)
        );
        if i.id == crate::stages::screen_image::PICTURE_ITEM {
            self.checklist_model = i
                .evaluation
                .as_ref()
                .filter(|e| !e.checklist.is_empty())
                .map(|e| e.model.clone());
        }
    }
}

/// The picture in its frame (behind a "show" checkbox when flagged) with a box per text line.
fn render_frame<I: ItemSource>(
    b: &mut String,
    report: &Report<I>,
    url: &str,
    flagged: bool,
) -> Result<()> {
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
        render_box(b, item);
        Ok(())
    })?;
    b.push_str("</div>");
    Ok(())
}

/// A link outlining where `item` was read on the picture; nothing for an item with no box.
fn render_box(b: &mut String, item: &Item) {
    let Some(bx) = item.bounding_box else {
        return;
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
}

/// Format, size, and what was done to the picture before it was checked.
fn render_findings_line(b: &mut String, f: &ImageFindings) {
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
}

/// The categories no detector checked, and who (a model's checklist, or a person) covers them.
fn render_not_checked(b: &mut String, f: &ImageFindings, checklist_model: Option<&str>) {
    if f.not_checked.is_empty() {
        return;
    }
    let then = match checklist_model {
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

/// The moderation labels, one block of bars per top category in order of first appearance.
fn render_labels(b: &mut String, f: &ImageFindings) {
    let _ = write!(
        b,
        "<h3>Moderation labels</h3><p class=\"meta\">by {}</p>",
        esc(&f.label_model)
    );
    if f.labels.is_empty() {
        b.push_str("<p class=\"meta\">No labels.</p>");
    }
    for c in label_categories(&f.labels) {
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
}

/// The labels' top categories, each once, in order of first appearance.
fn label_categories(labels: &[ImageLabel]) -> Vec<&str> {
    let mut categories: Vec<&str> = Vec::new();
    for l in labels {
        if !categories.contains(&l.category.as_str()) {
            categories.push(&l.category);
        }
    }
    categories
}

/// Whether it is animated or illustrated, and which model read its text.
fn render_content_and_text_models(b: &mut String, f: &ImageFindings) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, category: &str) -> ImageLabel {
        ImageLabel {
            name: name.into(),
            parent: String::new(),
            level: 1,
            confidence: 50.0,
            category: category.into(),
        }
    }

    #[test]
    fn label_categories_keep_first_appearance_order_once_each() {
        let labels = [
            label("Gun", "Violence"),
            label("Pills", "Drugs"),
            label("Knife", "Violence"),
        ];
        assert_eq!(label_categories(&labels), ["Violence", "Drugs"]);
    }

    #[test]
    fn a_picture_stays_blurred_unless_every_item_is_clean() {
        let mut state = PictureState::default();
        let mut clean = Item::new("text-1", "hi");
        clean.verdict = Some(Verdict::NoViolation);
        state.see(&clean);
        assert!(!state.flagged);
        let mut unjudged = Item::new("text-2", "hi");
        unjudged.verdict = None;
        state.see(&unjudged);
        assert!(state.flagged, "an item with no verdict keeps the blur");
    }

    #[test]
    fn only_the_picture_item_names_the_checklist_model() {
        let mut state = PictureState::default();
        let mut line = Item::new("text-1", "hi");
        line.evaluation = Some(crate::model::Evaluation {
            model: "text-model".into(),
            checklist: vec![crate::model::ChecklistAnswer {
                category: "C".into(),
                question: "Q?".into(),
                answer: "no".into(),
            }],
            ..Default::default()
        });
        state.see(&line);
        assert_eq!(state.checklist_model, None);
        line.id = crate::stages::screen_image::PICTURE_ITEM.into();
        state.see(&line);
        assert_eq!(state.checklist_model.as_deref(), Some("text-model"));
    }
}
