#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moderation_lambda::init_logs();
    let app = screen_text::App::build(screen_text::Config::from_env()?).await?;
    moderation_lambda::serve(|event| screen_text::handler(event, &app)).await
}
