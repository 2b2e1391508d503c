use lambda_runtime::{run, service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    moderation_core::chain::telemetry::init_json_logs();
    let app = evaluate_policy::App::build(evaluate_policy::Config::from_env()?).await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        evaluate_policy::handler(event, app).await.map_err(|e| {
            let (error_type, error_message) = e.diagnostic();
            Diagnostic {
                error_type,
                error_message,
            }
        })
    }))
    .await
}
