//! The offline knowledge base and judge.
//!
//! [`PolicyIndex`] splits the Markdown policy (`infra/policies/*.md`) into sections at headings
//! and searches them with BM25. [`RulesJudge`] decides from the retrieved passages alone, as an
//! LLM would: each section declares what it governs in one machine-readable line,
//! `Applies to: <category>, <category>; bar: <0..1 | none>`, and an item violates a section when
//! a governed category's score clears the bar or a forbidden-term hit falls in a governed
//! category. `bar: none` marks a section that explains what is allowed. Swearing aimed at a
//! person ([`moderation_core::text::address`]) is judged by the first insult section with a bar (a
//! harassment section when there is none), whatever the profanity section allows.

use std::fs;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bm25::{Language, SearchEngine, SearchEngineBuilder};
use moderation_core::model::{Category, Evaluation, RuleHit, Usage, Verdict};
use moderation_core::ports::{
    JudgeRequest, Judgement, PolicyJudge, PolicyPassage, PolicyRetriever,
};
use moderation_core::stages::evaluate_policy::{references, swears};
use moderation_core::text::address::item_aimed_at_person;
use moderation_core::Result as CoreResult;

use crate::Error;

/// One section of the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySection {
    pub title: String,
    /// `<file>#<anchor>`.
    pub uri: String,
    /// The section's Markdown, heading included.
    pub text: String,
}

pub struct PolicyIndex {
    sections: Vec<PolicySection>,
    engine: SearchEngine<usize>,
}

fn anchor(title: &str) -> String {
    let mut a = String::new();
    for c in title.chars() {
        if c.is_alphanumeric() {
            a.extend(c.to_lowercase());
        } else if !a.ends_with('-') && !a.is_empty() {
            a.push('-');
        }
    }
    a.trim_end_matches('-').to_string()
}

/// Split Markdown at `#`/`##`/`###` headings; text before the first heading is its own section.
pub fn split_sections(markdown: &str, file_uri: &str) -> Vec<PolicySection> {
    let mut out = Vec::new();
    let mut title = String::new();
    let mut body = String::new();
    let mut push = |title: &str, body: &str| {
        if body.trim().is_empty() {
            return;
        }
        out.push(PolicySection {
            title: title.to_string(),
            uri: if title.is_empty() {
                file_uri.to_string()
            } else {
                format!("{file_uri}#{}", anchor(title))
            },
            text: body.trim().to_string(),
        });
    };
    for line in markdown.lines() {
        let t = line.trim_start();
        let level = t.chars().take_while(|c| *c == '#').count();
        if (1..=3).contains(&level) && t[level..].starts_with(' ') {
            push(&title, &body);
            title = t[level..].trim().to_string();
            body = format!("{line}\n");
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    push(&title, &body);
    out
}

impl PolicyIndex {
    pub fn from_sections(sections: Vec<PolicySection>) -> Result<Self, Error> {
        if sections.is_empty() {
            return Err(Error::Policy {
                path: "(policy)".into(),
                reason: "no policy sections to search".into(),
            });
        }
        let docs: Vec<bm25::Document<usize>> = sections
            .iter()
            .enumerate()
            .map(|(i, s)| bm25::Document::new(i, s.text.clone()))
            .collect();
        let engine = SearchEngineBuilder::<usize>::with_documents(Language::English, docs).build();
        Ok(PolicyIndex { sections, engine })
    }

    /// Index every `*.md` file of `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Self, Error> {
        let io = |source| Error::PolicyIo {
            path: dir.display().to_string(),
            source,
        };
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::Policy {
                path: dir.display().to_string(),
                reason: "contains no .md policy files".into(),
            });
        }
        let mut sections = Vec::new();
        for f in files {
            let text = fs::read_to_string(&f).map_err(|source| Error::PolicyIo {
                path: f.display().to_string(),
                source,
            })?;
            // References name the file within the policy folder, not this machine's path.
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            sections.extend(split_sections(&text, &name));
        }
        Self::from_sections(sections)
    }

    pub fn sections(&self) -> &[PolicySection] {
        &self.sections
    }

    /// BM25 score of every section for `query`, in section order (0 where it does not match).
    pub fn bm25_scores(&self, query: &str) -> Vec<f64> {
        let mut scores = vec![0.0f64; self.sections.len()];
        for r in self.engine.search(query, None) {
            if let Some(s) = scores.get_mut(r.document.id) {
                *s = f64::from(r.score);
            }
        }
        scores
    }

    pub fn search(&self, query: &str, top_k: usize) -> Vec<PolicyPassage> {
        self.engine
            .search(query, top_k)
            .into_iter()
            .filter_map(|r| {
                let s = self.sections.get(r.document.id)?;
                Some(PolicyPassage {
                    text: s.text.clone(),
                    uri: s.uri.clone(),
                    score: f64::from(r.score),
                })
            })
            .collect()
    }
}

