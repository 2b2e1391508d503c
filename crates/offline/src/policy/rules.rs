//! The rules judge: the offline stand-in for the LLM. It decides from the passages it was given
//! and the item's measured scores, section by section, and explains each decision.

use async_trait::async_trait;
use moderation_core::model::{Category, Conversation, Evaluation, Item, RuleHit, Usage, Verdict};
use moderation_core::ports::{JudgeRequest, Judgement, PolicyJudge, PolicyPassage};
use moderation_core::stages::evaluate_policy::{references, swears};
use moderation_core::text::address::item_aimed_at_person;
use moderation_core::Result as CoreResult;

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

/// Judge an item by the `Applies to:` lines of the passages retrieved for it: a section it
/// breaks is a violation; a flag no section governs, or no section that declares anything,
/// needs a person; otherwise no violation, with what was allowed or under the bar.
pub fn judge_by_rules(req: &JudgeRequest<'_>) -> Judgement {
    if let Some(c) = req.conversation {
        return judgement(judge_conversation(c, req.passages), req.passages);
    }
    let governed = governed_sections(req.passages);
    let aim = Aim::of(req.item, req.threshold, &governed);
    let mut findings = Findings::default();
    for (title, governs) in &governed {
        findings.read_section(req.item, title, governs, &aim);
    }
    let mut flagged = flagged_signals(req.item, req.threshold);
    settle_aim(&aim, &mut findings, &mut flagged);
    let uncovered = uncovered(flagged, &findings.covered);
    judgement(decide(findings, &uncovered), req.passages)
}

/// The category a policy section names to govern conversations as a whole.
pub const GROOMING: &str = "grooming";

/// A conversation against the first retrieved section that governs grooming: its risk (the
/// signals weighted by the ages) at or over the section's bar violates it.
fn judge_conversation(c: &Conversation, passages: &[PolicyPassage]) -> Decision {
    let governed = governed_sections(passages);
    let Some((title, governs)) = governed
        .iter()
        .find(|(_, g)| g.categories.iter().any(|x| x == GROOMING))
    else {
        return cannot_decide(format!(
            "no retrieved policy section governs {GROOMING} (the conversation's risk {:.2})",
            c.risk
        ));
    };
    let signals = c.signal_names().join(", ");
    match governs.bar {
        Some(bar) if c.risk >= bar => Decision {
            verdict: Verdict::Violation,
            answer: Some("Y"),
            analysis: format!(
                "Violates \"{title}\": conversation risk {:.2} ≥ bar {bar:.2} ({signals}).",
                c.risk
            ),
            problem: None,
        },
        bar => Decision {
            verdict: Verdict::NoViolation,
            answer: Some("N"),
            analysis: format!(
                "\"{title}\": conversation risk {:.2} is under its bar {} ({signals}).",
                c.risk,
                bar.map_or("(none)".to_string(), |b| format!("{b:.2}"))
            ),
            problem: None,
        },
    }
}

/// The passages that declare what they govern, with their titles, in retrieval order.
fn governed_sections(passages: &[PolicyPassage]) -> Vec<(String, Governs)> {
    passages
        .iter()
        .filter_map(|p| Some((section_title(&p.text), parse_governs(&p.text)?)))
        .collect()
}

/// The categories swearing aimed at a person is judged under, the more specific first.
const AIMED_CATEGORIES: [&str; 2] = ["insult", "harassment_or_abuse"];

/// Swearing aimed at a person, and where the retrieved sections let it be judged.
#[derive(Debug)]
struct Aim {
    /// What shows the swearing is aimed at someone; `None` when it is not (or nobody swears).
    cue: Option<String>,
    /// The first of [`AIMED_CATEGORIES`] a retrieved section governs with a bar.
    category: Option<&'static str>,
    /// How sure the swearing is.
    swearing: f64,
}

impl Aim {
    fn of(item: &Item, threshold: f64, governed: &[(String, Governs)]) -> Self {
        // Swearing aimed at a person is judged by the insult section (harassment when no insult
        // section was retrieved), even where the policy allows profanity on its own.
        let cue = swears(item, threshold)
            .then(|| item_aimed_at_person(item))
            .flatten();
        Aim {
            cue,
            category: aimed_category(governed),
            swearing: swearing_level(item),
        }
    }
}

