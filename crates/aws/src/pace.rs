//! Client-side pacing on the SDK clients (`COMPREHEND_TPS` …, [`moderation_core::chain::pace`]).
//!
//! Each paced call waits for its slot before it is sent. An interceptor on the client reports
//! every throttled attempt back to the pacer, retries included, which slows it down; it climbs
//! back with time. A paced client runs the SDK's standard retry (same attempts):
//! adaptive retry's own limiter would pace a second time, below the quota. Unpaced clients of
//! the same function keep adaptive retry. Retried attempts are not paced again: they follow a
//! throttle or an error, and the throttle has already slowed the pacer down.

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::config_bag::ConfigBag;
use moderation_core::chain::pace::Pacer;

/// Error codes with which AWS services say "too many requests".
const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "ThrottledException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Reports each attempt's outcome to a pacer.
#[derive(Debug, Clone)]
pub struct ThrottleFeedback {
    pacer: Arc<Pacer>,
}

impl ThrottleFeedback {
    pub fn new(pacer: Arc<Pacer>) -> Self {
        ThrottleFeedback { pacer }
    }
}

impl Intercept for ThrottleFeedback {
    fn name(&self) -> &'static str {
        "ThrottleFeedback"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.response().is_some_and(is_throttle) {
            self.pacer.throttled();
        }
        Ok(())
    }
}

/// 429, or an error code of [`THROTTLE_CODES`] in `x-amzn-ErrorType` or in the error body
/// (awsJson services such as Comprehend answer 400 with `"__type"` in the body).
fn is_throttle(response: &Response) -> bool {
    let status = response.status().as_u16();
    if status == 429 {
        return true;
    }
    if !(400..600).contains(&status) {
        return false;
    }
    let named = |text: &str| THROTTLE_CODES.iter().any(|c| text.contains(c));
    if response
        .headers()
        .get("x-amzn-errortype")
        .is_some_and(named)
    {
        return true;
    }
    response
        .body()
        .bytes()
        .and_then(|b| std::str::from_utf8(b).ok())
        .is_some_and(named)
}

/// The body of an adapter's `with_pacer`: `self.client` rebuilt with a [`ThrottleFeedback`]
/// interceptor for the pacer, and the pacer kept for [`wait`]. A macro because the SDK clients
/// share no trait for their configuration.
macro_rules! with_pacer {
    ($self:ident, $pacer:ident, $client:ty) => {{
        if let Some(p) = &$pacer {
            let attempts = $self
                .client
                .config()
                .retry_config()
                .map_or(3, |r| r.max_attempts());
            let conf = $self
                .client
                .config()
                .to_builder()
                .retry_config(
                    aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(attempts),
                )
                .interceptor($crate::pace::ThrottleFeedback::new(p.clone()))
                .build();
            $self.client = <$client>::from_conf(conf);
        }
        $self.pacer = $pacer;
        $self
    }};
}
pub(crate) use with_pacer;

/// Wait for the pacer's slot, when there is one.
pub async fn wait(pacer: Option<&Arc<Pacer>>) {
    if let Some(p) = pacer {
        p.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn response(status: u16, header: Option<&str>, body: &str) -> Response {
        let mut r = Response::new(
            status.try_into().expect("status"),
            SdkBody::from(body.to_string()),
        );
        if let Some(h) = header {
            r.headers_mut().insert("x-amzn-errortype", h.to_string());
        }
        r
    }

    #[test]
    fn throttles_are_recognised_by_status_header_or_body() {
        assert!(is_throttle(&response(429, None, "")));
        assert!(is_throttle(&response(
            400,
            None,
            r#"{"__type":"TooManyRequestsException","Message":"Rate exceeded"}"#
        )));
        assert!(is_throttle(&response(
            400,
            Some("ThrottlingException:http://internal.amazon.com/"),
            "{}"
        )));
        assert!(is_throttle(&response(
            503,
            None,
            "<Error><Code>SlowDown</Code></Error>"
        )));
        assert!(!is_throttle(&response(
            400,
            None,
            r#"{"__type":"TextSizeLimitExceededException"}"#
        )));
        assert!(!is_throttle(&response(500, None, "internal error")));
        assert!(!is_throttle(&response(
            200,
            None,
            "TooManyRequestsException"
        )));
    }
}
