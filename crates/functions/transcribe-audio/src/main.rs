#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    moderation_lambda::init_logs();
    let app = transcribe_audio::App::build(transcribe_audio::Config::from_env()?).await?;
    moderation_lambda::serve(|event| transcribe_audio::handler(event, &app)).await
}
