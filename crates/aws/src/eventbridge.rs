//! Decisions published for the game's backend to enforce: one `PutEvents` entry per decision
//! (or undo), `source` `moderation`, `detail-type` `moderation.decision` (or
//! `moderation.decision-undone`), the record as the detail, on the bus the template names (the
//! user-report bus).

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use moderation_core::error::ServiceErrorKind;
use moderation_core::model::ReviewRecord;
use moderation_core::ports::{detail_type, DecisionEvents};
use moderation_core::{Error as CoreError, Result as CoreResult};

use crate::errors::classify;

const SERVICE: &str = "eventbridge";
pub const SOURCE: &str = "moderation";

pub struct EventBridgeDecisions {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeDecisions {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventBridgeDecisions {
            client,
            bus: bus.into(),
        }
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig, bus: impl Into<String>) -> Self {
        Self::new(aws_sdk_eventbridge::Client::new(config), bus)
    }
}

#[async_trait]
impl DecisionEvents for EventBridgeDecisions {
    async fn publish(&self, record: &ReviewRecord) -> CoreResult<()> {
        let detail = serde_json::to_string(record).map_err(|source| CoreError::Document {
            key: format!("record {}", record.id()),
            source,
        })?;
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(detail_type(record))
            .detail(detail)
            .event_bus_name(&self.bus)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| classify(SERVICE, e))?;
        // PutEvents answers 200 with the entry marked failed (throttled, too large…).
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .find_map(|e| {
                    e.error_code()
                        .map(|c| format!("{c}: {}", e.error_message().unwrap_or_default()))
                })
                .unwrap_or_else(|| "the entry was not accepted".into());
            let kind = if why.contains("Throttl") || why.contains("InternalFailure") {
                ServiceErrorKind::Throttled
            } else {
                ServiceErrorKind::InvalidInput
            };
            return Err(CoreError::service(SERVICE, kind, why));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{mock, mock_client};
    use moderation_core::model::{Decision, HumanVerdict, Verdict};

    fn decision() -> ReviewRecord {
        ReviewRecord::Decision(Decision {
            id: "d1".into(),
            report_id: "r1".into(),
            item_id: "line-2".into(),
            verdict: HumanVerdict::Violation,
            reason: "threat".into(),
            moderator: "sub-1".into(),
            at: "2026-12-07T00:00:00.000Z".into(),
            policy_version: "sha256:1".into(),
            automatic_verdict: Verdict::NeedsReview,
            models: vec![],
        })
    }

    #[tokio::test]
    async fn a_decision_is_one_event_on_the_bus() {
        let rule = mock!(aws_sdk_eventbridge::Client::put_events)
            .match_requests(|r| {
                let e = &r.entries()[0];
                let detail: serde_json::Value =
                    serde_json::from_str(e.detail().unwrap_or_default()).unwrap_or_default();
                r.entries().len() == 1
                    && e.source() == Some("moderation")
                    && e.detail_type() == Some("moderation.decision")
                    && e.event_bus_name() == Some("reports-bus")
                    && detail["verdict"] == "violation"
                    && detail["moderator"] == "sub-1"
            })
            .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());
        let events =
            EventBridgeDecisions::new(mock_client!(aws_sdk_eventbridge, [&rule]), "reports-bus");
        events.publish(&decision()).await.expect("published");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_entry_refused_inside_a_200_is_an_error_naming_why() {
        let rule = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("ThrottlingException")
                        .error_message("Rate exceeded")
                        .build(),
                )
                .build()
        });
        let events = EventBridgeDecisions::new(mock_client!(aws_sdk_eventbridge, [&rule]), "b");
        let err = events.publish(&decision()).await.expect_err("refused");
        assert!(err.to_string().contains("ThrottlingException"), "{err}");
        assert!(err.is_retryable());
    }
}
