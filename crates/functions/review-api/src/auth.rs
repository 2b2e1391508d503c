//! Who a request is from on AWS: the subject of the JWT the HTTP API's authorizer verified,
//! and only when the token says the user is in the moderators group. Never the request body.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use moderation_http::review::Moderator;
use moderation_http::{ApiError, Code};

/// The Cognito group whose members may decide (created by the template).
pub const MODERATORS_GROUP: &str = "moderators";

/// The moderator a verified token names, or the answer for a request without one.
pub fn moderator_of(context: Option<&RequestContext>) -> Result<Moderator, ApiError> {
    let claims = match context {
        Some(RequestContext::ApiGatewayV2(c)) => c
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|j| &j.claims),
        _ => None,
    };
    let Some(claims) = claims else {
        return Err(ApiError::new(
            Code::Unauthorized,
            "no verified sign-in: send Authorization: Bearer <the Cognito ID token>",
        ));
    };
    let subject = claims
        .get("sub")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::new(Code::Unauthorized, "the token names no subject (sub)"))?;
    // API Gateway passes a list claim as one string: `[moderators admins]`.
    let groups = claims.get("cognito:groups").map_or("", String::as_str);
    let member = groups
        .trim_matches(|c| c == '[' || c == ']')
        .split([' ', ','])
        .any(|g| g.trim_matches('"') == MODERATORS_GROUP);
    if !member {
        return Err(ApiError::new(
            Code::Forbidden,
            format!("the signed-in user is not in the {MODERATORS_GROUP} group"),
        ));
    }
    Ok(Moderator(subject.clone()))
}

/// Routes anyone may load: the console page holds no data, and the health check.
const OPEN: [&str; 2] = ["/review", "/healthz"];

/// Put the moderator on every request the routes see, or answer 401/403 before them.
pub async fn require_moderator(mut req: Request, next: Next) -> Response {
    if OPEN.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    match moderator_of(req.extensions().get::<RequestContext>()) {
        Ok(m) => {
            req.extensions_mut().insert(m);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequestContext,
    };

    fn context(claims: &[(&str, &str)]) -> RequestContext {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = claims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.authorizer = Some(authorizer);
        RequestContext::ApiGatewayV2(ctx)
    }

    #[test]
    fn only_a_member_of_the_moderators_group_with_a_subject_is_a_moderator() {
        let ok = context(&[("sub", "u-1"), ("cognito:groups", "[admins moderators]")]);
        assert_eq!(moderator_of(Some(&ok)), Ok(Moderator("u-1".into())));
        let outsider = context(&[("sub", "u-2"), ("cognito:groups", "[players]")]);
        assert_eq!(
            moderator_of(Some(&outsider)).map_err(|e| e.code),
            Err(Code::Forbidden)
        );
        let no_groups = context(&[("sub", "u-3")]);
        assert_eq!(
            moderator_of(Some(&no_groups)).map_err(|e| e.code),
            Err(Code::Forbidden)
        );
        // A group whose name only contains the word is not the group.
        let lookalike = context(&[("sub", "u-4"), ("cognito:groups", "[ex-moderators]")]);
        assert_eq!(
            moderator_of(Some(&lookalike)).map_err(|e| e.code),
            Err(Code::Forbidden)
        );
        let no_subject = context(&[("cognito:groups", "[moderators]")]);
        assert_eq!(
            moderator_of(Some(&no_subject)).map_err(|e| e.code),
            Err(Code::Unauthorized)
        );
        assert_eq!(
            moderator_of(None).map_err(|e| e.code),
            Err(Code::Unauthorized)
        );
    }
}
