//! The offline toxicity detector: the lexicons and linear model (what the Lambda binaries run
//! offline), or those raised by the all-MiniLM-L6-v2 trained head (modctl's default when built
//! with feature `semantic`).

use std::path::PathBuf;
use std::sync::Arc;

use moderation_core::chain::config::Vars;
use moderation_core::ports::ToxicityDetector;
use moderation_core::{Error, Result};

/// Where the all-MiniLM-L6-v2 files are when `MINILM_DIR` is unset (`make models` puts them).
pub const DEFAULT_MINILM_DIR: &str = ".cache/models/all-minilm-l6-v2";

/// `OFFLINE_DETECTOR`: `lexicon` (the default) or `embedding` (model in `MINILM_DIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectorChoice {
    Lexicon,
    Embedding { model_dir: PathBuf },
}

impl DetectorChoice {
    pub fn from_vars(v: &Vars) -> Result<Self> {
        match v.get("OFFLINE_DETECTOR").as_deref().map(str::trim) {
            None | Some("lexicon") => Ok(DetectorChoice::Lexicon),
            Some("embedding") => Ok(DetectorChoice::Embedding {
                model_dir: PathBuf::from(v.or("MINILM_DIR", DEFAULT_MINILM_DIR)),
            }),
            Some(other) => Err(Error::InvalidVar {
                var: "OFFLINE_DETECTOR".into(),
                value: other.to_string(),
                reason: "expected `embedding` or `lexicon`".into(),
            }),
        }
    }
}

pub(crate) fn offline(choice: &DetectorChoice) -> Result<Arc<dyn ToxicityDetector>> {
    match choice {
        DetectorChoice::Lexicon => Ok(Arc::new(moderation_offline::OfflineDetector::embedded()?)),
        DetectorChoice::Embedding { model_dir } => embedding(model_dir),
    }
}

#[cfg(feature = "semantic")]
fn embedding(dir: &std::path::Path) -> Result<Arc<dyn ToxicityDetector>> {
    let detector =
        moderation_offline::text::embedding::EmbeddingDetector::load(dir).map_err(|e| {
            Error::ConfigSource {
                what: format!(
                    "the offline detector needs all-MiniLM-L6-v2 in {} (run `make models`, or \
                     set OFFLINE_DETECTOR=lexicon for the lexicons alone)",
                    dir.display()
                ),
                source: Box::new(e),
            }
        })?;
    Ok(Arc::new(detector))
}

#[cfg(not(feature = "semantic"))]
fn embedding(_: &std::path::Path) -> Result<Arc<dyn ToxicityDetector>> {
    Err(Error::Config(
        "OFFLINE_DETECTOR=embedding needs a build with feature `semantic` (modctl has it by \
         default)"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lexicons_are_the_default_and_a_typo_is_named() {
        assert_eq!(
            DetectorChoice::from_vars(&Vars::from_pairs(&[])).expect("ok"),
            DetectorChoice::Lexicon
        );
        let v = Vars::from_pairs(&[("OFFLINE_DETECTOR", "embedding"), ("MINILM_DIR", "/m")]);
        assert_eq!(
            DetectorChoice::from_vars(&v).expect("ok"),
            DetectorChoice::Embedding {
                model_dir: PathBuf::from("/m")
            }
        );
        let e = DetectorChoice::from_vars(&Vars::from_pairs(&[("OFFLINE_DETECTOR", "bert")]))
            .expect_err("typo");
        assert!(e.to_string().contains("OFFLINE_DETECTOR"), "{e}");
    }
}
