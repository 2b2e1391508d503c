#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moderation_lambda::init_logs();
    let app = sync_policies::App::build(sync_policies::Config::from_env()?).await?;
    moderation_lambda::serve(|event| sync_policies::handler(event, &app)).await
}
