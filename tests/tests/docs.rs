//! The documentation names only what exists, and names what a user needs: every path,
//! `make` target and link in README.md and docs/ must exist; every function, environment
//! variable the code reads, and S3 prefix of the chain must be documented.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use moderation_tests::workspace_root as root;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every page of docs/, with their text.
fn pages() -> Vec<(PathBuf, String)> {
    let mut out = vec![(root().join("README.md"), read(&root().join("README.md")))];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 5, "{docs:?}");
    out.extend(docs.into_iter().map(|p| {
        let text = read(&p);
        (p, text)
    }));
    out
}

/// The `code spans` of a Markdown text.
fn spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// `a/{b,c}.rs` as `a/b.rs` and `a/c.rs`.
fn expand(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(a), Some(b)) if a < b => path[a + 1..b]
            .split(',')
            .flat_map(|part| expand(&format!("{}{}{}", &path[..a], part, &path[b + 1..])))
            .collect(),
        _ => vec![path.to_string()],
    }
}

const TOP: &[&str] = &["crates/", "tests/", "events/", "infra/", "docs/", ".ci/"];

#[test]
fn every_path_make_target_and_link_named_exists() {
    let makefile = read(&root().join("Makefile"));
    let targets: BTreeSet<&str> = makefile
        .lines()
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| !t.starts_with(['\t', '#', '.', '$']) && !t.contains(' ') && !t.contains('='))
        .collect();
    let mut missing = Vec::new();
    for (page, text) in pages() {
        let name = page.display().to_string();
        for span in spans(&text) {
            let first = span.split_whitespace().next().unwrap_or("");
            if TOP.iter().any(|t| first.starts_with(t))
                && !first.contains(['<', '*', '…'])
                && !first.contains("...")
            {
                let path = first.trim_end_matches([',', ':', ';', ')']);
                let path = path.split(['#', ':']).next().unwrap_or(path);
                for p in expand(path) {
                    if !root().join(&p).exists() {
                        missing.push(format!("{name}: path {p}"));
                    }
                }
            }
            if let Some(rest) = span.strip_prefix("make ") {
                let target = rest.split_whitespace().next().unwrap_or("");
                if !target.contains('=') && !targets.contains(target) {
                    missing.push(format!("{name}: make target {target}"));
                }
            }
        }
        // Relative Markdown links: [text](docs/x.md) or (x.md#anchor).
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap_or("");
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap_or(target);
            let base = page.parent().unwrap_or(Path::new("."));
            if !file.is_empty() && !base.join(file).exists() {
                missing.push(format!("{name}: link {target}"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

/// Environment variables the code reads by name (outside its tests).
fn variables_read() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root().join("crates")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("tests") && !p.ends_with("benches") {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") || p.ends_with("tests.rs") {
                continue;
            }
            let text = read(&p);
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for method in [
                ".get(",
                ".required(",
                ".or(",
                ".count(",
                ".count_u32(",
                ".parsed(",
                ".rate(",
            ] {
                for after in code.split(method).skip(1) {
                    let arg = after.trim_start();
                    let Some(arg) = arg.strip_prefix('"') else {
                        continue;
                    };
                    let name: String = arg.chars().take_while(|c| *c != '"').collect();
                    if name.len() > 3
                        && name
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    {
                        out.insert(name);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_function_variable_and_prefix_is_documented() {
    let all: String = pages().into_iter().map(|(_, t)| t).collect();
    let config = read(&root().join("docs/configuration.md"));
    let mut missing = Vec::new();
    for e in std::fs::read_dir(root().join("crates/functions"))
        .expect("functions")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !all.contains(&format!("crates/functions/{name}")) {
            missing.push(format!("function {name}"));
        }
    }
    let read_vars = variables_read();
    assert!(read_vars.len() > 30, "{read_vars:?}");
    for var in read_vars {
        if !config.contains(&format!("`{var}`")) {
            missing.push(format!("variable {var} (docs/configuration.md)"));
        }
    }
    let keys = read(&root().join("crates/core/src/chain/keys.rs"));
    for line in keys
        .lines()
        .filter(|l| l.starts_with("pub const") && l.contains(": &str = \""))
    {
        let prefix = line.split('"').nth(1).unwrap_or("");
        if prefix.ends_with('/') && !all.contains(prefix) {
            missing.push(format!("S3 prefix {prefix}"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
