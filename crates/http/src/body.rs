//! Request bodies read and checked before any route looks at them: JSON within the size limit,
//! or an image of the type it says.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use moderation_core::media::picture::sniff;
use moderation_core::model::Format;

use crate::error::{ApiError, Code};

/// The request's `Content-Type`, empty when there is none.
fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The media type without its parameters (`application/json; charset=utf-8` → `application/json`).
fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// The body as read; over the route's limit it is 413 with `too_large`.
fn read(body: Result<Bytes, BytesRejection>, too_large: &str) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(Code::TooLarge, too_large)
        } else {
            ApiError::new(Code::BadRequest, format!("the body could not be read: {e}"))
        }
    })
}

/// The body, once it is known to be JSON within the size limit.
pub(crate) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let body = read(
        body,
        "the body is over CHECK_MAX_BODY_BYTES; send fewer or shorter messages",
    )?;
    let content_type = content_type(headers);
    if !essence(content_type).eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!("send Content-Type: application/json (got {content_type:?})"),
        ));
    }
    Ok(body)
}

/// The formats a `Content-Type` may name (`image/jpg` is a common misspelling of jpeg).
fn declared_format(content_type: &str) -> Option<Format> {
    match essence(content_type).to_ascii_lowercase().as_str() {
        "image/png" => Some(Format::Png),
        "image/jpeg" | "image/jpg" => Some(Format::Jpeg),
        "image/gif" => Some(Format::Gif),
        "image/webp" => Some(Format::Webp),
        _ => None,
    }
}

/// The body, once it is an image of the type it says, within `MAX_IMAGE_BYTES`.
pub(crate) fn image_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let content_type = content_type(headers);
    let Some(declared) = declared_format(content_type) else {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!(
                "send the image's bytes with Content-Type image/png, image/jpeg, image/gif or \
                 image/webp (got {content_type:?})"
            ),
        ));
    };
    let body = read(body, "the image is over MAX_IMAGE_BYTES")?;
    let actual = sniff(&body).map_err(|why| ApiError::new(Code::BadRequest, why))?;
    if actual != declared {
        return Err(ApiError::new(
            Code::BadRequest,
            format!(
                "Content-Type says {} but the bytes are {}",
                declared.as_str(),
                actual.as_str()
            ),
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_name_the_four_formats() {
        assert_eq!(declared_format("image/PNG"), Some(Format::Png));
        assert_eq!(declared_format("image/jpg; q=1"), Some(Format::Jpeg));
        assert_eq!(declared_format("image/svg+xml"), None);
        assert_eq!(declared_format("application/json"), None);
    }
}
