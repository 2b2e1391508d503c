//! The review loop over moderated samples: the offline chain run over the sample chat logs
//! and pictures into a folder bucket, and the review API composed over it as `modctl serve`
//! composes it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use moderation_core::chain::keys::{self, Stage};
use moderation_http::review::ReviewSettings;
use moderation_offline::review::{FolderPolicyVersion, JsonlEvents};
use moderation_offline::FolderStore;

use crate::{
    deliver_via_sqs, keys_under, stage_images, stage_uploads, workspace_root, Apps, FIXTURE_BUCKET,
};

/// Moderate the sample chat logs and pictures into the folder bucket at `root`.
pub async fn moderate_samples(root: &Path) -> Apps {
    let apps = Apps::offline(root).await;
    for key in stage_uploads(root) {
        deliver_via_sqs(&apps, Stage::ScreenText, &key, 1).await;
    }
    for key in stage_images(root) {
        deliver_via_sqs(&apps, Stage::ScreenImage, &key, 1).await;
    }
    for key in keys_under(root, keys::SCREENED) {
        deliver_via_sqs(&apps, Stage::EvaluatePolicy, &key, 1).await;
    }
    for key in keys_under(root, keys::EVALUATED) {
        deliver_via_sqs(&apps, Stage::WriteReport, &key, 1).await;
    }
    apps
}

/// The review API over the bucket at `root`, appeals judged by `apps`' policy check.
pub fn reviewer(root: &Path, apps: Apps) -> review_api::Service {
    let store = Arc::new(FolderStore::new(root));
    let events = JsonlEvents::new(events_path(root));
    review_api::Service::new(
        store,
        FIXTURE_BUCKET,
        Arc::new(FolderPolicyVersion::new(
            workspace_root().join("infra/policies"),
        )),
        Arc::new(events),
    )
    .with_appeals(Arc::new(apps.evaluate), Duration::from_secs(30))
}

/// Where the decisions are published offline.
pub fn events_path(root: &Path) -> std::path::PathBuf {
    root.join(FIXTURE_BUCKET).join(keys::DECISION_EVENTS_KEY)
}

/// The router `modctl serve` serves, with only the review side.
pub fn review_router(service: review_api::Service) -> axum::Router {
    let settings = moderation_http::Settings {
        max_body_bytes: 1 << 20,
        max_in_flight: 256,
        timeout: Duration::from_secs(30),
        max_image_bytes: 1 << 20,
    };
    moderation_http::app(
        None,
        Some((
            Arc::new(service),
            ReviewSettings {
                moderator_from_body: true,
            },
        )),
        settings,
        None,
    )
}
