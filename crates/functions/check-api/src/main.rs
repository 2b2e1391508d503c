//! The check-api Lambda: the shared router behind a Function URL (IAM auth), run by
//! `lambda_http`. Built once per execution environment; every request reuses it.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    moderation_lambda::init_logs();
    let config = check_api::Config::from_env()?;
    let service = check_api::Service::build(&config).await?;
    lambda_http::run(check_api::router(service, config.http)).await
}
