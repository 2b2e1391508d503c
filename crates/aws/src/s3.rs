//! The bucket on S3. Source objects are spooled to an anonymous temp file while streaming, so
//! a 100 MB upload never sits whole in memory; documents are small and read directly.

use std::io::{Seek, SeekFrom, Write};

use async_trait::async_trait;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use moderation_core::model::ObjectRef;
use moderation_core::ports::{
    LinkLifetime, ListObjects, MediaLinks, OpenedObject, ReadObjects, SwapObjects, Tagged,
    WriteObjects,
};
use moderation_core::{Error as CoreError, Result as CoreResult};

use crate::errors::classify;

const SERVICE: &str = "s3";

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    presign_expiry: Duration,
}

/// How long a report's audio link is valid: SigV4's maximum, 7 days.
pub const DEFAULT_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

impl S3Store {
    pub fn new(client: Client) -> Self {
        S3Store {
            client,
            presign_expiry: DEFAULT_PRESIGN_EXPIRY,
        }
    }

    pub fn with_presign_expiry(mut self, expiry: Duration) -> Self {
        self.presign_expiry = expiry;
        self
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

fn spool_err(uri: &str, source: std::io::Error) -> CoreError {
    CoreError::Io {
        path: format!("temp file for {uri}"),
        source,
    }
}

#[async_trait]
impl ReadObjects for S3Store {
    async fn open(&self, obj: &ObjectRef) -> CoreResult<OpenedObject> {
        let mut req = self.client.get_object().bucket(&obj.bucket).key(&obj.key);
        if let Some(v) = &obj.version_id {
            req = req.version_id(v);
        }
        let out = match req.send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(CoreError::NotFound { uri: obj.uri() })
            }
            Err(e) => return Err(classify(SERVICE, e)),
        };
        let version = out
            .version_id()
            .or(out.e_tag())
            .map(|v| v.trim_matches('"').to_string());
        let size = out.content_length().and_then(|n| u64::try_from(n).ok());
        let uri = obj.uri();
        let mut file = tempfile::tempfile().map_err(|e| spool_err(&uri, e))?;
        let mut body = out.body;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => file.write_all(&chunk).map_err(|e| spool_err(&uri, e))?,
                Ok(None) => break,
                Err(e) => {
                    return Err(CoreError::service(
                        SERVICE,
                        moderation_core::error::ServiceErrorKind::Unavailable,
                        e,
                    ))
                }
            }
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| spool_err(&uri, e))?;
        Ok(OpenedObject {
            reader: Box::new(file),
            size,
            version,
        })
    }

    async fn get_bytes(&self, bucket: &str, key: &str) -> CoreResult<Option<Vec<u8>>> {
        Ok(self.get_document(bucket, key).await?.map(|(body, _)| body))
    }
}

impl S3Store {
    /// A small document and its ETag, `None` when there is no such key.
    async fn get_document(
        &self,
        bucket: &str,
        key: &str,
    ) -> CoreResult<Option<(Vec<u8>, Option<String>)>> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(classify(SERVICE, e)),
        };
        let tag = out.e_tag().map(str::to_string);
        let bytes = out.body.collect().await.map_err(|e| {
            CoreError::service(
                SERVICE,
                moderation_core::error::ServiceErrorKind::Unavailable,
                e,
            )
        })?;
        Ok(Some((bytes.to_vec(), tag)))
    }
}

#[async_trait]
impl WriteObjects for S3Store {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> CoreResult<()> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(SERVICE, e))
    }

    /// A body streamed from the file (re-read from the start if the SDK retries), so a large
    /// document is never in memory; one PUT takes up to 5 GB.
    async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
    ) -> CoreResult<()> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| CoreError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            })?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(SERVICE, e))
    }
}

/// S3 conditional writes: `If-Match` on the ETag read, `If-None-Match: *` to create. A 412
/// (Precondition Failed) or 409 (ConditionalRequestConflict: a concurrent conditional write is
/// in flight) means another writer got there first.
#[async_trait]
impl SwapObjects for S3Store {
    async fn get_tagged(&self, bucket: &str, key: &str) -> CoreResult<Option<Tagged>> {
        let Some((body, tag)) = self.get_document(bucket, key).await? else {
            return Ok(None);
        };
        let tag = tag.ok_or_else(|| {
            CoreError::service(
                SERVICE,
                moderation_core::error::ServiceErrorKind::Unavailable,
                format!("GetObject s3://{bucket}/{key} answered without an ETag"),
            )
        })?;
        Ok(Some(Tagged { body, tag }))
    }

