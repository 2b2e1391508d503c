//! moderation-core: the domain model, pure stage logic, ports, report rendering and event
//! decoding of the moderation chain. No AWS SDK types: adapters implement [`ports`].

pub mod address;
pub mod audio;
pub mod config;
pub mod encoding;
pub mod error;
pub mod evasion;
pub mod event;
pub mod generation;
pub mod image_check;
pub mod index;
pub mod keys;
pub mod language;
pub mod model;
pub mod pace;
pub mod parse;
pub mod picture;
pub mod policy;
pub mod ports;
pub mod prompt;
pub mod report;
pub mod rules;
pub mod screen;
pub mod screen_image;
pub mod segment;
pub mod split_runs;
pub mod spool;
pub mod stage;
pub mod telemetry;
pub mod threat_emoji;
pub mod transcript;
pub mod words;

pub use error::{Error, Result};
