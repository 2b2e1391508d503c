//! Buckets: objects read as streams, written, listed, and swapped by compare-and-swap.

use std::io::Read;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::ObjectRef;

/// A source object opened for streaming; large bodies are spooled to disk, never held whole.
pub struct OpenedObject {
    pub reader: Box<dyn Read + Send>,
    pub size: Option<u64>,
    /// Version id or ETag of what was actually read.
    pub version: Option<String>,
}

#[async_trait]
pub trait ReadObjects: Send + Sync {
    async fn open(&self, obj: &ObjectRef) -> Result<OpenedObject>;
    /// A small document, `None` when it does not exist.
    async fn get_bytes(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>>;
}

#[async_trait]
pub trait WriteObjects: Send + Sync {
    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<()>;
    /// Write the contents of a local file, streamed from disk: a document of any size costs no
    /// more memory than a small one.
    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
    ) -> Result<()>;
}

#[async_trait]
pub trait ListObjects: Send + Sync {
    /// Keys under `prefix`, in no particular order.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>>;
}

/// A small document and the tag of the version read (S3's ETag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub body: Vec<u8>,
    pub tag: String,
}

/// Compare-and-swap on one small document, so writers that never read each other's work can
/// share one (the report index) without losing an update.
#[async_trait]
pub trait SwapObjects: Send + Sync {
    /// A small document with its version tag, `None` when it does not exist.
    async fn get_tagged(&self, bucket: &str, key: &str) -> Result<Option<Tagged>>;
    /// Write `body` only if the object is still the version tagged `expected` (`None`: only if
    /// there is none). `Ok(Some(tag))` is the new version; `Ok(None)` means another writer got
    /// there first (S3 answers 412 or 409): read again and retry.
    async fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        expected: Option<&str>,
    ) -> Result<Option<String>>;
}

/// Everything the chain needs from a bucket.
pub trait ObjectStore: ReadObjects + WriteObjects + ListObjects + SwapObjects {}
impl<T: ReadObjects + WriteObjects + ListObjects + SwapObjects> ObjectStore for T {}
