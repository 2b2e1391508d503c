//! The AWS backend: the Bedrock knowledge base, Converse (or one RetrieveAndGenerate call) and
//! a multimodal Converse model for pictures. Without the `aws` feature, a configuration error.

use std::sync::Arc;

use moderation_core::ports::ObjectStore;
use moderation_core::Result;

use crate::{App, Config};

#[cfg(feature = "aws")]
pub(crate) async fn build(store: Option<Arc<dyn ObjectStore>>, config: &Config) -> Result<App> {
    use moderation_aws::{ConverseModel, KnowledgeBaseRetriever, Rates, S3Store};
    use moderation_core::ports::PolicyJudge;
    use moderation_core::stages::evaluate_policy::image_check::ImageJudge;
    use moderation_core::stages::evaluate_policy::LlmJudge;

    let sdk = moderation_aws::load_sdk_config(&config.sdk).await;
    let store = store.unwrap_or_else(|| Arc::new(S3Store::from_sdk_config(&sdk)));
    let (template, checklist) = crate::documents(store.as_ref(), config).await?;
    // Text and picture checks share the Converse quota, and so one pacer.
    let converse = Rates::pacer(config.sdk.rates.converse, "converse");
    let images = (config.image_check != Some(false)).then(|| {
        let model = ConverseModel::from_sdk_config(&sdk, &config.image_model_id)
            .with_pacer(converse.clone());
        Arc::new(ImageJudge::new(Box::new(model), checklist))
    });
    let kb = config.knowledge_base_id.as_deref().unwrap_or_default();
    let judge: Arc<dyn PolicyJudge> = match config.policy_mode {
        crate::PolicyMode::RetrieveAndConverse => Arc::new(LlmJudge::with_template(
            ConverseModel::from_sdk_config(&sdk, &config.model_id).with_pacer(converse),
            template,
        )),
        crate::PolicyMode::RetrieveAndGenerate => Arc::new(
            moderation_aws::bedrock::RetrieveAndGenerateJudge::from_sdk_config(
                &sdk,
                kb,
                &config.model_id,
                config.top_k,
                template,
            ),
        ),
    };
    let retriever = KnowledgeBaseRetriever::from_sdk_config(&sdk, kb)
        .with_pacer(Rates::pacer(config.sdk.rates.retrieve, "retrieve"));
    Ok(App::from_parts(store, Arc::new(retriever), judge, config).with_image_judge(images))
}

#[cfg(not(feature = "aws"))]
pub(crate) async fn build(_: Option<Arc<dyn ObjectStore>>, _: &Config) -> Result<App> {
    Err(moderation_core::chain::config::aws_not_built())
}
