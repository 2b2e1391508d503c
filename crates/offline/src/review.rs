//! The review loop offline: decisions published as JSON lines in a file the game backend can
//! tail (`decisions/events.jsonl` in the output folder), and the written policy's version as a
//! hash of the policy folder.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use moderation_core::model::ReviewRecord;
use moderation_core::ports::{detail_type, DecisionEvents, PolicyVersion};
use moderation_core::stages::review::version_of;
use moderation_core::{Error as CoreError, Result as CoreResult};
use serde_json::json;

/// Appends one line per decision; lines are written whole under a lock, so concurrent
/// decisions never interleave.
pub struct JsonlEvents {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl JsonlEvents {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlEvents {
            path: path.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn io_err(path: &Path, source: std::io::Error) -> CoreError {
    CoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[async_trait]
impl DecisionEvents for JsonlEvents {
    async fn publish(&self, record: &ReviewRecord) -> CoreResult<()> {
        // The EventBridge event's shape, so a consumer reads both the same way.
        let event = json!({
            "source": "moderation",
            "detail-type": detail_type(record),
            "time": record.at(),
            "detail": record,
        });
        let mut line = event.to_string();
        line.push('\n');
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            f.write_all(line.as_bytes()).map_err(|e| io_err(&path, e))
        })
        .await
        .map_err(|e| CoreError::Input(format!("decision event writer failed: {e}")))?
    }
}

/// The policy folder's version: a hash over its files' names and contents, in name order.
pub struct FolderPolicyVersion {
    dir: PathBuf,
}

impl FolderPolicyVersion {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FolderPolicyVersion { dir: dir.into() }
    }
}

#[async_trait]
impl PolicyVersion for FolderPolicyVersion {
    async fn policy_version(&self) -> CoreResult<String> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
                let path = entry.map_err(|e| io_err(&dir, e))?.path();
                if path.is_file() {
                    let body = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    files.push((name.unwrap_or_default(), body));
                }
            }
            Ok(version_of(files))
        })
        .await
        .map_err(|e| CoreError::Input(format!("policy version reader failed: {e}")))?
    }
}
