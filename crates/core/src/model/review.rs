//! What people decide about items: decisions, appeals, undos (the append-only audit records
//! under `decisions/<report_id>/`), and what a report shows of them (`items[].decision`,
//! `items[].appeal`, the `moderation.report/v1` contract).

use serde::{Deserialize, Serialize};

use super::{Evaluation, Verdict};

/// A moderator's verdict on an item. It outranks the automatic one, which stays as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HumanVerdict {
    Violation,
    NoViolation,
    /// Handed on to someone more senior: the item stays in the queue.
    Escalated,
}

impl HumanVerdict {
    pub const ALL: [HumanVerdict; 3] = [
        HumanVerdict::Violation,
        HumanVerdict::NoViolation,
        HumanVerdict::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HumanVerdict::Violation => "violation",
            HumanVerdict::NoViolation => "no_violation",
            HumanVerdict::Escalated => "escalated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One recorded decision (`decisions/<report_id>/<at>-<id>.json`, never rewritten).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: String,
    pub report_id: String,
    pub item_id: String,
    pub verdict: HumanVerdict,
    pub reason: String,
    pub moderator: String,
    /// RFC 3339, when it was recorded.
    pub at: String,
    /// The written policy's version when it was decided (a hash of the policy files).
    pub policy_version: String,
    /// The automatic verdict it was made beside, and the models that produced it.
    pub automatic_verdict: Verdict,
    #[serde(default)]
    pub models: Vec<String>,
}

/// Where an appeal stands: open until a person decides the appealed item again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppealState {
    Open,
    /// The decision stands (decided `violation` again).
    Upheld,
    /// The decision was reversed (`no_violation`).
    Overturned,
}

impl AppealState {
    pub fn as_str(self) -> &'static str {
        match self {
            AppealState::Open => "open",
            AppealState::Upheld => "upheld",
            AppealState::Overturned => "overturned",
        }
    }
}

/// The policy check re-run for an appeal, against the policy as it is at the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reevaluation {
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    pub policy_version: String,
    /// Why the re-run could not give a trusted answer, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One appeal against the decision on an item (an append-only record like a decision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appeal {
    pub id: String,
    pub report_id: String,
    pub item_id: String,
    pub state: AppealState,
    pub statement: String,
    pub at: String,
    /// The verdict appealed: the latest decision's, else the automatic one.
    pub original: String,
    pub reevaluation: Reevaluation,
    /// The decision that settled it, once one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_by: Option<String>,
}

/// Taking back a decision: a record of its own, so the audit shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undo {
    pub id: String,
    pub report_id: String,
    pub item_id: String,
    /// The decision taken back.
    pub decision_id: String,
    pub moderator: String,
    pub at: String,
}

/// An audit record, as stored under `decisions/<report_id>/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReviewRecord {
    Decision(Decision),
    Appeal(Appeal),
    Undo(Undo),
}

impl ReviewRecord {
    pub fn id(&self) -> &str {
        match self {
            ReviewRecord::Decision(d) => &d.id,
            ReviewRecord::Appeal(a) => &a.id,
            ReviewRecord::Undo(u) => &u.id,
        }
    }

    pub fn at(&self) -> &str {
        match self {
            ReviewRecord::Decision(d) => &d.at,
            ReviewRecord::Appeal(a) => &a.at,
            ReviewRecord::Undo(u) => &u.at,
        }
    }

    pub fn report_id(&self) -> &str {
        match self {
            ReviewRecord::Decision(d) => &d.report_id,
            ReviewRecord::Appeal(a) => &a.report_id,
            ReviewRecord::Undo(u) => &u.report_id,
        }
    }
}

/// `items[].decision` in a report: the latest decision standing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionView {
    pub verdict: HumanVerdict,
    pub moderator: String,
    pub at: String,
    pub reason: String,
    pub policy_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl From<&Decision> for DecisionView {
    fn from(d: &Decision) -> Self {
        DecisionView {
            verdict: d.verdict,
            moderator: d.moderator.clone(),
            at: d.at.clone(),
            reason: d.reason.clone(),
            policy_version: d.policy_version.clone(),
            id: d.id.clone(),
        }
    }
}

/// `items[].appeal` in a report: the latest appeal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppealView {
    pub state: AppealState,
    pub statement: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reevaluation: Option<Verdict>,
}

impl From<&Appeal> for AppealView {
    fn from(a: &Appeal) -> Self {
        AppealView {
            state: a.state,
            statement: a.statement.clone(),
            at: a.at.clone(),
            reevaluation: Some(a.reevaluation.verdict),
        }
    }
}
