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

// The module paths from before the crate was grouped by concern, which other crates use.
pub use self::image as images;
#[cfg(feature = "nsfw")]
pub use self::image::nsfw;
#[cfg(feature = "semantic")]
pub use policy::semantic;
#[cfg(feature = "whisper")]
pub use speech::{audio, ct2, whisper};
pub use speech::{samples as speech_samples, transcription};
#[cfg(feature = "semantic")]
pub use text::embedding;
pub use text::{detector, head, profanity};
