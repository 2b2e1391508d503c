//! The audit: every record of a report in time order, and the decisions log as CSV.

use futures::stream::{self, StreamExt, TryStreamExt};

use super::{check_id, ReviewDeps};
use crate::chain::delivery::get_json;
use crate::chain::keys;
use crate::error::{Error, Result};
use crate::model::ReviewRecord;

/// Records read at once.
const READS: usize = 16;

/// Every decision, undo and appeal recorded for `report_id`, oldest first.
pub async fn audit(deps: &ReviewDeps<'_>, report_id: &str) -> Result<Vec<ReviewRecord>> {
    check_id("report_id", report_id)?;
    records_under(deps, &format!("{}{report_id}/", keys::DECISIONS)).await
}

async fn records_under(deps: &ReviewDeps<'_>, prefix: &str) -> Result<Vec<ReviewRecord>> {
    let mut keys: Vec<String> = deps
        .store
        .list(deps.bucket, prefix)
        .await?
        .into_iter()
        .filter(|k| k.ends_with(".json"))
        .collect();
    keys.sort();
    let mut records: Vec<ReviewRecord> = stream::iter(keys)
        .map(|k| async move {
            get_json::<ReviewRecord>(deps.store, deps.bucket, &k)
                .await?
                .ok_or(Error::NotFound { uri: k })
        })
        .buffered(READS)
        .try_collect()
        .await?;
    records.sort_by(|a, b| a.at().cmp(b.at()).then_with(|| a.id().cmp(b.id())));
    Ok(records)
}

pub const CSV_HEADER: [&str; 12] = [
    "at",
    "kind",
    "id",
    "report_id",
    "item_id",
    "verdict",
    "moderator",
    "reason",
    "policy_version",
    "automatic_verdict",
    "models",
    "refers_to",
];

/// The decisions log (every record, or one report's) as CSV, oldest first.
pub async fn export_csv(deps: &ReviewDeps<'_>, report_id: Option<&str>) -> Result<String> {
    let records = match report_id {
        Some(id) => audit(deps, id).await?,
        None => records_under(deps, keys::DECISIONS).await?,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Input(format!("decisions log: {e}"));
    w.write_record(CSV_HEADER).map_err(csv_err)?;
    for r in &records {
        w.write_record(csv_row(r).map(|cell| inert(&cell)))
            .map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Input(format!("decisions log: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Input(format!("decisions log: {e}")))
}

/// A cell a spreadsheet will not run: text a player wrote (an appeal, a reason quoting a
/// message) that starts like a formula gets a leading apostrophe.
pub fn inert(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

fn csv_row(r: &ReviewRecord) -> [String; 12] {
    match r {
        ReviewRecord::Decision(d) => [
            d.at.clone(),
            "decision".into(),
            d.id.clone(),
            d.report_id.clone(),
            d.item_id.clone(),
            d.verdict.as_str().into(),
            d.moderator.clone(),
            d.reason.clone(),
            d.policy_version.clone(),
            d.automatic_verdict.as_str().into(),
            d.models.join(" "),
            String::new(),
        ],
        ReviewRecord::Undo(u) => [
            u.at.clone(),
            "undo".into(),
            u.id.clone(),
            u.report_id.clone(),
            u.item_id.clone(),
            String::new(),
            u.moderator.clone(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            u.decision_id.clone(),
        ],
        ReviewRecord::Appeal(a) => [
            a.at.clone(),
            "appeal".into(),
            a.id.clone(),
            a.report_id.clone(),
            a.item_id.clone(),
            a.reevaluation.verdict.as_str().into(),
            String::new(),
            a.statement.clone(),
            a.reevaluation.policy_version.clone(),
            a.original.clone(),
            a.reevaluation
                .evaluation
                .as_ref()
                .map(|e| e.model.clone())
                .unwrap_or_default(),
            String::new(),
        ],
    }
}
