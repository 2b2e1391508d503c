//! The shape of the code, checked: core's top-level modules import each other without a cycle
//! and nothing imports a stage; no source file under crates/ is longer than a reader can take
//! in one sitting; no function outside tests is either. Each check reads the sources as text
//! (rustfmt's layout makes that reliable) and names every offender.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use moderation_tests::workspace_root as root;

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 100;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if p.is_dir() && !p.ends_with("target") {
                todo.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The top-level modules of core each file's code (not its comments) names through `crate::`.
fn core_imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("crates/core/src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let top = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let names = graph.entry(top.clone()).or_default();
        for line in read(&file)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
        {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let module: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let is_module = module.chars().next().is_some_and(char::is_lowercase);
                if is_module && module != top {
                    names.insert(module);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_passes_a_layered_graph() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    let layered = graph(&[("stages", "chain"), ("chain", "model"), ("stages", "model")]);
    assert_eq!(find_cycle(&layered), None);
    let cyclic = graph(&[("a", "b"), ("b", "c"), ("c", "a")]);
    assert_eq!(find_cycle(&cyclic).map(|c| c.len()), Some(4));
}

#[test]
fn core_modules_import_each_other_without_a_cycle_and_nothing_imports_a_stage() {
    let graph = core_imports();
    for expected in ["model", "ports", "chain", "text", "media", "stages"] {
        assert!(graph.contains_key(expected), "{expected}: {graph:?}");
    }
    assert_eq!(find_cycle(&graph), None, "{graph:#?}");
    let into_stages: Vec<&String> = graph
        .iter()
        .filter(|(from, to)| from.as_str() != "lib" && to.contains("stages"))
        .map(|(from, _)| from)
        .collect();
    assert!(
        into_stages.is_empty(),
        "import from stages: {into_stages:?}"
    );
}

#[test]
fn no_source_file_under_crates_is_over_800_lines() {
    let long: Vec<String> = rust_files(&root().join("crates"))
        .into_iter()
        .filter_map(|f| {
            let n = read(&f).lines().count();
            (n > MAX_FILE_LINES).then(|| format!("{}: {n}", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_FILE_LINES} lines: {long:#?}");
}

/// `(name, first line, lines)` of each function outside test code in `text`.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    // Test modules sit at the end of a file, after their `#[cfg(test)]`.
    let tests_from = lines
        .iter()
        .position(|l| l.starts_with("#[cfg(test)]"))
        .unwrap_or(lines.len());
    let mut out = Vec::new();
    for (i, line) in lines[..tests_from].iter().enumerate() {
        let Some((indent, name)) = fn_header(line) else {
            continue;
        };
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            out.push((name, i + 1, end + 2));
        }
    }
    out
}

/// The indent and name of a line that opens a function body.
fn fn_header(line: &str) -> Option<(&str, String)> {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let mut rest = trimmed;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let name: String = rest
        .strip_prefix("fn ")?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!line.trim_end().ends_with(';')).then_some((indent, name))
}

#[test]
fn the_function_finder_measures_bodies_and_skips_test_modules() {
    let text = "fn a() {\n    one();\n}\n\npub async fn b(\n    x: u8,\n) -> u8 {\n    x\n}\n\
                #[cfg(test)]\nmod tests {\n    fn c() {}\n}\n";
    let found = functions(text);
    assert_eq!(
        found,
        vec![("a".to_string(), 1, 3), ("b".to_string(), 5, 5)]
    );
}

#[test]
fn no_function_outside_tests_is_over_100_lines() {
    let mut long = Vec::new();
    for file in rust_files(&root().join("crates")) {
        let path = file.to_string_lossy();
        if path.contains("/tests/") || path.ends_with("/tests.rs") {
            continue;
        }
        for (name, line, n) in functions(&read(&file)) {
            if n > MAX_FN_LINES {
                long.push(format!("{}:{line} {name}: {n} lines", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_FN_LINES} lines: {long:#?}");
}
