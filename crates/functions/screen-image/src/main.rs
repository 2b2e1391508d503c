#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moderation_lambda::init_logs();
    let app = screen_image::App::build(screen_image::Config::from_env()?).await?;
    moderation_lambda::serve(|event| screen_image::handler(event, &app)).await
}