#[async_trait]
impl PolicyRetriever for PolicyIndex {
    async fn retrieve(&self, query: &str, top_k: usize) -> CoreResult<Vec<PolicyPassage>> {
        Ok(self.search(query, top_k))
    }
}

/// What a section declares it governs.
#[derive(Debug, Clone, PartialEq)]
pub struct Governs {
    pub categories: Vec<String>,
    /// `None` for `bar: none`: the section explains what is allowed.
    pub bar: Option<f64>,
}

/// Parse the section's `Applies to: a, b; bar: 0.5` line, if it has one.
pub fn parse_governs(text: &str) -> Option<Governs> {
    let line = text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches(['>', '*', '_', ' ']);
        l.strip_prefix("Applies to:")
    })?;
    let (cats, bar) = match line.split_once(';') {
        Some((c, b)) => (c, Some(b)),
        None => (line, None),
    };
    let categories = cats
        .split(',')
        .map(|c| c.trim().trim_matches(['*', '`', '_']).to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let bar = match bar.map(|b| {
        b.trim()
            .trim_start_matches("bar:")
            .trim()
            .trim_matches(['*', '`'])
    }) {
        None => Some(0.5),
        Some("none") => None,
        Some(v) => Some(v.parse::<f64>().ok()?),
    };
    Some(Governs { categories, bar })
}

fn section_title(text: &str) -> String {
    text.lines()
        .next()
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "(untitled)".into())
}

pub const RULES_MODEL: &str = "offline-rules-evaluator";

/// The offline stand-in for the LLM: explicit, repeatable decisions from the passages it was
/// given and the item's measured scores.
#[derive(Debug, Clone, Default)]
pub struct RulesJudge;

#[async_trait]
impl PolicyJudge for RulesJudge {
    fn model(&self) -> &str {
        RULES_MODEL
    }

    fn reads_instructions(&self) -> bool {
        false
    }

    async fn judge(&self, req: &JudgeRequest<'_>) -> CoreResult<Judgement> {
        Ok(judge_by_rules(req))
    }
}

