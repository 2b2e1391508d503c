//! The check API over the AWS adapters on the loopback fake: the composition the check-api
//! Lambda builds (Comprehend, Rekognition, the knowledge base, Converse and an image model),
//! for the tests that ask it in-process and the bench that times it over a socket.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use moderation_core::ports::ImageGenerator;

use crate::{apps_on_fake_aws, with_offline_vars};

/// The router of a check API whose services are the fake behind `sdk`; `root` holds the
/// offline settings' folders.
pub async fn check_api_on_fake_aws(
    root: &Path,
    sdk: &aws_config::SdkConfig,
    generator: Arc<dyn ImageGenerator>,
) -> moderation_http::Router {
    let apps = apps_on_fake_aws(root, sdk, 2).await;
    let (image_config, settings) = with_offline_vars(root, |v| {
        (
            screen_image::Config::from_vars(v).expect("screen-image config"),
            moderation_http::Settings::from_vars(v).expect("settings"),
        )
    });
    let rekognition = Arc::new(moderation_aws::RekognitionImages::from_sdk_config(sdk));
    let image = screen_image::App::from_parts(
        Arc::new(apps.screen),
        rekognition.clone(),
        rekognition,
        &image_config,
    );
    let service = check_api::Service::new(
        Arc::new(image),
        Arc::new(apps.evaluate),
        check_api::negative_prompts(None).expect("the built-in list"),
        Duration::from_secs(5),
        Ok(generator),
    );
    check_api::router(service, settings)
}
