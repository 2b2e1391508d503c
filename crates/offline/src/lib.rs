//! moderation-offline: the embedded default backend. A folder stands in for the bucket, a
//! linear profanity model plus category lexicons stands in for Comprehend, BM25 over the
//! Markdown policy stands in for the knowledge base, and a rules evaluator stands in for the LLM.
//!
//! By concern: [`text`] scores messages, [`policy`] searches the policy and judges by its rules,
//! [`speech`] turns recordings into scored transcripts, [`image`] reads and labels pictures,
//! [`store`] is the folder bucket and [`openai`] the client of a local LLM server.

mod error;
pub mod image;
pub mod openai;
pub mod openai_images;
pub mod policy;
pub mod review;
pub mod speech;
pub mod store;
pub mod text;

pub use error::Error;

pub use self::image::{offline_classifier, NoImageClassifier, TesseractText};
pub use openai_images::OpenAiImages;
pub use policy::{PolicyIndex, RulesJudge};
pub use speech::transcription::LocalTranscription;
pub use store::FolderStore;
pub use text::detector::OfflineDetector;
