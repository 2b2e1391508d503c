//! The offline knowledge base: the Markdown policy split into sections at headings, searched
//! with BM25.

use std::fs;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bm25::{Language, SearchEngine, SearchEngineBuilder};
use moderation_core::ports::{PolicyPassage, PolicyRetriever};
use moderation_core::Result as CoreResult;

use crate::error::Error;

/// One section of the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySection {
    pub title: String,
    /// `<file>#<anchor>`.
    pub uri: String,
    /// The section's Markdown, heading included.
    pub text: String,
}

pub struct PolicyIndex {
    sections: Vec<PolicySection>,
    engine: SearchEngine<usize>,
}

fn anchor(title: &str) -> String {
    let mut a = String::new();
    for c in title.chars() {
        if c.is_alphanumeric() {
            a.extend(c.to_lowercase());
        } else if !a.ends_with('-') && !a.is_empty() {
            a.push('-');
        }
    }
    a.trim_end_matches('-').to_string()
}

/// Split Markdown at `#`/`##`/`###` headings; text before the first heading is its own section.
pub fn split_sections(markdown: &str, file_uri: &str) -> Vec<PolicySection> {
    let mut out = Vec::new();
    let mut title = String::new();
    let mut body = String::new();
    let mut push = |title: &str, body: &str| {
        if body.trim().is_empty() {
            return;
        }
        out.push(PolicySection {
            title: title.to_string(),
            uri: if title.is_empty() {
                file_uri.to_string()
            } else {
                format!("{file_uri}#{}", anchor(title))
            },
            text: body.trim().to_string(),
        });
    };
    for line in markdown.lines() {
        let t = line.trim_start();
        let level = t.chars().take_while(|c| *c == '#').count();
        if (1..=3).contains(&level) && t[level..].starts_with(' ') {
            push(&title, &body);
            title = t[level..].trim().to_string();
            body = format!("{line}\n");
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    push(&title, &body);
    out
}

impl PolicyIndex {
    pub fn from_sections(sections: Vec<PolicySection>) -> Result<Self, Error> {
        if sections.is_empty() {
            return Err(Error::Policy {
                path: "(policy)".into(),
                reason: "no policy sections to search".into(),
            });
        }
        let docs: Vec<bm25::Document<usize>> = sections
            .iter()
            .enumerate()
            .map(|(i, s)| bm25::Document::new(i, s.text.clone()))
            .collect();
        let engine = SearchEngineBuilder::<usize>::with_documents(Language::English, docs).build();
        Ok(PolicyIndex { sections, engine })
    }

    /// Index every `*.md` file of `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Self, Error> {
        let io = |source| Error::PolicyIo {
            path: dir.display().to_string(),
            source,
        };
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::Policy {
                path: dir.display().to_string(),
                reason: "contains no .md policy files".into(),
            });
        }
        let mut sections = Vec::new();
        for f in files {
            let text = fs::read_to_string(&f).map_err(|source| Error::PolicyIo {
                path: f.display().to_string(),
                source,
            })?;
            // References name the file within the policy folder, not this machine's path.
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            sections.extend(split_sections(&text, &name));
        }
        Self::from_sections(sections)
    }

    pub fn sections(&self) -> &[PolicySection] {
        &self.sections
    }

    /// BM25 score of every section for `query`, in section order (0 where it does not match).
    pub fn bm25_scores(&self, query: &str) -> Vec<f64> {
        let mut scores = vec![0.0f64; self.sections.len()];
        for r in self.engine.search(query, None) {
            if let Some(s) = scores.get_mut(r.document.id) {
                *s = f64::from(r.score);
            }
        }
        scores
    }

    pub fn search(&self, query: &str, top_k: usize) -> Vec<PolicyPassage> {
        self.engine
            .search(query, top_k)
            .into_iter()
            .filter_map(|r| {
                let s = self.sections.get(r.document.id)?;
                Some(PolicyPassage {
                    text: s.text.clone(),
                    uri: s.uri.clone(),
                    score: f64::from(r.score),
                })
            })
            .collect()
    }
}

#[async_trait]
impl PolicyRetriever for PolicyIndex {
    async fn retrieve(&self, query: &str, top_k: usize) -> CoreResult<Vec<PolicyPassage>> {
        Ok(self.search(query, top_k))
    }
}
