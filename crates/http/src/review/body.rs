//! The review routes' request bodies, each field checked by name: a missing or mistyped field
//! is a 400 that names it.

use serde_json::{Map, Value};

use crate::error::{ApiError, Code};

pub(super) fn object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(format!("the body is not JSON: {e}"))),
    }
}

pub(super) fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::BadRequest, message)
}

/// A required, non-empty string field of at most `max` characters.
pub(super) fn required(
    m: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<String, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Err(bad(format!("\"{field}\" is required"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(bad(format!("\"{field}\" must not be empty")))
        }
        Some(Value::String(s)) if s.chars().count() > max => {
            Err(bad(format!("\"{field}\" is longer than {max} characters")))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(format!("\"{field}\" must be a string"))),
    }
}

/// An optional string field (empty when absent).
pub(super) fn optional(
    m: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<String, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(_) => required(m, field, max).or_else(|e| match m.get(field) {
            Some(Value::String(s)) if s.trim().is_empty() => Ok(String::new()),
            _ => Err(e),
        }),
    }
}
