//! The written policy's version: a hash over its files' names and contents, so every decision
//! and appeal records which policy it was made under.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::chain::keys;
use crate::error::{Error, Result};
use crate::ports::{ObjectStore, PolicyVersion};

/// `sha256:` and the first 16 hex digits over `files` (name, contents), in name order.
pub fn version_of(mut files: Vec<(String, Vec<u8>)>) -> String {
    files.sort();
    let mut h = Sha256::new();
    for (name, body) in &files {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((body.len() as u64).to_le_bytes());
        h.update(body);
    }
    let hex: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The policy under `policies/` in the chain's bucket (the knowledge base's data source).
pub struct BucketPolicyVersion {
    store: Arc<dyn ObjectStore>,
    bucket: String,
}

impl BucketPolicyVersion {
    pub fn new(store: Arc<dyn ObjectStore>, bucket: impl Into<String>) -> Self {
        BucketPolicyVersion {
            store,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl PolicyVersion for BucketPolicyVersion {
    async fn policy_version(&self) -> Result<String> {
        let mut files = Vec::new();
        for key in self.store.list(&self.bucket, keys::POLICIES).await? {
            let body = self
                .store
                .get_bytes(&self.bucket, &key)
                .await?
                .ok_or_else(|| Error::NotFound {
                    uri: keys::s3_uri(&self.bucket, &key),
                })?;
            files.push((key, body));
        }
        Ok(version_of(files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_follows_content_not_order() {
        let a = version_of(vec![
            ("a.md".into(), b"x".to_vec()),
            ("b.md".into(), b"y".to_vec()),
        ]);
        let b = version_of(vec![
            ("b.md".into(), b"y".to_vec()),
            ("a.md".into(), b"x".to_vec()),
        ]);
        let c = version_of(vec![
            ("a.md".into(), b"x".to_vec()),
            ("b.md".into(), b"z".to_vec()),
        ]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("sha256:") && a.len() == 23, "{a}");
    }
}
