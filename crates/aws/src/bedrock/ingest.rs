//! `StartIngestionJob`: re-index the knowledge base's data source after a policy edit.
//! Bedrock runs one ingestion job per data source at a time, so a running one (listed first,
//! or refused with a conflict when two callers race) is reported as busy, not as a failure.

use async_trait::async_trait;
use aws_sdk_bedrockagent::types::{
    IngestionJobFilter, IngestionJobFilterAttribute, IngestionJobFilterOperator,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use moderation_core::ports::{PolicyIndex, SyncStart};
use moderation_core::Result as CoreResult;

use crate::errors::classify;

/// Statuses of a job that has not finished reading the data source.
const RUNNING: [&str; 3] = ["STARTING", "IN_PROGRESS", "STOPPING"];

#[derive(Debug, Clone)]
pub struct KnowledgeBaseSync {
    client: aws_sdk_bedrockagent::Client,
    knowledge_base_id: String,
    data_source_id: String,
}

impl KnowledgeBaseSync {
    pub fn new(
        client: aws_sdk_bedrockagent::Client,
        knowledge_base_id: impl Into<String>,
        data_source_id: impl Into<String>,
    ) -> Self {
        KnowledgeBaseSync {
            client,
            knowledge_base_id: knowledge_base_id.into(),
            data_source_id: data_source_id.into(),
        }
    }

    pub fn from_sdk_config(
        config: &aws_config::SdkConfig,
        knowledge_base_id: &str,
        data_source_id: &str,
    ) -> Self {
        Self::new(
            aws_sdk_bedrockagent::Client::new(config),
            knowledge_base_id,
            data_source_id,
        )
    }

    /// The id of a job still reading the data source, if there is one.
    async fn running_job(&self) -> CoreResult<Option<String>> {
        let filter = IngestionJobFilter::builder()
            .attribute(IngestionJobFilterAttribute::Status)
            .operator(IngestionJobFilterOperator::Eq)
            .set_values(Some(RUNNING.map(String::from).to_vec()))
            .build()
            .map_err(|source| crate::Error::Build {
                what: "ListIngestionJobs",
                source,
            })?;
        let out = self
            .client
            .list_ingestion_jobs()
            .knowledge_base_id(&self.knowledge_base_id)
            .data_source_id(&self.data_source_id)
            .filters(filter)
            .max_results(1)
            .send()
            .await
            .map_err(|e| classify("bedrock-agent", e))?;
        Ok(out
            .ingestion_job_summaries()
            .first()
            .map(|j| j.ingestion_job_id().to_string()))
    }
}

#[async_trait]
impl PolicyIndex for KnowledgeBaseSync {
    async fn start_sync(&self, why: &str) -> CoreResult<SyncStart> {
        if let Some(job_id) = self.running_job().await? {
            return Ok(SyncStart::Busy {
                job_id: Some(job_id),
            });
        }
        let started = self
            .client
            .start_ingestion_job()
            .knowledge_base_id(&self.knowledge_base_id)
            .data_source_id(&self.data_source_id)
            .description(why)
            .send()
            .await;
        match started {
            Ok(out) => Ok(SyncStart::Started {
                job_id: out
                    .ingestion_job()
                    .map(|j| j.ingestion_job_id().to_string())
                    .unwrap_or_default(),
            }),
            // Another caller started one between the list and the start.
            Err(e) if e.code() == Some("ConflictException") => Ok(SyncStart::Busy { job_id: None }),
            Err(e) => Err(classify("bedrock-agent", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_bedrockagent::operation::list_ingestion_jobs::ListIngestionJobsOutput;
    use aws_sdk_bedrockagent::operation::start_ingestion_job::{
        StartIngestionJobError, StartIngestionJobOutput,
    };
    use aws_sdk_bedrockagent::primitives::DateTime;
    use aws_sdk_bedrockagent::types::error::{AccessDeniedException, ConflictException};
    use aws_sdk_bedrockagent::types::{IngestionJob, IngestionJobStatus, IngestionJobSummary};
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    fn none_running() -> Rule {
        mock!(aws_sdk_bedrockagent::Client::list_ingestion_jobs)
            .match_requests(|r| {
                r.knowledge_base_id() == Some("KB00000001")
                    && r.data_source_id() == Some("DS00000001")
                    && r.filters().first().map(|f| f.values().to_vec())
                        == Some(RUNNING.map(String::from).to_vec())
            })
            .then_output(|| {
                ListIngestionJobsOutput::builder()
                    .set_ingestion_job_summaries(Some(Vec::new()))
                    .build()
                    .expect("output")
            })
    }

    fn sync(rules: &[&Rule]) -> KnowledgeBaseSync {
        let client = mock_client!(aws_sdk_bedrockagent, RuleMode::Sequential, rules);
        KnowledgeBaseSync::new(client, "KB00000001", "DS00000001")
    }

    fn job(id: &str, status: IngestionJobStatus) -> IngestionJob {
        IngestionJob::builder()
            .knowledge_base_id("KB00000001")
            .data_source_id("DS00000001")
            .ingestion_job_id(id)
            .status(status)
            .started_at(DateTime::from_secs(0))
            .updated_at(DateTime::from_secs(0))
            .build()
            .expect("job")
    }

    #[tokio::test]
    async fn starts_a_job_with_the_reason_when_none_is_running() {
        let start = mock!(aws_sdk_bedrockagent::Client::start_ingestion_job)
            .match_requests(|r| {
                r.knowledge_base_id() == Some("KB00000001")
                    && r.data_source_id() == Some("DS00000001")
                    && r.description() == Some("sync-policies: 1 changed: policies/a.md")
            })
            .then_output(|| {
                StartIngestionJobOutput::builder()
                    .ingestion_job(job("JOB0000001", IngestionJobStatus::Starting))
                    .build()
            });
        let got = sync(&[&none_running(), &start])
            .start_sync("sync-policies: 1 changed: policies/a.md")
            .await
            .expect("starts");
        assert_eq!(
            got,
            SyncStart::Started {
                job_id: "JOB0000001".into()
            }
        );
    }

    #[tokio::test]
    async fn a_running_job_is_busy_and_nothing_is_started() {
        let running = mock!(aws_sdk_bedrockagent::Client::list_ingestion_jobs).then_output(|| {
            ListIngestionJobsOutput::builder()
                .ingestion_job_summaries(
                    IngestionJobSummary::builder()
                        .knowledge_base_id("KB00000001")
                        .data_source_id("DS00000001")
                        .ingestion_job_id("JOB0000009")
                        .status(IngestionJobStatus::InProgress)
                        .started_at(DateTime::from_secs(0))
                        .updated_at(DateTime::from_secs(0))
                        .build()
                        .expect("summary"),
                )
                .build()
                .expect("output")
        });
        let got = sync(&[&running]).start_sync("x").await.expect("answers");
        assert_eq!(
            got,
            SyncStart::Busy {
                job_id: Some("JOB0000009".into())
            }
        );
    }

    #[tokio::test]
    async fn a_race_lost_to_another_caller_is_busy_and_a_refusal_is_an_error() {
        let conflict = mock!(aws_sdk_bedrockagent::Client::start_ingestion_job).then_error(|| {
            StartIngestionJobError::ConflictException(
                ConflictException::builder()
                    .message("ongoing ingestion job")
                    .meta(ErrorMetadata::builder().code("ConflictException").build())
                    .build(),
            )
        });
        let got = sync(&[&none_running(), &conflict]).start_sync("x").await;
        assert_eq!(got.expect("busy"), SyncStart::Busy { job_id: None });

        let denied = mock!(aws_sdk_bedrockagent::Client::start_ingestion_job).then_error(|| {
            StartIngestionJobError::AccessDeniedException(
                AccessDeniedException::builder()
                    .message("not authorized to perform bedrock:StartIngestionJob")
                    .meta(
                        ErrorMetadata::builder()
                            .code("AccessDeniedException")
                            .build(),
                    )
                    .build(),
            )
        });
        let e = sync(&[&none_running(), &denied])
            .start_sync("x")
            .await
            .expect_err("refused");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("bedrock:StartIngestionJob"), "{e}");
    }
}
