//! The moderation domain: items, their signals, verdicts, and the documents stages exchange.
//!
//! `Report` and everything it contains is the `moderation.report/v1` contract (docs/report-format.md):
//! field names here are relied on by users' automation, so change them only with the contract.

mod conversation;
mod document;
mod image;
mod item;
mod review;
mod source;

pub use conversation::*;
pub use document::*;
pub use image::*;
pub use item::*;
pub use review::*;
pub use source::*;
