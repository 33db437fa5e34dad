//! Extractors that turn every bad request into a clear problem answer.

use std::collections::HashMap;

use aggregator_core::domain::{CustomerId, IdempotencyKey};
use aggregator_core::service::Scope;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use super::state::ApiState;

/// A JSON body, required; parsed strictly (unknown fields refused), with the path of
/// the first bad value in the problem.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

/// A JSON body that may be left out (an empty body or `null` reads as the default).
#[derive(Debug)]
pub(crate) struct OptionalJson<T>(pub(crate) T);

fn body_problem(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            status,
            "payload-too-large",
            "The request body is too large",
            rejection.body_text(),
        );
    }
    ApiError::new(
        status,
        "bad-body",
        "The request body could not be read",
        rejection.body_text(),
    )
}

fn is_json(parts_content_type: Option<&str>) -> bool {
    let Some(value) = parts_content_type else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as `T`, naming the failing field.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = parsed.map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "The body is not valid JSON",
                inner.to_string(),
            );
        }
        let message = inner.to_string();
        // serde names a missing or unknown field only in its message; put it in the path.
        let named = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|prefix| message.strip_prefix(prefix))
            .and_then(|rest| rest.split('`').next());
        let field = match (path.as_str(), named) {
            (".", Some(name)) => name.to_owned(),
            (_, Some(name)) => format!("{path}.{name}"),
            (".", None) => "body".to_owned(),
            (_, None) => path,
        };
        ApiError::invalid(field, message)
    })?;
    deserializer.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "The body is not valid JSON",
            e.to_string(),
        )
    })?;
    Ok(value)
}

async fn read_body(req: Request, state: &ApiState) -> Result<Option<Bytes>, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(body_problem)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if !is_json(content_type.as_deref()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The body must be JSON",
            "send the body with Content-Type: application/json",
        ));
    }
    Ok(Some(bytes))
}

/// Every body the API takes is a JSON object (an optional one may be `null`). serde
/// would also fill a struct from an array, by position (`[null]` as `{"reason": null}`),
/// so anything but an object is refused before it is parsed; text that is not JSON at
/// all is left to the parser, which says where it breaks.
fn object_only(bytes: &[u8], null_allowed: bool) -> Result<(), ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'n') if null_allowed => Ok(()),
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            Err(ApiError::invalid("body", "must be a JSON object ({...})"))
        }
        _ => Ok(()),
    }
}

impl<T: DeserializeOwned> FromRequest<ApiState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        match read_body(req, state).await? {
            Some(bytes) => {
                object_only(&bytes, false)?;
                Ok(Self(parse_json(&bytes)?))
            }
            None => Err(ApiError::invalid("body", "a JSON body is required")),
        }
    }
}

impl<T: DeserializeOwned + Default> FromRequest<ApiState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        match read_body(req, state).await? {
            Some(bytes) => {
                object_only(&bytes, true)?;
                Ok(Self(parse_json::<Option<T>>(&bytes)?.unwrap_or_default()))
            }
            None => Ok(Self(T::default())),
        }
    }
}

/// Who is calling, as the authentication middleware found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No keys are configured (loopback only): full access.
    Open,
    /// An admin key.
    Admin,
    /// A client key acting for one customer.
    Client(CustomerId),
}

impl Caller {
    /// Whose orders and holds this caller may see.
    pub(crate) fn scope(&self) -> Scope {
        match self {
            Self::Open | Self::Admin => Scope::All,
            Self::Client(customer) => Scope::Customer(customer.clone()),
        }
    }

    /// The customer an order or hold is for: the key's own for a client (a different
    /// `customerId` is refused), the body's for everyone else (then required).
    pub(crate) fn customer(&self, from_body: Option<&str>) -> Result<CustomerId, ApiError> {
        match (self, from_body) {
            (Self::Client(own), None) => Ok(own.clone()),
            (Self::Client(own), Some(given)) if given == own.as_str() => Ok(own.clone()),
            (Self::Client(_), Some(_)) => Err(ApiError::forbidden(
                "customerId must be this API key's customer (or left out)",
            )),
            (_, Some(given)) => Ok(CustomerId::new(given)?),
            (_, None) => Err(ApiError::invalid("customerId", "is required")),
        }
    }

    /// Refuses anyone but an admin (or open access).
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Open | Self::Admin => Ok(()),
            Self::Client(_) => Err(ApiError::forbidden("this endpoint needs an admin key")),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("no API key was checked for this request"))
    }
}

/// The `Idempotency-Key` header, if sent (refused if malformed).
#[derive(Debug)]
pub(crate) struct IdempotencyHeader(pub(crate) Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let text = value
            .to_str()
            .map_err(|_| ApiError::invalid("Idempotency-Key", "must be printable ASCII"))?;
        IdempotencyKey::new(text)
            .map(|key| Self(Some(key)))
            .map_err(|e| ApiError::invalid("Idempotency-Key", e.to_string()))
    }
}

/// `page`, `limit` and other query parameters, checked.
#[derive(Debug)]
pub(crate) struct ListQuery {
    pub(crate) page: u64,
    pub(crate) limit: u32,
    pub(crate) params: HashMap<String, String>,
}

/// The most pages a list may be asked for (keeps offsets far from overflow).
const MAX_PAGE: u64 = 1_000_000;

impl FromRequestParts<ApiState> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let Query(params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        let config = state.config();
        let page = match params.get("page") {
            None => 1,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "page",
                        format!("must be a whole number from 1 to {MAX_PAGE}"),
                    )
                })?,
        };
        let limit = match params.get("limit") {
            None => config.default_page_size,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=config.max_page_size).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "limit",
                        format!("must be a whole number from 1 to {}", config.max_page_size),
                    )
                })?,
        };
        Ok(Self {
            page,
            limit,
            params,
        })
    }
}

impl ListQuery {
    pub(crate) fn offset(&self) -> u64 {
        (self.page - 1) * u64::from(self.limit)
    }
}
