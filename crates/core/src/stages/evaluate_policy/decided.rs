//! Judgements as the second walk needs them, spooled to a temp file by group as they arrive.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::{Evaluation, Verdict};
use crate::ports::Judgement;

/// A judgement as the second walk needs it, kept on disk by group.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Decided {
    pub(super) verdict: Verdict,
    pub(super) evaluation: Option<Evaluation>,
    /// Why the judge's answer was not trusted, or why the call failed.
    pub(super) problem: Option<String>,
}

impl Decided {
    pub(super) fn of(result: &Result<Judgement>) -> Self {
        match result {
            Ok(j) => Decided {
                verdict: j.verdict,
                evaluation: Some(j.evaluation.clone()),
                problem: j.problem.clone(),
            },
            Err(e) => Decided {
                verdict: Verdict::NeedsReview,
                evaluation: None,
                problem: Some(format!("policy evaluation failed: {e}")),
            },
        }
    }
}

/// Judgements written as they arrive, read back by group: their memory does not grow with the
/// number of judge calls an upload may make.
pub(super) struct DecidedSpool {
    file: std::fs::File,
    offsets: HashMap<u32, (u64, usize)>,
    end: u64,
}

impl DecidedSpool {
    pub(super) fn new() -> Result<Self> {
        let file = tempfile::tempfile().map_err(|e| spool_io("judgements", e))?;
        Ok(DecidedSpool {
            file,
            offsets: HashMap::new(),
            end: 0,
        })
    }

    pub(super) fn put(&mut self, group: u32, d: &Decided) -> Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let bytes = serde_json::to_vec(d).map_err(|source| Error::Document {
            key: "spooled judgements".into(),
            source,
        })?;
        self.file
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| self.file.write_all(&bytes))
            .map_err(|e| spool_io("judgements", e))?;
        self.offsets.insert(group, (self.end, bytes.len()));
        self.end += bytes.len() as u64;
        Ok(())
    }

    pub(super) fn get(&mut self, group: u32) -> Result<Option<Decided>> {
        use std::io::{Read, Seek, SeekFrom};
        let Some(&(at, len)) = self.offsets.get(&group) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; len];
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| spool_io("judgements", e))?;
        serde_json::from_slice(&buf)
            .map(Some)
            .map_err(|source| Error::Document {
                key: "spooled judgements".into(),
                source,
            })
    }
}

fn spool_io(what: &str, source: std::io::Error) -> Error {
    Error::Io {
        path: format!("temp file of {what}"),
        source,
    }
}
