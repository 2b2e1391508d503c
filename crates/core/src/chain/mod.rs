//! What ties the stages into a chain: the events that start them, the S3 keys that route
//! documents between them, delivery (batches, retries, dead letters), the spool items stream
//! through, configuration from the environment, client-side pacing, and the log fields alarms
//! read. No stage logic lives here.

pub mod config;
pub mod delivery;
pub mod event;
pub mod keys;
pub mod micro_batch;
pub mod pace;
pub mod spool;
pub mod swap;
pub mod telemetry;
