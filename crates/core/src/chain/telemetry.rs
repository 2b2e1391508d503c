//! Structured JSON logs for the functions. Every line carries the current span's fields, so
//! the `stage` and `source_uri` set by [`crate::chain::delivery::handle_payload`] appear on each one.
//! Message text is never logged above DEBUG: it can be personal data.
//!
//! The lines that alarms count are typed events here, one function each, so the field a
//! metric filter in `infra/template.yaml` reads is written in one place (tests/tests/infra.rs
//! holds the template's patterns to these names).

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

/// The field the `UploadsCutShort` metric filters count (`{ $.fields.time_limit IS TRUE }`).
pub const TIME_LIMIT: &str = "time_limit";
/// The field set on every dead letter written to `failed/`.
pub const DEAD_LETTER: &str = "dead_letter";

/// Work not done for want of time: an upload screened only in part, a user report's chat log
/// not screened, or detector calls abandoned at the deadline. No DLQ sees these.
pub fn cut_short(key: &str, what: &str, messages: Option<u64>) {
    tracing::warn!(key, time_limit = true, messages, "time limit: {what}");
}

/// Work that cannot succeed on a retry, recorded under `failed/` and acknowledged.
pub fn dead_lettered(stage: &str, key: &str, reason: &str) {
    tracing::warn!(dead_letter = true, stage, key, reason, "dead-lettered");
}
