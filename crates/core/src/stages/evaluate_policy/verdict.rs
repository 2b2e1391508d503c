//! What a judge's reply is worth: a strict parser of the policy-check answer, and the
//! judgement made of a reply (trusted Y/N, or `needs_review` with the reason). A leaf both the
//! text judge and the picture check use.

use crate::model::{Evaluation, Reference, Usage, Verdict};
use crate::ports::{Judgement, PolicyPassage};

/// Replies longer than this are not trusted.
pub const MAX_REPLY_BYTES: usize = 8 * 1024;

/// A strictly parsed model reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAnswer {
    pub analysis: String,
    pub answer: char,
}

fn tag_positions(text: &str, tag: &str) -> Vec<usize> {
    text.match_indices(tag).map(|(i, _)| i).collect()
}

/// Accept exactly one `<analysis>` block followed by exactly one `<answer>` of `Y` or `N`.
/// Anything else is an error describing what was wrong; the caller makes it `needs_review`.
pub fn parse_answer(reply: &str) -> std::result::Result<ParsedAnswer, String> {
    if reply.trim().is_empty() {
        return Err("the model's reply is empty".into());
    }
    // A 100-word analysis and a one-letter answer fit in far less; a longer reply ran away.
    if reply.len() > MAX_REPLY_BYTES {
        return Err(format!(
            "the model's reply is {} bytes, longer than any valid answer ({MAX_REPLY_BYTES})",
            reply.len()
        ));
    }
    let (a_open, a_close) = (
        tag_positions(reply, "<analysis>"),
        tag_positions(reply, "</analysis>"),
    );
    let (ans_open, ans_close) = (
        tag_positions(reply, "<answer>"),
        tag_positions(reply, "</answer>"),
    );
    if a_open.len() != 1 || a_close.len() != 1 {
        return Err(format!(
            "expected one <analysis> block, found {} opening and {} closing tags",
            a_open.len(),
            a_close.len()
        ));
    }
    if ans_open.len() != 1 || ans_close.len() != 1 {
        return Err(format!(
            "expected one <answer> block, found {} opening and {} closing tags",
            ans_open.len(),
            ans_close.len()
        ));
    }
    let (ao, ac, so, sc) = (a_open[0], a_close[0], ans_open[0], ans_close[0]);
    if !(ao < ac && ac < so && so < sc) {
        return Err("the <answer> block must follow the closed <analysis> block".into());
    }
    if !reply[sc + "</answer>".len()..].trim().is_empty() {
        return Err("unexpected text after the <answer> block".into());
    }
    let analysis = reply[ao + "<analysis>".len()..ac].trim().to_string();
    let answer = reply[so + "<answer>".len()..sc].trim();
    let answer = match answer {
        "Y" | "y" => 'Y',
        "N" | "n" => 'N',
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(format!("the answer must be Y or N, got {shown:?}"));
        }
    };
    if analysis.is_empty() {
        return Err("the analysis is empty".into());
    }
    Ok(ParsedAnswer { analysis, answer })
}

pub fn references(passages: &[PolicyPassage]) -> Vec<Reference> {
    passages
        .iter()
        .map(|p| Reference {
            text: p.text.clone(),
            uri: p.uri.clone(),
        })
        .collect()
}

/// Turn a model's reply into a judgement: a strictly parsed Y/N, or `needs_review` with the
/// reason when the reply (or `precheck`, e.g. "cites no policy") says it cannot be trusted.
/// `evaluation` carries references, model and context; answer and analysis are filled here.
pub fn judgement_from_reply(
    reply: &str,
    precheck: std::result::Result<(), String>,
    mut evaluation: Evaluation,
    usage: Usage,
) -> Judgement {
    match precheck.and_then(|()| parse_answer(reply)) {
        Ok(p) => {
            evaluation.answer = Some(p.answer.to_string());
            evaluation.analysis = p.analysis;
            Judgement {
                verdict: Verdict::of_answer(p.answer == 'Y'),
                evaluation,
                usage,
                problem: None,
            }
        }
        Err(problem) => {
            evaluation.answer = None;
            evaluation.analysis = reply.chars().take(2000).collect();
            Judgement {
                verdict: Verdict::NeedsReview,
                evaluation,
                usage,
                problem: Some(format!("model reply not trusted: {problem}")),
            }
        }
    }
}

/// A `needs_review` judgement for an item no model could judge, with the reason.
pub(crate) fn not_judged(why: &str, model: &str) -> Judgement {
    Judgement {
        verdict: Verdict::NeedsReview,
        evaluation: Evaluation {
            analysis: format!("Not judged: {why}."),
            model: model.to_string(),
            ..Default::default()
        },
        usage: Usage::default(),
        problem: Some(why.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parser_accepts_one_answer_after_analysis() {
        let ok =
            parse_answer("<analysis>Section 2 forbids threats.</analysis>\n<answer>Y</answer>")
                .expect("valid");
        assert_eq!(ok.answer, 'Y');
        assert_eq!(ok.analysis, "Section 2 forbids threats.");
        let n = parse_answer("  <analysis>fine</analysis><answer> N </answer>\n").expect("valid");
        assert_eq!(n.answer, 'N');
    }

    #[test]
    fn strict_parser_rejects_anything_else() {
        for bad in [
            "",
            "Y",
            "<answer>Y</answer>",
            "<analysis>x</analysis>",
            "<analysis>x</analysis><answer>Yes</answer>",
            "<analysis>x</analysis><answer>Y</answer><answer>N</answer>",
            "<answer>N</answer><analysis>x</analysis>",
            "<analysis>x <answer>N</answer></analysis>",
            "<analysis>x</analysis><answer>Y</answer> trailing",
            "<analysis></analysis><answer>N</answer>",
            "<analysis>a</analysis><analysis>b</analysis><answer>N</answer>",
            "<analysis>x</analysis><answer>N",
            "<analysis>Das ist eine Drohung.</analysis><answer>Ja</answer>",
        ] {
            assert!(parse_answer(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn empty_and_runaway_replies_are_rejected_with_a_reason() {
        assert_eq!(
            parse_answer("  \n").expect_err("empty"),
            "the model's reply is empty"
        );
        let long = format!(
            "<analysis>{}</analysis><answer>Y</answer>",
            "x".repeat(100_000)
        );
        assert!(parse_answer(&long)
            .expect_err("long")
            .contains("longer than any valid answer"));
    }
}
