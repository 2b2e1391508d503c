#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moderation_lambda::init_logs();
    let app = write_report::App::build(write_report::Config::from_env()?).await?;
    moderation_lambda::serve(|event| write_report::handler(event, &app)).await
}
