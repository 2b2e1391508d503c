//! A folder-backed S3 on loopback for the benchmarks: path-style `GetObject`, `HeadObject`,
//! `PutObject` (with `If-Match` / `If-None-Match: *`, answered 412 as S3 does) and
//! `ListObjectsV2`, which is all the functions call. `s3://b/k` is `<root>/b/k`, the same
//! mapping as the offline backend, so inputs are written and outputs read as files. It counts
//! requests, for the report index's requests per report. (The SDKs use path-style addressing
//! on their own when the endpoint is an IP address.)

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::http::{percent_decode, read_request, write_response, Request};

pub struct FakeS3 {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

struct State {
    root: PathBuf,
    requests: AtomicU64,
    /// Held for every PUT, so a conditional write compares and writes as one step.
    writes: Mutex<u64>,
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeS3 {
    pub async fn start(root: &Path) -> std::io::Result<FakeS3> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            root: root.to_path_buf(),
            requests: AtomicU64::new(0),
            writes: Mutex::new(0),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, serving.clone()));
            }
        });
        Ok(FakeS3 { addr, state, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }
}

async fn serve(stream: TcpStream, state: Arc<State>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    while let Some(req) = read_request(&mut reader, &mut write).await {
        state.requests.fetch_add(1, Ordering::Relaxed);
        let (status, headers, body) = handle(&req, &state).await;
        let head_only = req.method == "HEAD";
        if write_response(&mut write, status, &headers, &body, head_only)
            .await
            .is_err()
        {
            return;
        }
    }
}

type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);

fn xml_error(status: u16, code: &str, message: &str) -> Reply {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>bench</RequestId></Error>"
    );
    (
        status,
        vec![("content-type", "application/xml".to_string())],
        body.into_bytes(),
    )
}

/// `/<bucket>/<key>` → a path under `root`, refusing anything that would leave it.
fn object_path(root: &Path, path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path.trim_start_matches('/'));
    let (bucket, key) = decoded.split_once('/')?;
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    let rel = Path::new(bucket).join(key);
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(rel))
}

/// The bucket folder of `/<bucket>` or `/<bucket>/`.
fn bucket_path(root: &Path, path: &str) -> Option<PathBuf> {
    let bucket = percent_decode(path.trim_matches('/'));
    (!bucket.is_empty() && !bucket.contains('/') && !bucket.starts_with('.'))
        .then(|| root.join(bucket))
}

/// A content hash: the same bytes have the same tag, as S3's MD5 ETag of a single-part upload.
fn etag(body: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `ListObjectsV2`: keys under `prefix` in order, 1,000 a page (or `max-keys`), resumed after
/// the continuation token (the last key of the page before).
fn list(req: &Request, bucket_dir: &Path) -> Reply {
    let prefix = req.param("prefix").unwrap_or_default();
    let after = req
        .param("continuation-token")
        .or_else(|| req.param("start-after"));
    let max: usize = req
        .param("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let mut keys = Vec::new();
    let mut stack = vec![bucket_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(bucket_dir) {
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if key.starts_with(&prefix) && after.as_ref().is_none_or(|a| key > *a) {
                    let size = e.metadata().map_or(0, |m| m.len());
                    keys.push((key, size));
                }
            }
        }
    }
    keys.sort();
    let truncated = keys.len() > max;
    keys.truncate(max);
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Prefix>{}</Prefix>\
         <KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        xml_escape(&prefix),
        keys.len()
    );
    if truncated {
        if let Some((last, _)) = keys.last() {
            body.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                xml_escape(last)
            ));
        }
    }
    for (k, size) in &keys {
        body.push_str(&format!(
            "<Contents><Key>{}</Key><Size>{size}</Size></Contents>",
            xml_escape(k)
        ));
    }
    body.push_str("</ListBucketResult>");
    (
        200,
        vec![("content-type", "application/xml".to_string())],
        body.into_bytes(),
    )
}

async fn handle(req: &Request, state: &State) -> Reply {
    if req.method == "GET" && req.param("list-type").as_deref() == Some("2") {
        return match bucket_path(&state.root, &req.path) {
            Some(dir) => list(req, &dir),
            None => xml_error(400, "InvalidBucketName", "no bucket in the path"),
        };
    }
    let Some(file) = object_path(&state.root, &req.path) else {
        return xml_error(
            501,
            "NotImplemented",
            "only object GET/HEAD/PUT and ListObjectsV2 are faked",
        );
    };
    match req.method.as_str() {
        "GET" | "HEAD" => match tokio::fs::read(&file).await {
            Ok(bytes) => {
                let headers = vec![
                    ("content-type", "application/octet-stream".to_string()),
                    ("etag", etag(&bytes)),
                ];
                (200, headers, bytes)
            }
            Err(_) => xml_error(404, "NoSuchKey", "The specified key does not exist."),
        },
        "PUT" => put(req, &file, state).await,
        _ => xml_error(501, "NotImplemented", "method not faked"),
    }
}

async fn put(req: &Request, file: &Path, state: &State) -> Reply {
    let mut serial = state.writes.lock().await;
    let if_match = req.headers.get("if-match");
    let if_none_match = req.headers.get("if-none-match");
    if if_match.is_some() || if_none_match.is_some() {
        let current = tokio::fs::read(file).await.ok().map(|b| etag(&b));
        let holds = match (if_match, if_none_match, &current) {
            (Some(want), _, Some(cur)) => want == cur,
            (Some(_), _, None) => false,
            (None, Some(star), cur) => star == "*" && cur.is_none(),
            (None, None, _) => true,
        };
        if !holds {
            return xml_error(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            );
        }
    }
    if let Some(dir) = file.parent() {
        if let Err(e) = tokio::fs::create_dir_all(dir).await {
            return xml_error(500, "InternalError", &e.to_string());
        }
    }
    // Temp file and rename: a concurrent GET sees the old object or the new one, never half.
    *serial += 1;
    let tmp = state.root.join(format!(".put-{}", *serial));
    let written = async {
        tokio::fs::write(&tmp, &req.body).await?;
        tokio::fs::rename(&tmp, file).await
    };
    match written.await {
        Ok(()) => (200, vec![("etag", etag(&req.body))], Vec::new()),
        Err(e) => xml_error(500, "InternalError", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_stay_inside_the_root() {
        let root = Path::new("/r");
        assert_eq!(
            object_path(root, "/b/incoming/text/a%20b.txt"),
            Some(PathBuf::from("/r/b/incoming/text/a b.txt"))
        );
        assert_eq!(object_path(root, "/b/../../etc/passwd"), None);
        assert_eq!(object_path(root, "/b"), None);
    }
}
