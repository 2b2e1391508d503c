//! The offline backend: the policy folder searched on this machine (BM25, or fused with
//! all-MiniLM-L6-v2 embeddings), judged by the rules evaluator or a local OpenAI-compatible
//! LLM (`LLM_ENDPOINT`), which may also check pictures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use moderation_core::chain::config::Vars;
use moderation_core::ports::{ChatModel, ObjectStore, PolicyJudge, PolicyRetriever};
use moderation_core::stages::evaluate_policy::image_check::{Checklist, ImageJudge};
use moderation_core::stages::evaluate_policy::LlmJudge;
use moderation_core::{Error, Result};
use moderation_offline::openai::OpenAiChatModel;

use crate::{App, Config, LocalLlm};

/// `POLICY_SEARCH`: `bm25` (the default) or `hybrid` (BM25 fused with MiniLM embeddings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySearch {
    Bm25,
    Hybrid { model_dir: PathBuf },
}

impl PolicySearch {
    pub fn from_vars(v: &Vars) -> Result<Self> {
        match v.get("POLICY_SEARCH").as_deref().map(str::trim) {
            None | Some("bm25") => Ok(PolicySearch::Bm25),
            Some("hybrid") => Ok(PolicySearch::Hybrid {
                model_dir: PathBuf::from(v.or("MINILM_DIR", ".cache/models/all-minilm-l6-v2")),
            }),
            Some(other) => Err(Error::InvalidVar {
                var: "POLICY_SEARCH".into(),
                value: other.to_string(),
                reason: "expected `bm25` or `hybrid`".into(),
            }),
        }
    }
}

pub(crate) async fn build(store: Arc<dyn ObjectStore>, config: &Config) -> Result<App> {
    let (template, checklist) = crate::documents(store.as_ref(), config).await?;
    // One client for the local LLM, whether it judges text, pictures or both.
    let local = config
        .local_llm
        .as_ref()
        .map(|llm| local_chat_model(llm, config))
        .transpose()?;
    let images = picture_check(local.as_ref(), config.image_check, checklist)?;
    let judge: Arc<dyn PolicyJudge> = match local {
        Some(local) => Arc::new(LlmJudge::with_template(local, template)),
        None => Arc::new(moderation_offline::RulesJudge),
    };
    let retriever = policy_retriever(&config.policy_dir, &config.policy_search)?;
    Ok(App::from_parts(store, retriever, judge, config).with_image_judge(images))
}

/// The `LLM_ENDPOINT` client.
fn local_chat_model(llm: &LocalLlm, config: &Config) -> Result<OpenAiChatModel> {
    Ok(OpenAiChatModel::new(
        &llm.endpoint,
        &llm.model,
        llm.api_key.clone(),
        config.sdk.attempt_timeout,
    )?)
}

/// Unset, the picture check is off offline: a text-only local server would not see the picture.
fn picture_check(
    local: Option<&OpenAiChatModel>,
    wanted: Option<bool>,
    checklist: Checklist,
) -> Result<Option<Arc<ImageJudge>>> {
    match (local, wanted) {
        (_, None | Some(false)) => Ok(None),
        (Some(local), Some(true)) => {
            let model: Box<dyn ChatModel> = Box::new(local.clone());
            Ok(Some(Arc::new(ImageJudge::new(model, checklist))))
        }
        (None, Some(true)) => Err(Error::Config(
            "IMAGE_CHECK=on offline needs LLM_ENDPOINT: a multimodal OpenAI-compatible server"
                .into(),
        )),
    }
}

/// The policy folder indexed for search; a folder that cannot be read stops start-up.
fn policy_retriever(dir: &Path, search: &PolicySearch) -> Result<Arc<dyn PolicyRetriever>> {
    let index =
        moderation_offline::PolicyIndex::load_dir(dir).map_err(|e| Error::ConfigSource {
            what: format!("POLICY_DIR {}", dir.display()),
            source: Box::new(e),
        })?;
    match search {
        PolicySearch::Bm25 => Ok(Arc::new(index)),
        PolicySearch::Hybrid { model_dir } => hybrid(index, model_dir),
    }
}

#[cfg(feature = "semantic")]
fn hybrid(
    index: moderation_offline::PolicyIndex,
    model_dir: &Path,
) -> Result<Arc<dyn PolicyRetriever>> {
    use moderation_offline::policy::semantic::{HybridIndex, MiniLm};
    let model = MiniLm::load(model_dir)?;
    Ok(Arc::new(HybridIndex::from_sections(
        index.sections().to_vec(),
        model,
    )?))
}

#[cfg(not(feature = "semantic"))]
fn hybrid(_: moderation_offline::PolicyIndex, _: &Path) -> Result<Arc<dyn PolicyRetriever>> {
    Err(Error::Config(
        "POLICY_SEARCH=hybrid needs a build with feature `semantic` (make demo-semantic)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_is_the_default_and_a_typo_is_named() {
        assert_eq!(
            PolicySearch::from_vars(&Vars::from_pairs(&[])).expect("ok"),
            PolicySearch::Bm25
        );
        let e = PolicySearch::from_vars(&Vars::from_pairs(&[("POLICY_SEARCH", "vector")]))
            .expect_err("typo");
        assert!(e.to_string().contains("POLICY_SEARCH"), "{e}");
    }

    #[test]
    fn a_picture_check_asked_for_offline_needs_a_local_model() {
        let e = picture_check(None, Some(true), Checklist::default_checklist())
            .err()
            .expect("needs LLM_ENDPOINT");
        assert!(e.to_string().contains("LLM_ENDPOINT"), "{e}");
        assert!(picture_check(None, None, Checklist::default_checklist())
            .expect("off")
            .is_none());
    }

    #[test]
    fn an_unreadable_policy_folder_is_a_configuration_error_naming_it() {
        let e = policy_retriever(Path::new("/no/such/policy"), &PolicySearch::Bm25)
            .err()
            .expect("unreadable");
        assert!(matches!(e, Error::ConfigSource { .. }), "{e:?}");
        assert!(e.to_string().contains("/no/such/policy"), "{e}");
    }
}
