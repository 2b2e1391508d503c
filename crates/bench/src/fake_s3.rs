//! A folder-backed S3 on loopback for the benchmarks: path-style `GetObject`, `HeadObject` and
//! `PutObject`, which is all screen-text and evaluate-policy call. `s3://b/k` is `<root>/b/k`,
//! the same mapping as the offline backend, so inputs are written and outputs read as files.
//! (The SDKs use path-style addressing on their own when the endpoint is an IP address.)

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::http::{percent_decode, read_request, write_response, Request};

pub struct FakeS3 {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
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
        let root = Arc::new(root.to_path_buf());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, root.clone()));
            }
        });
        Ok(FakeS3 { addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve(stream: TcpStream, root: Arc<PathBuf>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    while let Some(req) = read_request(&mut reader, &mut write).await {
        let (status, headers, body) = handle(&req, &root).await;
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

fn etag(len: usize, modified: Option<std::time::SystemTime>) -> String {
    let nanos = modified
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}{nanos:x}\"")
}

async fn handle(req: &Request, root: &Path) -> Reply {
    let Some(file) = object_path(root, &req.path) else {
        return xml_error(501, "NotImplemented", "only object GET/HEAD/PUT are faked");
    };
    match req.method.as_str() {
        "GET" | "HEAD" => match tokio::fs::read(&file).await {
            Ok(bytes) => {
                let modified = tokio::fs::metadata(&file)
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok());
                let headers = vec![
                    ("content-type", "application/octet-stream".to_string()),
                    ("etag", etag(bytes.len(), modified)),
                ];
                (200, headers, bytes)
            }
            Err(_) => xml_error(404, "NoSuchKey", "The specified key does not exist."),
        },
        "PUT" => {
            if let Some(dir) = file.parent() {
                if let Err(e) = tokio::fs::create_dir_all(dir).await {
                    return xml_error(500, "InternalError", &e.to_string());
                }
            }
            match tokio::fs::write(&file, &req.body).await {
                Ok(()) => (
                    200,
                    vec![(
                        "etag",
                        etag(req.body.len(), Some(std::time::SystemTime::now())),
                    )],
                    Vec::new(),
                ),
                Err(e) => xml_error(500, "InternalError", &e.to_string()),
            }
        }
        _ => xml_error(501, "NotImplemented", "method not faked"),
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
