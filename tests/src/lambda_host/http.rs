//! Just enough HTTP/1.1 for the loopback servers of the bench and the tests (the Lambda Runtime API
//! emulator and the folder-backed S3): keep-alive, `Content-Length` and chunked bodies,
//! `Expect: 100-continue` (boto3 and the Rust SDK send it on S3 PUT), and S3's `aws-chunked`
//! content encoding.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// What follows `?`, still percent-encoded; empty when there is none.
    pub query: String,
    /// Names lower-cased.
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    /// A query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(&v.replace('+', " ")))
    }
}

/// The next request on a connection; `None` when the client closed it or sent garbage.
pub async fn read_request(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> Option<Request> {
    let (method, target, headers) = crate::fake_aws::read_request_head(r).await?;
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let (path, query) = (path.to_string(), query.to_string());
    if headers
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.ok()?;
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = if chunked {
        read_chunked(r).await?
    } else {
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await.ok()?;
        body
    };
    if headers
        .get("content-encoding")
        .is_some_and(|v| v.contains("aws-chunked"))
    {
        body = decode_aws_chunked(&body)?;
    }
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

async fn read_chunked(r: &mut BufReader<OwnedReadHalf>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).await.ok()?;
        let hex = size.trim().split(';').next()?.trim();
        let n = usize::from_str_radix(hex, 16).ok()?;
        if n == 0 {
            // Trailers, then the blank line.
            loop {
                let mut t = String::new();
                if r.read_line(&mut t).await.ok()? == 0 || t.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + n, 0);
        r.read_exact(&mut body[start..]).await.ok()?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).await.ok()?;
    }
}

/// `aws-chunked`: `<hex size>[;chunk-signature=…]\r\n<data>\r\n` … `0…\r\n<trailers>\r\n`.
pub fn decode_aws_chunked(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n")?;
        let head = std::str::from_utf8(&body[..eol]).ok()?;
        let n = usize::from_str_radix(head.split(';').next()?.trim(), 16).ok()?;
        body = &body[eol + 2..];
        if n == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..n)?);
        body = body.get(n + 2..)?;
    }
}

pub async fn write_response(
    w: &mut OwnedWriteHalf,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // One write, so no response waits on Nagle + delayed ACK between head and body.
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    w.write_all(&bytes).await?;
    w.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "Status",
    }
}

/// `%XX` decoding of a URL path segment (S3 keys arrive percent-encoded).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_bodies_decode() {
        let body = b"5;chunk-signature=abc\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n";
        assert_eq!(
            decode_aws_chunked(body).as_deref(),
            Some(&b"hello world"[..])
        );
        assert_eq!(decode_aws_chunked(b"zz\r\n"), None);
    }

    #[test]
    fn keys_are_percent_decoded() {
        assert_eq!(
            percent_decode("incoming/text/a%20b%2Bc.txt"),
            "incoming/text/a b+c.txt"
        );
        assert_eq!(percent_decode("50%"), "50%");
    }
}
