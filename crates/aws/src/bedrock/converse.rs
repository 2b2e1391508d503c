//! `Converse`: the model, with a text prompt or a picture and a text prompt.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput as ConverseOutputKind, ImageBlock, ImageFormat,
    ImageSource, InferenceConfiguration, Message, SystemContentBlock,
};
use moderation_core::chain::pace::Pacer;
use moderation_core::error::ServiceErrorKind;
use moderation_core::ports::{ChatModel, ChatReply, Picture};
use moderation_core::Result as CoreResult;

use crate::errors::classify;
use crate::Error;

#[derive(Debug, Clone)]
pub struct ConverseModel {
    client: aws_sdk_bedrockruntime::Client,
    model_id: String,
    max_tokens: i32,
    pacer: Option<Arc<Pacer>>,
}

impl ConverseModel {
    pub fn new(client: aws_sdk_bedrockruntime::Client, model_id: impl Into<String>) -> Self {
        ConverseModel {
            client,
            model_id: model_id.into(),
            max_tokens: 512,
            pacer: None,
        }
    }

    /// Pace `Converse` to `CONVERSE_TPS`.
    pub fn with_pacer(mut self, pacer: Option<Arc<Pacer>>) -> Self {
        crate::pace::with_pacer!(self, pacer, aws_sdk_bedrockruntime::Client)
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig, model_id: &str) -> Self {
        Self::new(aws_sdk_bedrockruntime::Client::new(config), model_id)
    }
}

#[async_trait]
impl ChatModel for ConverseModel {
    fn model(&self) -> &str {
        &self.model_id
    }

    async fn complete(&self, system: &str, user: &str) -> CoreResult<ChatReply> {
        self.converse(system, vec![ContentBlock::Text(user.to_string())])
            .await
    }

    /// The picture goes first in the user turn as an `image` block (bytes, already within
    /// Converse's 3.75 MB and 8,000 px), the text after it.
    async fn complete_with_image(
        &self,
        system: &str,
        user: &str,
        image: Picture<'_>,
    ) -> CoreResult<ChatReply> {
        let format = match image.format {
            "png" => ImageFormat::Png,
            "jpeg" => ImageFormat::Jpeg,
            "gif" => ImageFormat::Gif,
            "webp" => ImageFormat::Webp,
            other => {
                return Err(moderation_core::Error::service(
                    "bedrock-runtime",
                    ServiceErrorKind::InvalidInput,
                    format!("Converse takes no {other:?} images"),
                ))
            }
        };
        let block = ImageBlock::builder()
            .format(format)
            .source(ImageSource::Bytes(Blob::new(image.bytes.to_vec())))
            .build()
            .map_err(|source| Error::Build {
                what: "Converse image block",
                source,
            })?;
        self.converse(
            system,
            vec![
                ContentBlock::Image(block),
                ContentBlock::Text(user.to_string()),
            ],
        )
        .await
    }
}

impl ConverseModel {
    async fn converse(&self, system: &str, content: Vec<ContentBlock>) -> CoreResult<ChatReply> {
        let message = Message::builder()
            .role(ConversationRole::User)
            .set_content(Some(content))
            .build()
            .map_err(|source| Error::Build {
                what: "Converse",
                source,
            })?;
        crate::pace::wait(self.pacer.as_ref()).await;
        let out = self
            .client
            .converse()
            .model_id(&self.model_id)
            .system(SystemContentBlock::Text(system.to_string()))
            .messages(message)
            // Deterministic verdicts: the same message should get the same answer.
            .inference_config(
                InferenceConfiguration::builder()
                    .max_tokens(self.max_tokens)
                    .temperature(0.0)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("bedrock-runtime", e))?;
        let text = match out.output() {
            Some(ConverseOutputKind::Message(m)) => m
                .content()
                .iter()
                .filter_map(|b| b.as_text().ok().cloned())
                .collect::<Vec<_>>()
                .join(""),
            _ => {
                return Err(Error::MissingField {
                    service: "bedrock-runtime",
                    field: "output message",
                }
                .into())
            }
        };
        let (input_tokens, output_tokens) = out
            .usage()
            .map(|u| (u.input_tokens(), u.output_tokens()))
            .unwrap_or((0, 0));
        Ok(ChatReply {
            text,
            input_tokens: u64::try_from(input_tokens).unwrap_or(0),
            output_tokens: u64::try_from(output_tokens).unwrap_or(0),
        })
    }
}
