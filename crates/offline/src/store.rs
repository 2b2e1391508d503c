//! A local folder as the bucket: `s3://bucket/key` is `<root>/bucket/key` (`MODERATION_OFFLINE_ROOT`, docs/configuration.md).
//! Keys that could escape the folder (`..`, absolute paths) are refused, and writes are atomic
//! (temp file + rename) so a reader never sees half a document.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use moderation_core::model::ObjectRef;
use moderation_core::ports::{
    ListObjects, OpenedObject, ReadObjects, SwapObjects, Tagged, WriteObjects,
};
use moderation_core::{Error as CoreError, Result as CoreResult};
use sha2::{Digest, Sha256};

use crate::error::Error;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);
const TMP_PREFIX: &str = ".tmp-";
/// Beside each document written with [`SwapObjects::put_if`], the file its writers lock:
/// `.<name>.lock`, hidden, and with no document's extension.
const LOCK_SUFFIX: &str = ".lock";

#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
    /// When set, every bucket is this one folder (modctl's `--out DIR` layout).
    single_bucket: bool,
}

fn io_err(path: &Path, source: io::Error) -> CoreError {
    CoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl FolderStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderStore {
            root: root.into(),
            single_bucket: false,
        }
    }

    /// A store where `s3://<any bucket>/key` is `<dir>/key`.
    pub fn single_bucket(dir: impl Into<PathBuf>) -> Self {
        FolderStore {
            root: dir.into(),
            single_bucket: true,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file for an object, refusing anything that would leave `<root>/<bucket>/`.
    pub fn path_of(&self, bucket: &str, key: &str) -> Result<PathBuf, Error> {
        let bad = |why: &str| Error::UnsafeKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
            why: why.to_string(),
        };
        if bucket.is_empty() || bucket.contains(['/', '\\', '\0']) || bucket.starts_with('.') {
            return Err(bad("the bucket name cannot be a folder name"));
        }
        if key.contains('\0') {
            return Err(bad("the key contains a NUL byte"));
        }
        let mut path = if self.single_bucket {
            self.root.clone()
        } else {
            self.root.join(bucket)
        };
        for part in Path::new(key).components() {
            match part {
                Component::Normal(p) => path.push(p),
                Component::CurDir => {}
                _ => return Err(bad("the key has `..` or an absolute path")),
            }
        }
        Ok(path)
    }

    fn checked(&self, bucket: &str, key: &str) -> CoreResult<PathBuf> {
        self.path_of(bucket, key)
            .map_err(|e| CoreError::Input(e.to_string()))
    }
}

fn file_version(meta: &fs::Metadata) -> Option<String> {
    let mtime = meta.modified().ok()?;
    let nanos = mtime.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some(format!("{}-{nanos}", meta.len()))
}

#[async_trait]
impl ReadObjects for FolderStore {
    async fn open(&self, obj: &ObjectRef) -> CoreResult<OpenedObject> {
        let path = self.checked(&obj.bucket, &obj.key)?;
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CoreError::NotFound { uri: obj.uri() })
            }
            Err(e) => return Err(io_err(&path, e)),
        };
        let meta = file.metadata().map_err(|e| io_err(&path, e))?;
        if meta.is_dir() {
            return Err(CoreError::NotFound { uri: obj.uri() });
        }
        Ok(OpenedObject {
            size: Some(meta.len()),
            version: file_version(&meta),
            reader: Box::new(file),
        })
    }

    async fn get_bytes(&self, bucket: &str, key: &str) -> CoreResult<Option<Vec<u8>>> {
        let path = self.checked(bucket, key)?;
        read_if_exists(&path)
    }
}

/// The folder of a document, created if need be.
fn parent_dir<'p>(path: &'p Path, key: &str) -> CoreResult<&'p Path> {
    let dir = path
        .parent()
        .ok_or_else(|| CoreError::Input(format!("key {key:?} names no file")))?;
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    Ok(dir)
}

/// A name for a temp file in `dir`, unique across threads and processes.
fn temp_beside(dir: &Path) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TMP_PREFIX}{}-{n}", std::process::id()))
}

