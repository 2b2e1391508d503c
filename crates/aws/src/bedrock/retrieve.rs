//! `Retrieve`: the policy passages nearest a query, from the knowledge base.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_bedrockagentruntime::types::{
    KnowledgeBaseQuery, KnowledgeBaseRetrievalConfiguration, KnowledgeBaseRetrievalResult,
    KnowledgeBaseVectorSearchConfiguration,
};
use moderation_core::chain::pace::Pacer;
use moderation_core::ports::{PolicyPassage, PolicyRetriever};
use moderation_core::Result as CoreResult;

use super::passage_uri;
use crate::errors::classify;

#[derive(Debug, Clone)]
pub struct KnowledgeBaseRetriever {
    client: aws_sdk_bedrockagentruntime::Client,
    knowledge_base_id: String,
    pacer: Option<Arc<Pacer>>,
}

impl KnowledgeBaseRetriever {
    pub fn new(
        client: aws_sdk_bedrockagentruntime::Client,
        knowledge_base_id: impl Into<String>,
    ) -> Self {
        KnowledgeBaseRetriever {
            client,
            knowledge_base_id: knowledge_base_id.into(),
            pacer: None,
        }
    }

    /// Pace `Retrieve` to `RETRIEVE_TPS`.
    pub fn with_pacer(mut self, pacer: Option<Arc<Pacer>>) -> Self {
        crate::pace::with_pacer!(self, pacer, aws_sdk_bedrockagentruntime::Client)
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig, knowledge_base_id: &str) -> Self {
        Self::new(
            aws_sdk_bedrockagentruntime::Client::new(config),
            knowledge_base_id,
        )
    }
}

fn to_passage(r: &KnowledgeBaseRetrievalResult) -> Option<PolicyPassage> {
    let text = r.content()?.text().to_string();
    let uri = passage_uri(r.location());
    Some(PolicyPassage {
        text,
        uri,
        score: r.score().unwrap_or(0.0),
    })
}

#[async_trait]
impl PolicyRetriever for KnowledgeBaseRetriever {
    async fn retrieve(&self, query: &str, top_k: usize) -> CoreResult<Vec<PolicyPassage>> {
        let config = KnowledgeBaseRetrievalConfiguration::builder()
            .vector_search_configuration(
                KnowledgeBaseVectorSearchConfiguration::builder()
                    .number_of_results(i32::try_from(top_k).unwrap_or(i32::MAX))
                    .build(),
            )
            .build();
        crate::pace::wait(self.pacer.as_ref()).await;
        let out = self
            .client
            .retrieve()
            .knowledge_base_id(&self.knowledge_base_id)
            .retrieval_query(KnowledgeBaseQuery::builder().text(query).build())
            .retrieval_configuration(config)
            .send()
            .await
            .map_err(|e| classify("bedrock-agent-runtime", e))?;
        Ok(out
            .retrieval_results()
            .iter()
            .filter_map(to_passage)
            .collect())
    }
}
