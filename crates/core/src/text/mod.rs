//! Chat text: parsing uploads (TXT, CSV, JSONL) and their encodings, reading evasive writing the
//! way a person does, the forbidden-term rules, language identification, detector segments,
//! and the word lists these share.

pub mod address;
pub mod encoding;
pub mod evasion;
pub mod language;
pub mod minor_sexual;
pub mod parse;
pub mod phrase;
pub mod rules;
pub mod segment;
pub mod signals;
pub mod split_runs;
pub mod threat_emoji;
pub mod words;