/// The first of [`AIMED_CATEGORIES`] that a section with a bar governs.
fn aimed_category(governed: &[(String, Governs)]) -> Option<&'static str> {
    AIMED_CATEGORIES.into_iter().find(|c| {
        governed
            .iter()
            .any(|(_, g)| g.bar.is_some() && g.categories.iter().any(|x| x == c))
    })
}

/// The item's profanity score, or 1 with a profanity rule hit: a forbidden term is as sure as
/// the top score.
fn swearing_level(item: &Item) -> f64 {
    let forbidden_term = item
        .rule_hits
        .iter()
        .any(|h| h.category() == Category::Profanity.as_str());
    if forbidden_term {
        1.0
    } else {
        item.categories.profanity
    }
}

/// What the item shows of one category.
struct CategorySignals<'i> {
    /// Its score, for the categories scores are measured in (not `scam`).
    score: Option<f64>,
    /// Listed forbidden terms that matched.
    terms: Vec<&'i RuleHit>,
    /// The offline classifier's hits, which are judgements, not terms.
    classified: Vec<&'i RuleHit>,
}

impl<'i> CategorySignals<'i> {
    fn of(item: &'i Item, category: &str) -> Self {
        let (classified, terms) = item
            .rule_hits
            .iter()
            .filter(|h| h.category() == category)
            .partition(|h| h.rule.ends_with(crate::text::head::RULE_SUFFIX));
        CategorySignals {
            score: Category::parse(category).map(|c| item.categories.get(c)),
            terms,
            classified,
        }
    }

    /// Whether the category shows at all: worth saying a section allows it.
    fn present(&self) -> bool {
        self.score.is_some_and(|s| s >= 0.5)
            || !self.terms.is_empty()
            || !self.classified.is_empty()
    }
}

/// What one category of a section with a bar finds.
#[derive(Debug, PartialEq)]
enum Finding {
    Violation(String),
    Below(String),
}

/// A category against its section's bar: a score at or over it, a forbidden term or a
/// classifier's reading is a violation; a score under it is noted as below the bar.
fn against_bar(title: &str, category: &str, bar: f64, s: &CategorySignals<'_>) -> Option<Finding> {
    let quoted = |hits: &[&RuleHit]| {
        hits.iter()
            .map(|h| h.matched.as_str())
            .collect::<Vec<_>>()
            .join("\", \"")
    };
    if let Some(v) = s.score.filter(|v| *v >= bar) {
        Some(Finding::Violation(format!(
            "\"{title}\": {category} {v:.2} ≥ bar {bar:.2}"
        )))
    } else if !s.terms.is_empty() {
        Some(Finding::Violation(format!(
            "\"{title}\": forbidden term in {category} (\"{}\")",
            quoted(&s.terms)
        )))
    } else if !s.classified.is_empty() {
        Some(Finding::Violation(format!(
            "\"{title}\": the offline classifier reads {category} in \"{}\"",
            quoted(&s.classified)
        )))
    } else {
        s.score
            .filter(|v| *v > 0.0)
            .map(|v| Finding::Below(format!("\"{title}\": {category} {v:.2} < bar {bar:.2}")))
    }
}

/// What the retrieved sections say about the item, gathered section by section.
#[derive(Debug, Default)]
struct Findings {
    violations: Vec<String>,
    allowances: Vec<String>,
    below: Vec<String>,
    /// Every category a retrieved section governs.
    covered: Vec<String>,
    /// Sections that declare what they govern.
    consulted: usize,
    /// Aimed swearing is judged once, by the first section of its category it breaks.
    aimed_judged: bool,
}

impl Findings {
    fn read_section(&mut self, item: &Item, title: &str, governs: &Governs, aim: &Aim) {
        self.consulted += 1;
        self.covered.extend(governs.categories.iter().cloned());
        for category in &governs.categories {
            let signals = CategorySignals::of(item, category);
            let Some(bar) = governs.bar else {
                if signals.present() {
                    self.allowances
                        .push(format!("\"{title}\" allows {category} on its own"));
                }
                continue;
            };
            if self.judge_aimed(title, category, bar, aim) {
                continue;
            }
            match against_bar(title, category, bar, &signals) {
                Some(Finding::Violation(v)) => self.violations.push(v),
                Some(Finding::Below(b)) => self.below.push(b),
                None => {}
            }
        }
    }

