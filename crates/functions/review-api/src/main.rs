//! The review-api Lambda: the review routes and console behind an API Gateway HTTP API whose
//! JWT authorizer checks the Cognito sign-in; the moderator is the token's subject.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    moderation_lambda::init_logs();
    let config = review_api::Config::from_env()?;
    let service = review_api::Service::build(&config).await?;
    lambda_http::run(review_api::lambda_router(service, &config)).await
}
