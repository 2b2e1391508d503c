//! What a run is asked for (the flags every subcommand shares) and how it can fail.

use std::path::PathBuf;

use clap::ValueEnum;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum BackendArg {
    Offline,
    Aws,
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Output folder: reports land in DIR/reports/.
    #[arg(long, default_value = "moderation-out")]
    pub(crate) out: PathBuf,
    /// Policy folder indexed by the offline knowledge base.
    #[arg(long, default_value = "infra/policies")]
    pub(crate) policy: PathBuf,
    /// offline: embedded models; aws: Comprehend + Bedrock (KNOWLEDGE_BASE_ID, MODEL_ID).
    /// Default: MODERATION_BACKEND, else offline.
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendArg>,
    /// Toxicity threshold in [0, 1] (default TOXICITY_THRESHOLD or 0.5).
    #[arg(long)]
    pub(crate) threshold: Option<f64>,
    /// CSV/JSONL column holding the message text.
    #[arg(long, value_parser = column_name)]
    pub(crate) text_column: Option<String>,
    /// No progress bar on stderr (there is none off a terminal anyway).
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// A column name: anything but blank.
fn column_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("a column name cannot be blank".into());
    }
    Ok(s.to_string())
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Core(#[from] moderation_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not moderated: {what}")]
    TooLarge { path: String, what: String },
}
