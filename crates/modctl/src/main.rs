//! modctl: moderate local files through the same stages as the Lambda chain (offline by
//! default), write reports, and print one line per source. docs/modctl.md is its contract.

mod chain;
mod check_prompt;
mod cli;
mod files;
mod lines;
mod progress;
mod serve;
mod shown;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use moderation_core::chain::keys;

use chain::Chain;
use cli::{CliError, RunArgs};
use files::{files_in, speak_scripts, upload_keys};
use lines::Lines;
use shown::shown;

#[derive(Parser)]
#[command(
    name = "modctl",
    version,
    about = "Moderate chat logs through the moderation chain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Moderate local files (.txt .csv .jsonl; audio .wav .flac .ogg .mp3; images .png .jpg .gif .webp).
    Moderate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Moderate the sample uploads in events/uploads/, plus voice chat spoken from the scripts
    /// in events/speech/ with espeak-ng (skipped with a note when it is not installed).
    Demo {
        #[arg(long, default_value = "events/uploads")]
        uploads: PathBuf,
        /// Voice-chat scripts: one spoken line per line of each .txt file.
        #[arg(long, default_value = "events/speech")]
        speech: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Check an image-generation prompt before it reaches an image model: prints allow, warn or
    /// block with the reasons, and the negative prompt to pass along. Exit status 0 allow,
    /// 3 warn, 4 block.
    CheckPrompt {
        prompt: String,
        /// Negative-prompt list, one term per line (default NEGATIVE_PROMPTS, else
        /// infra/negative-prompts.txt).
        #[arg(long)]
        negative_prompts: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Serve the real-time check API (docs/api.md) on ADDR until Ctrl-C: POST /v1/check/text,
    /// POST /v1/check/prompt, GET /healthz.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Bearer token every check must send; required to bind anything but loopback
        /// (default MODCTL_TOKEN).
        #[arg(long, env = "MODCTL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Negative-prompt list for /v1/check/prompt (default NEGATIVE_PROMPTS, else
        /// infra/negative-prompts.txt).
        #[arg(long)]
        negative_prompts: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
}

async fn run(cli: Cli) -> Result<u8, CliError> {
    let (paths, run) = match cli.command {
        Command::CheckPrompt {
            prompt,
            negative_prompts,
            run,
        } => return check_prompt::check_prompt(&prompt, negative_prompts, &run).await,
        Command::Serve {
            addr,
            token,
            negative_prompts,
            run,
        } => return serve::serve(addr, token, negative_prompts, &run).await,
        Command::Moderate { paths, run } => (paths, run),
        Command::Demo {
            uploads,
            speech,
            run,
        } => {
            let mut paths = files_in(&uploads)?;
            paths.extend(speak_scripts(&speech, &run.out.join("demo-audio"))?);
            (paths, run)
        }
    };
    // Check every argument before moderating anything, so a typo does not leave half a run.
    let keys = upload_keys(&paths)?;
    let chain = Chain::build(&run).await?;
    let mut out = Lines::new(std::io::stdout());
    // One file's failure is reported on its line and the rest still run.
    let mut failed = Vec::new();
    for (p, key) in paths.iter().zip(keys) {
        match chain.moderate(p, key).await {
            Ok(line) => out.line(&line),
            Err(e) => {
                let e = e.to_string();
                let line = if e.starts_with(&shown(p)) {
                    e
                } else {
                    format!("{}: {e}", shown(p))
                };
                out.line(&line);
                failed.push(shown(p));
            }
        }
    }
    out.line(&format!(
        "index: {}",
        shown(&run.out.join(keys::report_index_key()))
    ));
    if failed.is_empty() {
        return Ok(0);
    }
    eprintln!(
        "modctl: {} of {} files failed: {}",
        failed.len(),
        paths.len(),
        failed.join(", ")
    );
    Ok(1)
}

#[tokio::main]
async fn main() -> ExitCode {
    // Human-readable warnings only; the functions log JSON.
    tracing_subscriber_init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(
            e @ (CliError::Usage(_)
            | CliError::Core(
                moderation_core::Error::MissingVar { .. }
                | moderation_core::Error::InvalidVar { .. }
                | moderation_core::Error::Config(_)
                | moderation_core::Error::ConfigSource { .. },
            )),
        ) => {
            eprintln!("modctl: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("modctl: {e}");
            ExitCode::from(1)
        }
    }
}

fn tracing_subscriber_init() {
    moderation_core::chain::telemetry::init_stderr_logs("warn");
}
