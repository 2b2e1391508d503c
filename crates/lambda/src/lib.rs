//! The Lambda runtime loop every function's `main.rs` shares: JSON logs, then each event handed
//! to the function's handler, its error reported with the diagnostic (`Retryable` or
//! `NonRetryable` and the message) that the runtime API and the alarms read.

use std::future::Future;

use lambda_runtime::{run, service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;

/// Run `handler` on every event until the runtime stops. Call after building the function's
/// `App` (a configuration error then stops the cold start with a message naming it).
pub async fn serve<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(LambdaEvent<Value>) -> Fut,
    Fut: Future<Output = moderation_core::Result<Value>>,
{
    run(service_fn(|event: LambdaEvent<Value>| {
        let handled = handler(event);
        async move { handled.await.map_err(diagnostic) }
    }))
    .await
}

/// The runtime API's error report for one failed event.
pub fn diagnostic(e: moderation_core::Error) -> Diagnostic {
    let (error_type, error_message) = e.diagnostic();
    Diagnostic {
        error_type,
        error_message,
    }
}

/// Structured JSON logs on stdout, as every function writes them.
pub fn init_logs() {
    moderation_core::chain::telemetry::init_json_logs();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reports_whether_a_retry_can_help() {
        let d = diagnostic(moderation_core::Error::OutOfTime("the deadline".into()));
        let (kind, message) = moderation_core::Error::OutOfTime("the deadline".into()).diagnostic();
        assert_eq!((d.error_type, d.error_message), (kind, message));
        let d = diagnostic(moderation_core::Error::Input("not a chat log".into()));
        assert!(
            d.error_message.contains("not a chat log"),
            "{}",
            d.error_message
        );
    }
}