    async fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        expected: Option<&str>,
    ) -> CoreResult<Option<String>> {
        let req = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        let req = match expected {
            Some(tag) => req.if_match(tag),
            None => req.if_none_match("*"),
        };
        match req.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(SERVICE, e)),
        }
    }
}

#[async_trait]
impl ListObjects for S3Store {
    async fn list(&self, bucket: &str, prefix: &str) -> CoreResult<Vec<String>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(SERVICE, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }
}

/// Presigned GET URLs for the report's audio player. The URL carries the signer's
/// credentials: with a Lambda role's session credentials it stops working when they expire
/// (hours), whatever `expires_in` says.
#[async_trait]
impl MediaLinks for S3Store {
    async fn media_url(&self, bucket: &str, key: &str) -> CoreResult<Option<String>> {
        let config = PresigningConfig::expires_in(self.presign_expiry).map_err(|e| {
            CoreError::Config(format!(
                "presigned URL expiry {:?}: {e}",
                self.presign_expiry
            ))
        })?;
        let req = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| classify(SERVICE, e))?;
        Ok(Some(req.uri().to_string()))
    }

    fn lifetime(&self) -> Option<LinkLifetime> {
        Some(LinkLifetime {
            at_most: self.presign_expiry,
            // A Lambda role's credentials always are temporary; a user's may be too.
            ends_with_session: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::types::error::NoSuchKey;
    use aws_sdk_s3::types::Object;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn open_streams_the_body_and_reports_the_version() {
        let rule = mock!(Client::get_object)
            .match_requests(|r| {
                r.bucket() == Some("b")
                    && r.key() == Some("incoming/text/a b.csv")
                    && r.version_id() == Some("v1")
            })
            .then_output(|| {
                GetObjectOutput::builder()
                    .body(ByteStream::from_static(b"message\nhello\n"))
                    .version_id("v1")
                    .content_length(14)
                    .build()
            });
        let store = S3Store::new(mock_client!(aws_sdk_s3, [&rule]));
        let mut obj = ObjectRef::new("b", "incoming/text/a b.csv");
        obj.version_id = Some("v1".into());
        let mut opened = store.open(&obj).await.expect("opens");
        let mut s = String::new();
        opened.reader.read_to_string(&mut s).expect("reads");
        assert_eq!(s, "message\nhello\n");
        assert_eq!(opened.version.as_deref(), Some("v1"));
        assert_eq!(opened.size, Some(14));
    }

    #[tokio::test]
    async fn a_document_is_uploaded_from_its_file() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), b"{\"items\":[]}").expect("write");
        let rule = mock!(Client::put_object)
            .match_requests(|r| {
                r.bucket() == Some("b")
                    && r.key() == Some("screened/x.json")
                    && r.content_type() == Some("application/json")
                    && r.body().size_hint().0 == 12
            })
            .then_output(|| PutObjectOutput::builder().build());
        let store = S3Store::new(mock_client!(aws_sdk_s3, [&rule]));
        store
            .put_file("b", "screened/x.json", file.path(), "application/json")
            .await
            .expect("uploads");
        assert_eq!(rule.num_calls(), 1);
        let gone = store
            .put_file(
                "b",
                "k",
                std::path::Path::new("/nonexistent/x"),
                "text/plain",
            )
            .await;
        assert!(matches!(gone, Err(CoreError::Io { .. })), "{gone:?}");
        assert_eq!(rule.num_calls(), 1, "no request for a missing file");
    }

    #[tokio::test]
    async fn missing_objects_are_not_found_and_missing_documents_are_none() {
        let rule = mock!(Client::get_object)
            .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
        let store = S3Store::new(mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&rule]));
        let err = store.open(&ObjectRef::new("b", "gone.txt")).await;
        assert!(matches!(err, Err(CoreError::NotFound { .. })));
        assert_eq!(
            store.get_bytes("b", "evaluated/x.json").await.expect("ok"),
            None
        );
    }

    #[tokio::test]
    async fn put_sends_key_body_and_content_type() {
        let rule = mock!(Client::put_object)
            .match_requests(|r| {
                r.bucket() == Some("b")
                    && r.key() == Some("reports/x.html")
                    && r.content_type() == Some("text/html; charset=utf-8")
            })
            .then_output(|| PutObjectOutput::builder().build());
        let store = S3Store::new(mock_client!(aws_sdk_s3, [&rule]));
        store
            .put(
                "b",
                "reports/x.html",
                b"<p>".to_vec(),
                "text/html; charset=utf-8",
            )
            .await
            .expect("put");
        assert_eq!(rule.num_calls(), 1);
    }

    fn s3_error(code: &str) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>m</Message></Error>")
    }

    #[tokio::test]
    async fn put_if_sends_if_match_and_returns_the_new_etag() {
        let rule = mock!(Client::put_object)
            .match_requests(|r| {
                r.key() == Some("reports/index/head.json")
                    && r.if_match() == Some("\"e1\"")
                    && r.if_none_match().is_none()
            })
            .then_output(|| PutObjectOutput::builder().e_tag("\"e2\"").build());
        let store = S3Store::new(mock_client!(aws_sdk_s3, [&rule]));
        let tag = store
            .put_if(
                "b",
                "reports/index/head.json",
                b"{}".to_vec(),
                "application/json",
                Some("\"e1\""),
            )
            .await
            .expect("put");
        assert_eq!(tag.as_deref(), Some("\"e2\""));
    }

    #[tokio::test]
    async fn put_if_creates_with_if_none_match_star() {
        let rule = mock!(Client::put_object)
            .match_requests(|r| r.if_none_match() == Some("*") && r.if_match().is_none())
            .then_output(|| PutObjectOutput::builder().e_tag("\"e1\"").build());
        let store = S3Store::new(mock_client!(aws_sdk_s3, [&rule]));
        let tag = store
            .put_if("b", "k", b"{}".to_vec(), "application/json", None)
            .await
            .expect("put");
        assert_eq!(tag.as_deref(), Some("\"e1\""));
    }

    #[tokio::test]
    async fn a_lost_race_is_none_and_other_failures_are_errors() {
        for (status, code, lost) in [
            (412, "PreconditionFailed", true),
            (409, "ConditionalRequestConflict", true),
            (403, "AccessDenied", false),
        ] {
            let rule = mock!(Client::put_object)
                .sequence()
                .http_status(status, Some(s3_error(code)))
                .build();
            let store = S3Store::new(mock_client!(aws_sdk_s3, [&rule]));
            let got = store
                .put_if("b", "k", b"{}".to_vec(), "application/json", Some("\"e1\""))
                .await;
            if lost {
                assert_eq!(got.expect("not an error"), None, "{status}");
            } else {
                let e = got.expect_err("an error").to_string();
                assert!(e.contains("AccessDenied"), "{e}");
            }
        }
    }

    #[tokio::test]
    async fn get_tagged_returns_the_body_and_etag() {
        let rule = mock!(Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .body(ByteStream::from_static(b"{\"page\":1}"))
                .e_tag("\"e9\"")
                .build()
        });
        let missing = mock!(Client::get_object)
            .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
        let store = S3Store::new(mock_client!(aws_sdk_s3, [&rule]));
        let t = store
            .get_tagged("b", "k")
            .await
            .expect("get")
            .expect("found");
        assert_eq!(t.tag, "\"e9\"");
        assert_eq!(t.body, b"{\"page\":1}");
        let store = S3Store::new(mock_client!(aws_sdk_s3, [&missing]));
        assert_eq!(store.get_tagged("b", "k").await.expect("get"), None);
    }

    #[tokio::test]
    async fn list_follows_pagination() {
        let page1 = mock!(Client::list_objects_v2)
            .match_requests(|r| r.continuation_token().is_none() && r.prefix() == Some("reports/"))
            .then_output(|| {
                ListObjectsV2Output::builder()
                    .contents(Object::builder().key("reports/a.json").build())
                    .is_truncated(true)
                    .next_continuation_token("t2")
                    .build()
            });
        let page2 = mock!(Client::list_objects_v2)
            .match_requests(|r| r.continuation_token() == Some("t2"))
            .then_output(|| {
                ListObjectsV2Output::builder()
                    .contents(Object::builder().key("reports/b.json").build())
                    .is_truncated(false)
                    .build()
            });
        let store = S3Store::new(mock_client!(
            aws_sdk_s3,
            RuleMode::MatchAny,
            [&page1, &page2]
        ));
        let keys = store.list("b", "reports/").await.expect("lists");
        assert_eq!(keys, vec!["reports/a.json", "reports/b.json"]);
    }

    #[tokio::test]
    async fn media_links_are_presigned_gets_that_expire() {
        // Presigning signs locally; no request is sent.
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .build();
        let store =
            S3Store::new(Client::from_conf(config)).with_presign_expiry(Duration::from_secs(3600));
        let url = store
            .media_url("moderation-demo", "incoming/audio/match 42/voice.wav")
            .await
            .expect("signs")
            .expect("a link");
        assert!(url.starts_with("https://"), "{url}");
        assert!(url.contains("moderation-demo"), "{url}");
        assert!(url.contains("incoming/audio/match%2042/voice.wav"), "{url}");
        assert!(url.contains("X-Amz-Expires=3600"), "{url}");
        assert!(url.contains("X-Amz-Signature="), "{url}");
    }
}
