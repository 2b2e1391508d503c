//! `RetrieveAndGenerate`: the knowledge base search and the model's answer in one call.

use async_trait::async_trait;
use aws_sdk_bedrockagentruntime::operation::retrieve_and_generate::RetrieveAndGenerateOutput;
use aws_sdk_bedrockagentruntime::types::{
    GenerationConfiguration, KnowledgeBaseRetrievalConfiguration,
    KnowledgeBaseRetrieveAndGenerateConfiguration, KnowledgeBaseVectorSearchConfiguration,
    RetrieveAndGenerateConfiguration, RetrieveAndGenerateInput, RetrieveAndGenerateType,
    RetrievedReference,
};
use aws_smithy_types::error::operation::BuildError;
use moderation_core::model::{Evaluation, Reference, Usage};
use moderation_core::ports::{JudgeRequest, Judgement, PolicyJudge};
use moderation_core::stages::evaluate_policy::prompt::{escape_untrusted, PromptTemplate};
use moderation_core::stages::evaluate_policy::{judgement_from_reply, retrieval_query};
use moderation_core::Result as CoreResult;

use super::passage_uri;
use crate::errors::classify;
use crate::Error;

/// `POLICY_MODE=retrieve_and_generate`: one Bedrock Agent Runtime `RetrieveAndGenerate` call
/// searches the knowledge base and asks the model with our prompt (as a text prompt template
/// with `$search_results$` and `$query$`); citations become the references.
pub struct RetrieveAndGenerateJudge {
    client: aws_sdk_bedrockagentruntime::Client,
    knowledge_base_id: String,
    model_arn: String,
    top_k: usize,
    template: PromptTemplate,
}

impl RetrieveAndGenerateJudge {
    pub fn from_sdk_config(
        config: &aws_config::SdkConfig,
        knowledge_base_id: &str,
        model_arn: &str,
        top_k: usize,
        template: PromptTemplate,
    ) -> Self {
        Self::new(
            aws_sdk_bedrockagentruntime::Client::new(config),
            knowledge_base_id,
            model_arn,
            top_k,
            template,
        )
    }

    pub fn new(
        client: aws_sdk_bedrockagentruntime::Client,
        knowledge_base_id: impl Into<String>,
        model_arn: impl Into<String>,
        top_k: usize,
        template: PromptTemplate,
    ) -> Self {
        RetrieveAndGenerateJudge {
            client,
            knowledge_base_id: knowledge_base_id.into(),
            model_arn: model_arn.into(),
            top_k,
            template,
        }
    }
}

fn reference_of(r: &RetrievedReference) -> Option<Reference> {
    Some(Reference {
        text: r.content()?.text().to_string(),
        uri: passage_uri(r.location()),
    })
}

#[async_trait]
impl PolicyJudge for RetrieveAndGenerateJudge {
    fn model(&self) -> &str {
        &self.model_arn
    }

    fn retrieves(&self) -> bool {
        true
    }

    async fn judge(&self, req: &JudgeRequest<'_>) -> CoreResult<Judgement> {
        let config = self.generate_configuration(req)?;
        // The search text: the message plus words for what flagged it, escaped like any
        // untrusted text (the prompt shows it as `$query$`).
        let input = RetrieveAndGenerateInput::builder()
            .text(escape_untrusted(&retrieval_query(req.item, req.threshold)))
            .build()
            .map_err(build_error)?;
        let out = self
            .client
            .retrieve_and_generate()
            .input(input)
            .retrieve_and_generate_configuration(config)
            .send()
            .await
            .map_err(|e| classify("bedrock-agent-runtime", e))?;
        let text = out
            .output()
            .map(|o| o.text().to_string())
            .unwrap_or_default();
        Ok(self.judgement(req, &text, cited_references(&out)))
    }
}

fn build_error(source: BuildError) -> Error {
    Error::Build {
        what: "RetrieveAndGenerate",
        source,
    }
}

impl RetrieveAndGenerateJudge {
    /// The knowledge base, its `top_k` nearest passages, the model, and our prompt as the
    /// generation's text prompt template.
    fn generate_configuration(
        &self,
        req: &JudgeRequest<'_>,
    ) -> Result<RetrieveAndGenerateConfiguration, Error> {
        let kb = KnowledgeBaseRetrieveAndGenerateConfiguration::builder()
            .knowledge_base_id(&self.knowledge_base_id)
            .model_arn(&self.model_arn)
            .retrieval_configuration(
                KnowledgeBaseRetrievalConfiguration::builder()
                    .vector_search_configuration(
                        KnowledgeBaseVectorSearchConfiguration::builder()
                            .number_of_results(i32::try_from(self.top_k).unwrap_or(i32::MAX))
                            .build(),
                    )
                    .build(),
            )
            .generation_configuration(
                GenerationConfiguration::builder()
                    .prompt_template(
                        aws_sdk_bedrockagentruntime::types::PromptTemplate::builder()
                            .text_prompt_template(self.template.render_for_generate(req))
                            .build(),
                    )
                    .build(),
            )
            .build()
            .map_err(build_error)?;
        RetrieveAndGenerateConfiguration::builder()
            .r#type(RetrieveAndGenerateType::KnowledgeBase)
            .knowledge_base_configuration(kb)
            .build()
            .map_err(build_error)
    }

    /// The generated answer parsed strictly, with the citations as its references.
    fn judgement(
        &self,
        req: &JudgeRequest<'_>,
        text: &str,
        references: Vec<Reference>,
    ) -> Judgement {
        let usage = Usage {
            llm_calls: 1,
            ..Default::default()
        };
        // An answer that cites no policy is an answer about nothing.
        let precheck = if references.is_empty() {
            Err("the answer cites no policy passage".to_string())
        } else {
            Ok(())
        };
        let evaluation = Evaluation {
            answer: None,
            analysis: String::new(),
            references,
            model: self.model_arn.clone(),
            context: req.context.iter().map(|i| i.id.clone()).collect(),
            ..Default::default()
        };
        judgement_from_reply(text, precheck, evaluation, usage)
    }
}

/// Every passage the answer cites, once, in the order first cited.
fn cited_references(out: &RetrieveAndGenerateOutput) -> Vec<Reference> {
    let mut references: Vec<Reference> = Vec::new();
    for r in out
        .citations()
        .iter()
        .flat_map(|c| c.retrieved_references())
    {
        if let Some(reference) = reference_of(r) {
            if !references.contains(&reference) {
                references.push(reference);
            }
        }
    }
    references
}