pub fn judge_by_rules(req: &JudgeRequest<'_>) -> Judgement {
    let item = req.item;
    let mut violations: Vec<String> = Vec::new();
    let mut allowances: Vec<String> = Vec::new();
    let mut below: Vec<String> = Vec::new();
    let mut governing = 0usize;
    let has_profanity_hit = item
        .rule_hits
        .iter()
        .any(|h| h.category() == Category::Profanity.as_str());
    let mut covered: Vec<String> = Vec::new();
    // Swearing aimed at a person is judged by the insult section (harassment when no insult
    // section was retrieved), even where the policy allows profanity on its own.
    let aimed = swears(item, req.threshold)
        .then(|| item_aimed_at_person(item))
        .flatten();
    let governed: Vec<(&PolicyPassage, Governs)> = req
        .passages
        .iter()
        .filter_map(|p| Some((p, parse_governs(&p.text)?)))
        .collect();
    let aimed_at = ["insult", "harassment_or_abuse"].into_iter().find(|c| {
        governed
            .iter()
            .any(|(_, g)| g.bar.is_some() && g.categories.iter().any(|x| x == c))
    });
    let mut aimed_judged = false;
    // A profanity rule hit is a forbidden term: as sure as the top score.
    let swearing = if has_profanity_hit {
        1.0
    } else {
        item.categories.profanity
    };
    for (p, g) in &governed {
        governing += 1;
        covered.extend(g.categories.iter().cloned());
        let title = section_title(&p.text);
        for cat in &g.categories {
            let score = Category::parse(cat).map(|c| item.categories.get(c));
            // Listed terms, and the classifier's hits (which are judgements, not terms).
            let (classified, hits): (Vec<&RuleHit>, Vec<&RuleHit>) = item
                .rule_hits
                .iter()
                .filter(|h| h.category() == cat)
                .partition(|h| h.rule.ends_with(crate::head::RULE_SUFFIX));
            let quoted = |hits: &[&RuleHit]| {
                hits.iter()
                    .map(|h| h.matched.as_str())
                    .collect::<Vec<_>>()
                    .join("\", \"")
            };
            match g.bar {
                None => {
                    if score.is_some_and(|s| s >= 0.5) || !hits.is_empty() || !classified.is_empty()
                    {
                        allowances.push(format!("\"{title}\" allows {cat} on its own"));
                    }
                }
                Some(bar) => {
                    if let (Some(cue), false, true) =
                        (&aimed, aimed_judged, aimed_at == Some(cat.as_str()))
                    {
                        if swearing >= bar {
                            aimed_judged = true;
                            violations
                                .push(format!("\"{title}\": profanity aimed at a person ({cue})"));
                            continue;
                        }
                    }
                    if let Some(s) = score.filter(|s| *s >= bar) {
                        violations.push(format!("\"{title}\": {cat} {s:.2} ≥ bar {bar:.2}"));
                    } else if !hits.is_empty() {
                        violations.push(format!(
                            "\"{title}\": forbidden term in {cat} (\"{}\")",
                            quoted(&hits)
                        ));
                    } else if !classified.is_empty() {
                        violations.push(format!(
                            "\"{title}\": the offline classifier reads {cat} in \"{}\"",
                            quoted(&classified)
                        ));
                    } else if let Some(s) = score.filter(|s| *s > 0.0) {
                        below.push(format!("\"{title}\": {cat} {s:.2} < bar {bar:.2}"));
                    }
                }
            }
        }
    }
    // What flagged the item: categories at or above the threshold, and rule-hit categories.
    let mut flagged: Vec<String> = Category::ALL
        .iter()
        .filter(|c| item.categories.get(**c) >= req.threshold)
        .map(|c| c.as_str().to_string())
        .collect();
    flagged.extend(item.rule_hits.iter().map(|h| h.category().to_string()));
    match (&aimed, aimed_at) {
        // Aimed at someone, and nothing retrieved to judge insults by: not a pass.
        (Some(_), None) => flagged.push("insult".into()),
        (Some(cue), Some(cat)) if !aimed_judged => below.push(format!(
            "{cat}: profanity aimed at a person ({cue}) {swearing:.2} is under the section's bar"
        )),
        _ => {}
    }
    let mut uncovered: Vec<String> = flagged
        .into_iter()
        .filter(|c| !covered.contains(c))
        .collect();
    uncovered.sort();
    uncovered.dedup();
    let model = RULES_MODEL.to_string();
    let refs = references(req.passages);
    let (verdict, answer, analysis, problem) = if !violations.is_empty() {
        violations.dedup();
        (
            Verdict::Violation,
            Some("Y"),
            format!("Violates {}.", violations.join("; ")),
            None,
        )
    } else if !uncovered.is_empty() {
        // Passing an item no retrieved section speaks to would be a silent "safe".
        let why = format!(
            "no retrieved policy section governs {} (the signals that flagged this message)",
            uncovered.join(", ")
        );
        (
            Verdict::NeedsReview,
            None,
            format!("Cannot decide: {why}."),
            Some(why),
        )
    } else if governing > 0 {
        let mut why = vec![format!(
            "No retrieved section is violated ({} consulted).",
            governing
        )];
        if !allowances.is_empty() {
            allowances.dedup();
            why.push(format!("{}.", allowances.join("; ")));
        }
        if !below.is_empty() {
            why.push(format!("Below the bar: {}.", below.join("; ")));
        }
        (Verdict::NoViolation, Some("N"), why.join(" "), None)
    } else {
        let why = "none of the retrieved policy passages declares what it governs (`Applies to:`)"
            .to_string();
        (
            Verdict::NeedsReview,
            None,
            format!("Cannot decide: {why}."),
            Some(why),
        )
    };
    Judgement {
        verdict,
        evaluation: Evaluation {
            answer: answer.map(str::to_string),
            analysis,
            references: refs,
            model,
            // The rules evaluator decides from the message's own scores.
            context: Vec::new(),
            ..Default::default()
        },
        usage: Usage::default(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moderation_core::model::Item;

    const POLICY: &str = "# Community policy\nIntro text.\n\n## Threats of violence\n\
        Applies to: violence_or_threat, harassment_or_abuse; bar: 0.5\nNo threats of harm.\n\n\
        ## Profanity\nApplies to: profanity; bar: none\nCasual swearing is allowed.\n\n\
        ## Scams\nApplies to: scam; bar: 0\nNo phishing links or fake giveaways.\n\n\
        ## Insults\nApplies to: insult; bar: 0.6\nNo name-calling aimed at a player.\n";

    #[test]
    fn sections_split_at_headings_with_anchors() {
        let s = split_sections(POLICY, "policy.md");
        let titles: Vec<&str> = s.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            vec![
                "Community policy",
                "Threats of violence",
                "Profanity",
                "Scams",
                "Insults"
            ]
        );
        assert_eq!(s[1].uri, "policy.md#threats-of-violence");
        assert!(s[1].text.starts_with("## Threats of violence"));
    }

    #[test]
    fn governs_lines_parse() {
        let g = parse_governs("## X\nApplies to: insult, profanity; bar: 0.6\n").expect("line");
        assert_eq!(g.categories, vec!["insult", "profanity"]);
        assert_eq!(g.bar, Some(0.6));
        let g = parse_governs("> **Applies to:** `profanity`; bar: none").map(|g| g.bar);
        assert_eq!(g, None.or(Some(None)));
        assert!(parse_governs("no declaration").is_none());
        assert!(parse_governs("Applies to: x; bar: high").is_none());
    }

    fn item(categories: serde_json::Value, rule_hits: serde_json::Value) -> Item {
        let mut c = serde_json::json!({"profanity":0.0,"hate_speech":0.0,"sexual":0.0,"insult":0.0,
            "violence_or_threat":0.0,"graphic":0.0,"harassment_or_abuse":0.0});
        if let (Some(base), Some(over)) = (c.as_object_mut(), categories.as_object()) {
            base.extend(over.clone());
        }
        serde_json::from_value(serde_json::json!({"id":"line-1","text":"x","toxicity":0.9,
            "categories":c,"rule_hits":rule_hits}))
        .expect("item")
    }

    fn judge(item: &Item, sections: &[&str]) -> Judgement {
        let idx = PolicyIndex::from_sections(split_sections(POLICY, "p.md")).expect("index");
        let passages: Vec<PolicyPassage> = sections
            .iter()
            .filter_map(|want| idx.sections().iter().find(|s| s.uri.ends_with(want)))
            .map(|s| PolicyPassage {
                text: s.text.clone(),
                uri: s.uri.clone(),
                score: 1.0,
            })
            .collect();
        judge_by_rules(&JudgeRequest {
            item,
            passages: &passages,
            signals: "",
            threshold: 0.5,
            context: &[],
        })
    }

    #[test]
    fn rules_judge_decides_from_the_sections_it_was_given() {
        let threat = item(
            serde_json::json!({"violence_or_threat": 0.9}),
            serde_json::json!([]),
        );
        let j = judge(&threat, &["#threats-of-violence"]);
        assert_eq!(j.verdict, Verdict::Violation);
        assert!(
            j.evaluation.analysis.contains("Threats of violence"),
            "{j:?}"
        );
        let swear = item(
            serde_json::json!({"profanity": 0.95}),
            serde_json::json!([]),
        );
        let j = judge(&swear, &["#profanity", "#threats-of-violence"]);
        assert_eq!(j.verdict, Verdict::NoViolation);
        assert_eq!(j.evaluation.answer.as_deref(), Some("N"));
        let scam = item(
            serde_json::json!({}),
            serde_json::json!([{"rule":"scam:free robux","matched":"FREE R0BUX"}]),
        );
        let j = judge(&scam, &["#scams"]);
        assert_eq!(j.verdict, Verdict::Violation);
        assert!(
            j.evaluation.analysis.contains("forbidden term in scam"),
            "{j:?}"
        );
        // A classifier's hit is explained as a reading, not as a listed term.
        let classified = item(
            serde_json::json!({}),
            serde_json::json!([{"rule": format!("scam{}", crate::head::RULE_SUFFIX),
                "matched": "trade me your knife, paypal after (p 0.91)"}]),
        );
        let j = judge(&classified, &["#scams"]);
        assert_eq!(j.verdict, Verdict::Violation);
        assert!(
            j.evaluation
                .analysis
                .contains("the offline classifier reads scam in \"trade me your knife")
                && !j.evaluation.analysis.contains("forbidden term"),
            "{j:?}"
        );
    }

    #[test]
    fn rules_judge_never_passes_what_no_section_covers() {
        // Flagged for insult, but only the profanity section came back from the search.
        let insult = item(
            serde_json::json!({"insult": 0.9, "profanity": 0.6}),
            serde_json::json!([]),
        );
        let j = judge(&insult, &["#profanity"]);
        assert_eq!(j.verdict, Verdict::NeedsReview, "{j:?}");
        assert!(j.problem.as_deref().is_some_and(|p| p.contains("insult")));
        assert_eq!(j.evaluation.answer, None);
        // No section declares anything: needs review too.
        let j = judge(&insult, &[]);
        assert_eq!(j.verdict, Verdict::NeedsReview);
    }

    #[test]
    fn swearing_at_a_person_is_judged_as_an_insult() {
        let with_text = |text: &str| {
            let mut i = item(serde_json::json!({"profanity": 0.9}), serde_json::json!([]));
            i.text = text.into();
            i
        };
        let j = judge(&with_text("stfu noob"), &["#profanity", "#insults"]);
        assert_eq!(j.verdict, Verdict::Violation, "{j:?}");
        assert!(j.evaluation.analysis.contains("aimed at a person"), "{j:?}");
        // The same words not aimed at anyone stay allowed.
        let j = judge(&with_text("this lag is shit"), &["#profanity", "#insults"]);
        assert_eq!(j.verdict, Verdict::NoViolation, "{j:?}");
        // No insult section in what came back, but harassment is: judged there.
        let j = judge(
            &with_text("fuck you"),
            &["#profanity", "#threats-of-violence"],
        );
        assert_eq!(j.verdict, Verdict::Violation, "{j:?}");
        // Neither: never passed on the strength of the profanity section alone.
        let j = judge(&with_text("fuck you"), &["#profanity"]);
        assert_eq!(j.verdict, Verdict::NeedsReview, "{j:?}");
        // Under the insult bar: not a violation, and the analysis says why.
        let mut mild = with_text("fuck you");
        mild.categories.profanity = 0.55;
        let j = judge(&mild, &["#profanity", "#insults"]);
        assert_eq!(j.verdict, Verdict::NoViolation, "{j:?}");
        assert!(j.evaluation.analysis.contains("aimed at a person"), "{j:?}");
        // A profanity rule hit counts as swearing even with a low score.
        let mut hit = item(
            serde_json::json!({}),
            serde_json::json!([{"rule":"profanity:bitch","matched":"b1tch"}]),
        );
        hit.text = "dumb b1tch".into();
        assert_eq!(judge(&hit, &["#insults"]).verdict, Verdict::Violation);
    }

    #[test]
    fn search_finds_the_governing_section() {
        let idx = PolicyIndex::from_sections(split_sections(POLICY, "p.md")).expect("index");
        let hits = idx.search("i will hurt you threats violence harm", 2);
        assert!(hits[0].uri.ends_with("#threats-of-violence"), "{hits:?}");
        let hits = idx.search("free robux giveaway click this link scam", 2);
        assert!(hits[0].uri.ends_with("#scams"), "{hits:?}");
    }
}
