//! Compare-and-swap on one small JSON document, retried with jittered backoff while other
//! writers win: how writers that never see each other share a document without losing an
//! update (the report index, the review documents, the review queue).

use std::hash::BuildHasher;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result, ServiceErrorKind};
use crate::ports::ObjectStore;

/// Attempts before giving up: with jittered backoff, 50 writers at once need a handful each.
pub const MAX_SWAPS: u32 = 60;

/// What a change makes of the document it was shown.
pub enum Change<T> {
    /// Nothing to write: the document already says it.
    Keep(T),
    Write(T),
}

/// Read `key` (`None` when absent), apply `change`, and write the result only if no one wrote
/// the document in between; otherwise read again and retry. Returns the document as left.
pub async fn swap_json<T, F>(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    mut change: F,
) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> Result<Change<T>>,
{
    for attempt in 1..=MAX_SWAPS {
        let found = store.get_tagged(bucket, key).await?;
        let (current, tag) = match found {
            Some(t) => (
                Some(
                    serde_json::from_slice::<T>(&t.body).map_err(|source| Error::Document {
                        key: key.to_string(),
                        source,
                    })?,
                ),
                Some(t.tag),
            ),
            None => (None, None),
        };
        let next = match change(current)? {
            Change::Keep(doc) => return Ok(doc),
            Change::Write(doc) => doc,
        };
        let body = serde_json::to_vec(&next).map_err(|source| Error::Document {
            key: key.to_string(),
            source,
        })?;
        if store
            .put_if(bucket, key, body, "application/json", tag.as_deref())
            .await?
            .is_some()
        {
            return Ok(next);
        }
        backoff(attempt).await;
    }
    Err(Error::service(
        "compare-and-swap",
        ServiceErrorKind::Throttled,
        format!("{key} changed under {MAX_SWAPS} attempts to update it; try again"),
    ))
}

/// Full jitter, doubling from 10 ms to at most 1 s.
pub async fn backoff(attempt: u32) {
    let cap = (10u64 << attempt.min(7)).min(1000);
    let draw = std::collections::hash_map::RandomState::new().hash_one(attempt);
    tokio::time::sleep(Duration::from_millis(draw % (cap + 1))).await;
}
