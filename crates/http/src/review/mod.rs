//! The review loop's HTTP surface (`docs/review.md`): the queue, decisions, undos, appeals,
//! the audit, the decisions log as CSV, statements of reasons, and the moderator console.
//! Whoever serves it supplies a [`Reviewer`] over its store and backends.

mod body;
mod console;
mod routes;
mod statement;

use async_trait::async_trait;
use moderation_core::model::{Appeal, Decision, ReviewRecord, Undo};
use moderation_core::stages::review::{
    AppealRequest, Cursor, DecisionRequest, ItemView, QueueFilter, QueueOut, Recorded, Statement,
    UndoRequest,
};
use moderation_core::Result;

pub(crate) use console::console_routes;
pub(crate) use routes::routes;

/// The moderator a request is from, put on the request by the authentication in front of the
/// routes (a JWT's subject on AWS). Without one, the body's `moderator` is used, and only
/// where [`ReviewSettings::moderator_from_body`] allows it (offline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderator(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewSettings {
    pub moderator_from_body: bool,
}

/// A media file for the console: its bytes and type, or a link that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    Bytes { body: Vec<u8>, content_type: String },
    Link(String),
}

/// The review loop behind the routes.
#[async_trait]
pub trait Reviewer: Send + Sync + 'static {
    async fn queue(
        &self,
        filter: &QueueFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<QueueOut>;
    async fn decide(&self, req: &DecisionRequest) -> Result<Recorded<Decision>>;
    async fn undo(&self, req: &UndoRequest) -> Result<Recorded<Undo>>;
    async fn appeal(&self, req: &AppealRequest) -> Result<Recorded<Appeal>>;
    async fn audit(&self, report_id: &str) -> Result<Vec<ReviewRecord>>;
    async fn export_csv(&self, report_id: Option<&str>) -> Result<String>;
    async fn item(&self, report_id: &str, item_id: &str) -> Result<ItemView>;
    async fn statement(&self, report_id: &str, item_id: &str) -> Result<Statement>;
    /// The recording or picture at `key` for the console; `None` when there is none.
    async fn media(&self, key: &str) -> Result<Option<Media>>;
    /// A link that serves `key` by itself (presigned), when the backend makes them; without
    /// one the console loads it through `/review/media/`.
    async fn media_link(&self, key: &str) -> Result<Option<String>>;
}
