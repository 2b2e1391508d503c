//! moderation-core: the domain model, pure stage logic, ports, report rendering and event
//! decoding of the moderation chain. No AWS SDK types: adapters implement [`ports`].
//!
//! Foundations first: [`model`] (items, evaluations, documents, reports), [`ports`] (what the
//! stages ask of the outside world), [`chain`] (events, keys, delivery, configuration);
//! then the material the stages work on, [`text`] and [`media`]; then [`stages`], one folder
//! per Lambda function.

pub mod chain;
pub mod error;
pub mod media;
pub mod model;
pub mod ports;
pub mod stages;
pub mod text;

pub use error::{Error, Result};
