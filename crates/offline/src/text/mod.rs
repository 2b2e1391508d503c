//! Text scoring: the linear profanity model and category lexicons ([`detector`],
//! [`profanity`]), and the trained per-label head over sentence embeddings ([`head`]; run by
//! [`embedding`] with feature `semantic`).

pub mod detector;
#[cfg(feature = "semantic")]
pub mod embedding;
pub mod exemplars;
pub mod head;
pub mod profanity;