/// Temp file and rename, so a reader sees the old document or the new one, never half. The
/// temp file is a new file (not `fs::copy` of a source file), so the document gets the usual
/// permissions, and a half-written one does not linger beside the documents.
fn write_atomically(dir: &Path, path: &Path, mut body: impl io::Read) -> CoreResult<()> {
    let tmp = temp_beside(dir);
    let written = fs::File::create(&tmp)
        .and_then(|mut dest| io::copy(&mut body, &mut dest))
        .map_err(|e| io_err(&tmp, e))
        .and_then(|_| fs::rename(&tmp, path).map_err(|e| io_err(path, e)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A document's version tag: its content hash, so equal tags mean equal bytes in every process.
fn content_tag(body: &[u8]) -> String {
    Sha256::digest(body)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_if_exists(path: &Path) -> CoreResult<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

#[async_trait]
impl WriteObjects for FolderStore {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
    ) -> CoreResult<()> {
        let path = self.checked(bucket, key)?;
        let dir = parent_dir(&path, key)?;
        write_atomically(dir, &path, &body[..])
    }

    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        from: &Path,
        _content_type: &str,
    ) -> CoreResult<()> {
        let path = self.checked(bucket, key)?;
        let dir = parent_dir(&path, key)?;
        // Copied beside the document, then renamed: the temp file may be on another disk.
        let source = fs::File::open(from).map_err(|e| io_err(from, e))?;
        write_atomically(dir, &path, source)
    }
}

/// Compare-and-swap under an exclusive lock on a file beside the document: it holds across
/// threads and processes (two `modctl` runs, or Lambda emulators, on one folder). The lock is
/// taken and released without an `.await` in between, so no task waits on one parked.
#[async_trait]
impl SwapObjects for FolderStore {
    async fn get_tagged(&self, bucket: &str, key: &str) -> CoreResult<Option<Tagged>> {
        let path = self.checked(bucket, key)?;
        Ok(read_if_exists(&path)?.map(|body| Tagged {
            tag: content_tag(&body),
            body,
        }))
    }

    async fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
        expected: Option<&str>,
    ) -> CoreResult<Option<String>> {
        let path = self.checked(bucket, key)?;
        let dir = parent_dir(&path, key)?;
        let name = path
            .file_name()
            .ok_or_else(|| CoreError::Input(format!("key {key:?} names no file")))?;
        let lock_path = dir.join(format!(".{}{LOCK_SUFFIX}", name.to_string_lossy()));
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err(&lock_path, e))?;
        lock.lock().map_err(|e| io_err(&lock_path, e))?;
        let current = read_if_exists(&path)?.map(|b| content_tag(&b));
        if current.as_deref() != expected {
            return Ok(None);
        }
        write_atomically(dir, &path, &body[..])?;
        // Dropping the file releases the lock, after the rename.
        drop(lock);
        Ok(Some(content_tag(&body)))
    }
}

#[async_trait]
impl ListObjects for FolderStore {
    async fn list(&self, bucket: &str, prefix: &str) -> CoreResult<Vec<String>> {
        let bucket_dir = self.checked(bucket, "")?;
        // Walk only the folder the prefix points into.
        let dir_part = prefix.rsplit_once('/').map_or("", |(d, _)| d);
        let start = self.checked(bucket, dir_part)?;
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_err(&dir, e))?;
                let path = entry.path();
                let ft = entry.file_type().map_err(|e| io_err(&path, e))?;
                if ft.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let lock = name.starts_with('.') && name.ends_with(LOCK_SUFFIX);
                if name.starts_with(TMP_PREFIX) || lock {
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&bucket_dir) else {
                    continue;
                };
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if key.starts_with(prefix) {
                    out.push(key);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_and_lists_by_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FolderStore::new(dir.path());
        s.put("b", "reports/a.json", b"{}".to_vec(), "application/json")
            .await
            .expect("put");
        s.put("b", "reports/sub/c.json", b"1".to_vec(), "x")
            .await
            .expect("put");
        s.put("b", "screened/z.json", b"2".to_vec(), "x")
            .await
            .expect("put");
        let mut keys = s.list("b", "reports/").await.expect("list");
        keys.sort();
        assert_eq!(keys, vec!["reports/a.json", "reports/sub/c.json"]);
        assert_eq!(
            s.list("b", "reports/a").await.expect("list"),
            vec!["reports/a.json"]
        );
        assert!(s.list("b", "nothing/").await.expect("list").is_empty());
        assert_eq!(
            s.get_bytes("b", "reports/a.json").await.expect("get"),
            Some(b"{}".to_vec())
        );
        assert_eq!(s.get_bytes("b", "missing.json").await.expect("get"), None);
    }