    /// Aimed swearing that clears the bar of the section governing its category is a
    /// violation of that section; `true` when it was.
    fn judge_aimed(&mut self, title: &str, category: &str, bar: f64, aim: &Aim) -> bool {
        let Some(cue) = &aim.cue else {
            return false;
        };
        if !self.aimed_judged && aim.category == Some(category) && aim.swearing >= bar {
            self.aimed_judged = true;
            self.violations
                .push(format!("\"{title}\": profanity aimed at a person ({cue})"));
            return true;
        }
        false
    }
}

/// What flagged the item: categories at or above the threshold, and rule-hit categories.
fn flagged_signals(item: &Item, threshold: f64) -> Vec<String> {
    let mut flagged: Vec<String> = Category::ALL
        .iter()
        .filter(|c| item.categories.get(**c) >= threshold)
        .map(|c| c.as_str().to_string())
        .collect();
    flagged.extend(item.rule_hits.iter().map(|h| h.category().to_string()));
    flagged
}

/// Aimed swearing no section settled: with nothing retrieved to judge insults by it flags the
/// item (so it is not passed); under the section's bar, the analysis says so.
fn settle_aim(aim: &Aim, findings: &mut Findings, flagged: &mut Vec<String>) {
    match (&aim.cue, aim.category) {
        (Some(_), None) => flagged.push("insult".into()),
        (Some(cue), Some(category)) if !findings.aimed_judged => findings.below.push(format!(
            "{category}: profanity aimed at a person ({cue}) {:.2} is under the section's bar",
            aim.swearing
        )),
        _ => {}
    }
}

/// The flagged signals no retrieved section governs, sorted, each once.
fn uncovered(flagged: Vec<String>, covered: &[String]) -> Vec<String> {
    let mut uncovered: Vec<String> = flagged
        .into_iter()
        .filter(|c| !covered.contains(c))
        .collect();
    uncovered.sort();
    uncovered.dedup();
    uncovered
}

/// A verdict with its `Y`/`N` answer, the analysis, and the problem a person must look at.
#[derive(Debug, PartialEq)]
struct Decision {
    verdict: Verdict,
    answer: Option<&'static str>,
    analysis: String,
    problem: Option<String>,
}

/// Decide from the findings: any violation wins; then a flag no section governs; then a pass
/// when some section was consulted.
fn decide(mut f: Findings, uncovered: &[String]) -> Decision {
    if !f.violations.is_empty() {
        f.violations.dedup();
        Decision {
            verdict: Verdict::Violation,
            answer: Some("Y"),
            analysis: format!("Violates {}.", f.violations.join("; ")),
            problem: None,
        }
    } else if !uncovered.is_empty() {
        // Passing an item no retrieved section speaks to would be a silent "safe".
        cannot_decide(format!(
            "no retrieved policy section governs {} (the signals that flagged this message)",
            uncovered.join(", ")
        ))
    } else if f.consulted > 0 {
        Decision {
            verdict: Verdict::NoViolation,
            answer: Some("N"),
            analysis: no_violation_analysis(f),
            problem: None,
        }
    } else {
        cannot_decide(
            "none of the retrieved policy passages declares what it governs (`Applies to:`)"
                .to_string(),
        )
    }
}

fn cannot_decide(why: String) -> Decision {
    Decision {
        verdict: Verdict::NeedsReview,
        answer: None,
        analysis: format!("Cannot decide: {why}."),
        problem: Some(why),
    }
}

/// Why nothing was violated: how many sections were consulted, what they allow, and what
/// stayed under a bar.
fn no_violation_analysis(mut f: Findings) -> String {
    let mut why = vec![format!(
        "No retrieved section is violated ({} consulted).",
        f.consulted
    )];
    if !f.allowances.is_empty() {
        f.allowances.dedup();
        why.push(format!("{}.", f.allowances.join("; ")));
    }
    if !f.below.is_empty() {
        why.push(format!("Below the bar: {}.", f.below.join("; ")));
    }
    why.join(" ")
}

