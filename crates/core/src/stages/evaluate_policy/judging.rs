//! Judging with retrieval: the policy passages an item's text and signals call up, and the
//! call to the text judge, or to the multimodal check for a picture.

use super::config::{EvaluateConfig, EvaluateDeps};
use super::image_check::{ImageCheckRequest, ImageJudge};
use super::verdict::not_judged;
use crate::error::Result;
use crate::model::{Category, Item, StageDocument};
use crate::ports::{JudgeRequest, Judgement};

/// Why a screened item is being judged, for the prompt and the retrieval query.
pub fn signals_for(item: &Item, threshold: f64) -> String {
    let mut parts: Vec<String> = item
        .categories
        .ranked()
        .into_iter()
        .filter(|(_, s)| *s >= threshold)
        .map(|(c, s)| format!("{} {:.2}", c.as_str(), s))
        .collect();
    for hit in &item.rule_hits {
        parts.push(format!("rule {}", hit.rule));
    }
    if parts.is_empty() {
        format!("overall toxicity {:.2}", item.toxicity)
    } else {
        parts.join(", ")
    }
}

/// The retrieval query: the message plus words describing why it was flagged, so the search
/// finds the governing section even for disguised text.
pub fn retrieval_query(item: &Item, threshold: f64) -> String {
    let mut q = item.text.chars().take(800).collect::<String>();
    for (c, s) in item.categories.ranked() {
        if s >= threshold {
            q.push(' ');
            q.push_str(c.describe());
        }
    }
    for hit in &item.rule_hits {
        q.push(' ');
        match Category::parse(hit.category()) {
            Some(c) => q.push_str(c.describe()),
            None => q.push_str(hit.category()),
        }
    }
    // Swearing at someone is judged as an insult: ask for those sections too.
    if swears(item, threshold) && crate::text::address::item_aimed_at_person(item).is_some() {
        q.push(' ');
        q.push_str(Category::Insult.describe());
    }
    q
}

/// Whether profanity flagged the item: a score at the threshold or a profanity rule hit.
pub fn swears(item: &Item, threshold: f64) -> bool {
    item.categories.profanity >= threshold
        || item
            .rule_hits
            .iter()
            .any(|h| h.category() == Category::Profanity.as_str())
}

pub(super) async fn judge_item(
    item: &Item,
    context: &[&Item],
    threshold: f64,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
) -> Result<Judgement> {
    let passages = if deps.judge.retrieves() {
        Vec::new()
    } else {
        deps.retriever
            .retrieve(&retrieval_query(item, threshold), cfg.top_k)
            .await?
    };
    if passages.is_empty() && !deps.judge.retrieves() {
        // Judging against no policy at all would make any "N" look like a clean bill.
        return Ok(not_judged(
            "the knowledge base returned no policy passage for this message",
            deps.judge.model(),
        ));
    }
    let signals = signals_for(item, threshold);
    deps.judge
        .judge(&JudgeRequest {
            item,
            passages: &passages,
            signals: &signals,
            threshold,
            context,
            conversation: None,
        })
        .await
}

/// The multimodal policy check of an image upload's picture, on the prepared copy screening
/// kept (already within the model's limits: nothing is decoded here).
pub(super) async fn judge_picture<I>(
    doc: &StageDocument<I>,
    item: &Item,
    image_text: &[String],
    judge: &ImageJudge,
    deps: &EvaluateDeps<'_>,
    cfg: &EvaluateConfig,
) -> Result<Judgement> {
    let (bytes, format) = match load_prepared_picture(doc, deps).await? {
        Ok(found) => found,
        Err(why) => return Ok(not_judged(&why, judge.model())),
    };
    let mut query = retrieval_query(item, doc.threshold);
    query.push_str(" image picture");
    let passages = deps.retriever.retrieve(&query, cfg.top_k).await?;
    if passages.is_empty() {
        return Ok(not_judged(
            "the knowledge base returned no policy passage for this picture",
            judge.model(),
        ));
    }
    let image_text: Vec<&str> = image_text.iter().map(String::as_str).collect();
    judge
        .judge(&ImageCheckRequest {
            item,
            passages: &passages,
            image_text: &image_text,
            image: crate::ports::Picture {
                format,
                bytes: &bytes,
            },
        })
        .await
}

/// The prepared picture and its format, or why it cannot be sent to the model.
async fn load_prepared_picture<I>(
    doc: &StageDocument<I>,
    deps: &EvaluateDeps<'_>,
) -> Result<std::result::Result<(Vec<u8>, &'static str), String>> {
    let (Some((bucket, _)), Some(key)) = (
        crate::chain::keys::parse_s3_uri(&doc.source.uri),
        doc.image.as_ref().and_then(|f| f.picture.as_deref()),
    ) else {
        return Ok(Err("screening kept no prepared copy of the picture".into()));
    };
    let Some(bytes) = deps.store.get_bytes(bucket, key).await? else {
        return Ok(Err(format!("the prepared picture {key} no longer exists")));
    };
    let Some(format) = prepared_format(key) else {
        return Ok(Err(format!("{key} is not a prepared PNG or JPEG")));
    };
    if bytes.len() > crate::media::picture::MAX_PREPARED_BYTES {
        return Ok(Err(format!(
            "{key} is {} bytes, over the model's {} byte limit",
            bytes.len(),
            crate::media::picture::MAX_PREPARED_BYTES
        )));
    }
    Ok(Ok((bytes, format)))
}

/// The format of a prepared picture, from its key: screening writes PNG or JPEG only.
fn prepared_format(key: &str) -> Option<&'static str> {
    match crate::chain::keys::extension(key).as_deref() {
        Some("png") => Some("png"),
        Some("jpeg") => Some("jpeg"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swearing_at_someone_asks_for_the_insult_sections() {
        let item = |text: &str| -> Item {
            serde_json::from_value(serde_json::json!({"id":"line-1","text":text,"toxicity":0.9,
                "categories":{"profanity":0.9,"hate_speech":0.0,"sexual":0.0,"insult":0.0,
                "violence_or_threat":0.0,"graphic":0.0,"harassment_or_abuse":0.0},
                "rule_hits":[]}))
            .expect("item")
        };
        let insult = Category::Insult.describe();
        assert!(retrieval_query(&item("stfu noob"), 0.5).contains(insult));
        assert!(!retrieval_query(&item("this lag is shit"), 0.5).contains(insult));
        // Under the threshold profanity flagged nothing, so there is nothing to re-judge.
        assert!(!retrieval_query(&item("stfu noob"), 0.95).contains(insult));
    }

    #[test]
    fn only_prepared_png_and_jpeg_pictures_are_sent() {
        assert_eq!(prepared_format("pictures/abc.png"), Some("png"));
        assert_eq!(prepared_format("pictures/abc.jpeg"), Some("jpeg"));
        assert_eq!(prepared_format("pictures/abc.webp"), None);
        assert_eq!(prepared_format("pictures/abc"), None);
    }
}
