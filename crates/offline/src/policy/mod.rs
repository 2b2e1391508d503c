//! The offline knowledge base and judge.
//!
//! [`PolicyIndex`] splits the Markdown policy (`infra/policies/*.md`) into sections at headings
//! and searches them with BM25. [`RulesJudge`] decides from the retrieved passages alone, as an
//! LLM would: each section declares what it governs in one machine-readable line,
//! `Applies to: <category>, <category>; bar: <0..1 | none>`, and an item violates a section when
//! a governed category's score clears the bar or a forbidden-term hit falls in a governed
//! category. `bar: none` marks a section that explains what is allowed. Swearing aimed at a
//! person ([`moderation_core::text::address`]) is judged by the first insult section with a bar (a
//! harassment section when there is none), whatever the profanity section allows. With feature
//! `semantic`, [`semantic`] adds sentence-embedding search beside BM25.

mod index;
mod rules;
#[cfg(feature = "semantic")]
pub mod semantic;

pub use index::{split_sections, PolicyIndex, PolicySection};
pub use rules::{judge_by_rules, parse_governs, Governs, RulesJudge, RULES_MODEL};

#[cfg(test)]
mod tests;
