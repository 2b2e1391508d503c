//! Request bodies read and checked before any route looks at them: JSON within the size limit,
//! or an image of the type it says.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};

use crate::error::{ApiError, Code};

/// The body, once it is known to be JSON within the size limit.
pub(crate) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Code::TooLarge,
                "the body is over CHECK_MAX_BODY_BYTES; send fewer or shorter messages",
            )
        } else {
            ApiError::new(Code::BadRequest, format!("the body could not be read: {e}"))
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!("send Content-Type: application/json (got {content_type:?})"),
        ));
    }
    Ok(body)
}