fn judgement(d: Decision, passages: &[PolicyPassage]) -> Judgement {
    Judgement {
        verdict: d.verdict,
        evaluation: Evaluation {
            answer: d.answer.map(str::to_string),
            analysis: d.analysis,
            references: references(passages),
            model: RULES_MODEL.to_string(),
            // The rules evaluator decides from the message's own scores.
            context: Vec::new(),
            ..Default::default()
        },
        usage: Usage::default(),
        problem: d.problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(rule: &str, matched: &str) -> RuleHit {
        serde_json::from_value(serde_json::json!({"rule": rule, "matched": matched}))
            .expect("rule hit")
    }

    fn governs(categories: &[&str], bar: Option<f64>) -> (String, Governs) {
        let categories = categories.iter().map(|c| c.to_string()).collect();
        ("S".to_string(), Governs { categories, bar })
    }

    #[test]
    fn a_category_is_measured_against_the_bar_in_order_of_evidence() {
        let term = hit("scam:free robux", "FREE R0BUX");
        let classified = hit("scam:embedding head", "paypal after");
        let signals = |score, terms, classified| CategorySignals {
            score,
            terms,
            classified,
        };
        let over = against_bar("T", "insult", 0.5, &signals(Some(0.5), vec![], vec![]));
        assert_eq!(
            over,
            Some(Finding::Violation("\"T\": insult 0.50 ≥ bar 0.50".into()))
        );
        // A listed term is named before the classifier's reading of the same category.
        let both = signals(None, vec![&term], vec![&classified]);
        assert_eq!(
            against_bar("T", "scam", 0.0, &both),
            Some(Finding::Violation(
                "\"T\": forbidden term in scam (\"FREE R0BUX\")".into()
            ))
        );
        let read = signals(None, vec![], vec![&classified]);
        assert!(matches!(
            against_bar("T", "scam", 0.0, &read),
            Some(Finding::Violation(v)) if v.contains("classifier reads scam in \"paypal after\"")
        ));
        let under = against_bar("T", "insult", 0.6, &signals(Some(0.3), vec![], vec![]));
        assert_eq!(
            under,
            Some(Finding::Below("\"T\": insult 0.30 < bar 0.60".into()))
        );
        assert_eq!(
            against_bar("T", "insult", 0.6, &signals(Some(0.0), vec![], vec![])),
            None
        );
    }

    #[test]
    fn aimed_swearing_prefers_an_insult_section_with_a_bar() {
        let harassment = governs(&["harassment_or_abuse"], Some(0.5));
        let insult_allowed = governs(&["insult"], None);
        let insult = governs(&["insult"], Some(0.6));
        assert_eq!(
            aimed_category(&[harassment.clone(), insult_allowed.clone()]),
            Some("harassment_or_abuse")
        );
        assert_eq!(aimed_category(&[harassment, insult]), Some("insult"));
        assert_eq!(aimed_category(&[insult_allowed]), None);
    }

    #[test]
    fn a_profanity_term_is_certain_swearing() {
        let mut item = Item::new("l", "x");
        item.categories.profanity = 0.2;
        assert_eq!(swearing_level(&item), 0.2);
        item.rule_hits.push(hit("profanity:bitch", "b1tch"));
        assert_eq!(swearing_level(&item), 1.0);
    }

    #[test]
    fn uncovered_signals_are_sorted_unique_and_exclude_covered_ones() {
        let flagged = ["scam", "insult", "scam", "profanity"]
            .map(String::from)
            .to_vec();
        let covered = vec!["profanity".to_string()];
        assert_eq!(uncovered(flagged, &covered), vec!["insult", "scam"]);
    }

    #[test]
    fn decisions_follow_violations_then_gaps_then_consulted_sections() {
        let violated = Findings {
            violations: vec!["a".into(), "a".into(), "b".into()],
            consulted: 1,
            ..Default::default()
        };
        let d = decide(violated, &["insult".into()]);
        assert_eq!((d.verdict, d.answer), (Verdict::Violation, Some("Y")));
        assert_eq!(d.analysis, "Violates a; b.");
        let gap = decide(
            Findings {
                consulted: 2,
                ..Default::default()
            },
            &["insult".into()],
        );
        assert_eq!(gap.verdict, Verdict::NeedsReview);
        assert!(gap.problem.is_some_and(|p| p.contains("governs insult")));
        let passed = decide(
            Findings {
                consulted: 2,
                allowances: vec!["x".into(), "x".into()],
                below: vec!["y".into()],
                ..Default::default()
            },
            &[],
        );
        assert_eq!(passed.verdict, Verdict::NoViolation);
        assert_eq!(
            passed.analysis,
            "No retrieved section is violated (2 consulted). x. Below the bar: y."
        );
        let silent = decide(Findings::default(), &[]);
        assert_eq!(
            (silent.verdict, silent.answer),
            (Verdict::NeedsReview, None)
        );
    }
}
