//! Shared helpers for the offline whole-chain and handler-with-fixture tests.

use std::path::{Path, PathBuf};

/// The workspace root, where `events/` and `infra/` live.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A Lambda event fixture from `events/`, parsed.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The bucket the fixtures name.
pub const FIXTURE_BUCKET: &str = "moderation-demo";

/// Copy the sample uploads into `<root>/<bucket>/incoming/text/`, as an uploader would.
pub fn stage_uploads(root: &Path) -> Vec<String> {
    let src = workspace_root().join("events/uploads");
    let dest = root.join(FIXTURE_BUCKET).join("incoming/text");
    std::fs::create_dir_all(&dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
    let mut keys = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        std::fs::copy(e.path(), dest.join(&name)).unwrap_or_else(|err| panic!("{name}: {err}"));
        keys.push(format!("incoming/text/{name}"));
    }
    keys
}