    #[tokio::test]
    async fn a_file_is_written_like_a_body_with_the_usual_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FolderStore::new(dir.path());
        // Temp files are owner-only; the document must not inherit that.
        let temp = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(temp.path(), b"{\"items\":[]}").expect("write");
        s.put_file("b", "reports/x.json", temp.path(), "application/json")
            .await
            .expect("put_file");
        s.put("b", "reports/y.json", b"{}".to_vec(), "application/json")
            .await
            .expect("put");
        assert_eq!(
            s.get_bytes("b", "reports/x.json").await.expect("get"),
            Some(b"{\"items\":[]}".to_vec())
        );
        let mode = |k: &str| {
            std::fs::metadata(dir.path().join("b").join(k))
                .expect("metadata")
                .permissions()
                .mode()
        };
        assert_eq!(mode("reports/x.json"), mode("reports/y.json"));
        let missing = s
            .put_file("b", "reports/z.json", Path::new("/nonexistent"), "x")
            .await;
        assert!(matches!(missing, Err(CoreError::Io { .. })), "{missing:?}");
    }

    #[tokio::test]
    async fn put_if_writes_only_over_the_version_it_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FolderStore::new(dir.path());
        let key = "reports/index/head.json";
        assert_eq!(s.get_tagged("b", key).await.expect("get"), None);
        let first = s
            .put_if("b", key, b"1".to_vec(), "x", None)
            .await
            .expect("put")
            .expect("created");
        // A second "create" loses: the document exists now.
        assert_eq!(
            s.put_if("b", key, b"2".to_vec(), "x", None)
                .await
                .expect("put"),
            None
        );
        let read = s.get_tagged("b", key).await.expect("get").expect("found");
        assert_eq!(read.tag, first);
        assert_eq!(read.body, b"1");
        let second = s
            .put_if("b", key, b"2".to_vec(), "x", Some(&first))
            .await
            .expect("put")
            .expect("swapped");
        assert_ne!(second, first);
        // The old tag is stale.
        assert_eq!(
            s.put_if("b", key, b"3".to_vec(), "x", Some(&first))
                .await
                .expect("put"),
            None
        );
        assert_eq!(
            s.get_bytes("b", key).await.expect("get"),
            Some(b"2".to_vec())
        );
        // The lock file is not an object.
        assert_eq!(s.list("b", "reports/").await.expect("list"), vec![key]);
    }

    /// Threads incrementing one counter by read-then-swap lose no increment.
    #[test]
    fn concurrent_swaps_lose_no_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                // Each thread has its own store, as separate processes would.
                let s = FolderStore::new(dir.path());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("runtime");
                    rt.block_on(async {
                        for _ in 0..25 {
                            loop {
                                let cur = s.get_tagged("b", "n").await.expect("get");
                                let n: u64 = cur.as_ref().map_or(0, |t| {
                                    std::str::from_utf8(&t.body)
                                        .expect("utf8")
                                        .parse()
                                        .expect("number")
                                });
                                let body = (n + 1).to_string().into_bytes();
                                let tag = cur.map(|t| t.tag);
                                if s.put_if("b", "n", body, "x", tag.as_deref())
                                    .await
                                    .expect("put")
                                    .is_some()
                                {
                                    break;
                                }
                            }
                        }
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let s = FolderStore::new(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let n = rt.block_on(s.get_bytes("b", "n")).expect("get");
        assert_eq!(n, Some(b"200".to_vec()));
    }

    #[tokio::test]
    async fn missing_objects_are_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FolderStore::new(dir.path());
        let err = s.open(&ObjectRef::new("b", "incoming/text/gone.txt")).await;
        assert!(matches!(err, Err(CoreError::NotFound { .. })));
    }

    #[test]
    fn keys_cannot_escape_the_bucket() {
        let s = FolderStore::new("/srv/root");
        for key in ["../x", "a/../../x", "/etc/passwd", "a/\0b"] {
            assert!(s.path_of("b", key).is_err(), "{key}");
        }
        assert!(s.path_of("..", "x").is_err());
        assert!(s.path_of("a/b", "x").is_err());
        let p = s
            .path_of("b", "incoming/text/with space+plus%.csv")
            .expect("ok");
        assert_eq!(
            p,
            Path::new("/srv/root/b/incoming/text/with space+plus%.csv")
        );
    }
}
