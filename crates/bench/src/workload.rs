//! What the benchmarks feed the functions: chat logs of N distinct short messages, S3
//! notifications for them, and the environment that points a function at the fakes.

use std::path::{Path, PathBuf};

use serde_json::json;

/// Message `i` of the fault-injection suite's pool (`moderation_tests::chat_message`): well
/// under Comprehend's 1 KB segment limit, so the fewest possible DetectToxicContent requests
/// for N messages is ⌈N / 10⌉.
pub use moderation_tests::chat_message as message;

/// A TXT chat log of `n` messages, one a line.
pub fn chat_log(n: usize) -> String {
    (0..n).map(|i| message(i) + "\n").collect()
}

/// Write `text` as `s3://bucket/key` of the folder bucket at `root`; its size in bytes.
pub fn put_object(root: &Path, bucket: &str, key: &str, bytes: &[u8]) -> Result<u64, String> {
    let path = object_file(root, bucket, key);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes.len() as u64)
}

pub fn object_file(root: &Path, bucket: &str, key: &str) -> PathBuf {
    root.join(bucket).join(key)
}

/// A direct S3 `ObjectCreated:Put` notification, as S3 sends it (key form-URL-encoded).
pub fn s3_event(bucket: &str, key: &str, size: u64) -> Vec<u8> {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T10:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "bench",
               "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded, "size": size,
                          "eTag": "0123456789abcdef0123456789abcdef",
                          "sequencer": "0A1B2C3D4E5F678901"}}
    }]})
    .to_string()
    .into_bytes()
}

/// Where the fakes listen.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The folder-backed S3.
    pub s3: String,
    /// The fake Comprehend / Bedrock (moderation-tests' `FakeAws`).
    pub aws: String,
}

/// The environment of a function on the `aws` backend pointed at the fakes: static dummy
/// credentials and a region from the environment (no IMDS, no profile files), the SDKs'
/// standard endpoint-override variables. The Rust binaries and the Python baseline get the same.
pub fn aws_env(endpoints: &Endpoints, home: &Path) -> Vec<(String, String)> {
    [
        ("MODERATION_BACKEND", "aws"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK000000"),
        ("AWS_SECRET_ACCESS_KEY", "bench-secret-not-a-real-key"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_ENDPOINT_URL", endpoints.aws.as_str()),
        ("AWS_ENDPOINT_URL_S3", endpoints.s3.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("HOME".to_string(), home.display().to_string())])
    .chain(deployed_global("GLIBC_TUNABLES").map(|v| ("GLIBC_TUNABLES".to_string(), v)))
    .collect()
}

/// A variable the template sets for every function (`Globals`), so the functions run here
/// as they are deployed.
pub fn deployed_global(var: &str) -> Option<String> {
    let template =
        std::fs::read_to_string(moderation_tests::workspace_root().join("infra/template.yaml"))
            .ok()?;
    let globals = &template[template.find("\nGlobals:")?..];
    let globals = &globals[..globals.find("\nResources:").unwrap_or(globals.len())];
    globals
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{var}:")))
        .map(|v| v.trim().trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_distinct_and_short() {
        let log = chat_log(40);
        let lines: std::collections::BTreeSet<&str> = log.lines().collect();
        assert_eq!(lines.len(), 40);
        assert!(lines.iter().all(|l| l.len() < 1024));
    }

    #[test]
    fn the_functions_run_with_the_deployed_allocator_settings() {
        let tunables = deployed_global("GLIBC_TUNABLES").expect("set in the template's Globals");
        assert!(
            tunables.contains("glibc.malloc.mmap_threshold="),
            "{tunables}"
        );
        let env = aws_env(
            &Endpoints {
                s3: "http://s3".into(),
                aws: "http://aws".into(),
            },
            Path::new("/tmp"),
        );
        assert!(env.contains(&("GLIBC_TUNABLES".to_string(), tunables)));
    }

    #[test]
    fn events_encode_keys_like_s3() {
        let e: serde_json::Value =
            serde_json::from_slice(&s3_event("b", "incoming/text/a b+c.txt", 3)).expect("json");
        assert_eq!(
            e["Records"][0]["s3"]["object"]["key"],
            "incoming/text/a+b%2Bc.txt"
        );
    }
}
