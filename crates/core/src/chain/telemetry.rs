//! Structured JSON logs for the functions. Every line carries the current span's fields, so
//! the `stage` and `source_uri` set by [`crate::chain::delivery::handle_payload`] appear on each one.
//! Message text is never logged above DEBUG: it can be personal data.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The functions' log format: one JSON object per line, with the current span's fields.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer)
        .finish()
}

/// JSON logs to stdout; level from `RUST_LOG` (else `LOG_LEVEL`, else `info`).
pub fn init_json_logs() {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| {
            EnvFilter::try_new(std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into()))
        })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init is harmless; ignore the error it returns.
    let _ = tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stdout));
}

/// Plain logs to stderr for command-line tools; level from `RUST_LOG`, else `default`.
pub fn init_stderr_logs(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour only on a terminal: a redirected stderr stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
