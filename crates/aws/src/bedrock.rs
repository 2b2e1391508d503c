//! The knowledge base (Bedrock Agent Runtime `Retrieve`) and the LLM (Bedrock Runtime
//! `Converse`). The prompt and strict answer parsing are domain logic in core.
//!
//! One file per client: `retrieve` (the knowledge base search), `converse` (the model), and
//! `generate` (`RetrieveAndGenerate`, both in one call), and `ingest` (Bedrock Agent
//! `StartIngestionJob`, the re-index after a policy edit).

mod converse;
mod generate;
mod images;
mod ingest;
mod retrieve;

pub use converse::ConverseModel;
pub use generate::RetrieveAndGenerateJudge;
pub use images::BedrockImages;
pub use ingest::KnowledgeBaseSync;
pub use retrieve::KnowledgeBaseRetriever;

use aws_sdk_bedrockagentruntime::types::RetrievalResultLocation;

/// The S3 URI a knowledge base passage came from, or a placeholder saying there is none.
fn passage_uri(location: Option<&RetrievalResultLocation>) -> String {
    location
        .and_then(|l| l.s3_location())
        .and_then(|s| s.uri())
        .unwrap_or("(knowledge base passage without an S3 location)")
        .to_string()
}

#[cfg(test)]
mod tests;
