//! One folder per Lambda function, named after it, holding that function's logic: the handler
//! crates in `crates/functions/` are glue over these. `check` is the prompt check `modctl
//! check-prompt` runs before an image model. `sync_policies` is not a moderation stage: it
//! re-indexes the knowledge base when the written policy changes.

pub mod check;
pub mod conversation;
pub mod evaluate_policy;
pub mod review;
pub mod screen_image;
pub mod screen_text;
pub mod sync_policies;
pub mod transcribe_audio;
pub mod write_report;
