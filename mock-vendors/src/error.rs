//! The JSON error answers of a mock vendor.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answer: a status, a stable `error` code, a human `detail` and, where it
/// helps, more fields (the short SKUs of a refused order, the offending field).
#[derive(Debug)]
pub(crate) struct VendorError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    extra: Option<(&'static str, Value)>,
}

impl VendorError {
    pub(crate) fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extra: None,
        }
    }

    /// A `400` naming the field that is wrong.
    pub(crate) fn bad_field(field: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail).with("field", json!(field))
    }

    pub(crate) fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some((key, value));
        self
    }
}

impl IntoResponse for VendorError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "detail": self.detail });
        if let (Some((key, value)), Some(map)) = (self.extra, body.as_object_mut()) {
            map.insert(key.to_owned(), value);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for VendorError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(rejection.status(), "invalid_body", rejection.body_text())
    }
}

impl From<QueryRejection> for VendorError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    }
}
