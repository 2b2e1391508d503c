#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moderation_lambda::init_logs();
    let app = evaluate_policy::App::build(evaluate_policy::Config::from_env()?).await?;
    moderation_lambda::serve(|event| evaluate_policy::handler(event, &app)).await
}
