use lambda_runtime::{run, service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    moderation_core::chain::telemetry::init_json_logs();
    let app = write_report::App::build(write_report::Config::from_env()?).await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        write_report::handler(event, app).await.map_err(|e| {
            let (error_type, error_message) = e.diagnostic();
            Diagnostic {
                error_type,
                error_message,
            }
        })
    }))
    .await
}
