//! Errors as `application/problem+json` (RFC 9457) with a stable `type` per kind.

use aggregator_core::error::{Error, ShortLine};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://order-aggregator.dev/problems/";

/// One offending field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldProblem {
    /// Where in the request: `items[0].quantity`, `page`, `Idempotency-Key`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A short item of a refused order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShortItem {
    /// The item as asked (SKU or product id).
    pub item: String,
    /// Units asked for.
    pub requested: u64,
    /// Units that could be sold now.
    pub available: u64,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, stable summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, for people.
    pub detail: String,
    /// Always `false`: clients of the original system read it.
    pub success: bool,
    /// The offending fields, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// The short items, for `insufficient-stock`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub short: Vec<ShortItem>,
}

/// An error answer: a [`Problem`] and, for 429 and 503, how long to wait.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    problem: Box<Problem>,
    retry_after_seconds: Option<u64>,
    /// A refusal for load (see [`super::admission`]): counted, not logged as a failure.
    shed: bool,
}

impl ApiError {
    /// A problem of kind `slug` (the end of its `type` URI) with `title` and `detail`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            problem: Box::new(Problem {
                kind: format!("{PROBLEM_BASE}{slug}"),
                title: title.to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                success: false,
                errors: Vec::new(),
                short: Vec::new(),
            }),
            retry_after_seconds: None,
            shed: false,
        }
    }

    /// A `400 validation` problem naming one field.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = field.into();
        let reason = reason.into();
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            "validation",
            "The request is not valid",
            format!("{field}: {reason}"),
        );
        error.problem.errors.push(FieldProblem { field, reason });
        error
    }

    /// A `404 not-found` problem.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// A `401 unauthorized` problem.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "An API key is needed",
            detail,
        )
    }

    /// A `403 forbidden` problem.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed with this API key",
            detail,
        )
    }

    /// Adds an offending field.
    pub fn with_field(mut self, field: impl Into<String>, reason: impl Into<String>) -> Self {
        self.problem.errors.push(FieldProblem {
            field: field.into(),
            reason: reason.into(),
        });
        self
    }

    /// Marks this as a refusal for load: counted with its status, not logged as a
    /// failure.
    pub(crate) fn for_load(mut self) -> Self {
        self.shed = true;
        self
    }

    /// Adds how many seconds to wait before trying again (`Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds.max(1));
        self
    }

    /// The same problem with field names changed (`from` -> `to`, also where `from` is
    /// followed by `.` or `[`), for
    /// endpoints whose body names fields differently from the core.
    pub fn rename_fields(mut self, renames: &[(&str, &str)]) -> Self {
        for error in &mut self.problem.errors {
            for (from, to) in renames {
                let Some(rest) = error.field.strip_prefix(from) else {
                    continue;
                };
                if rest.is_empty() || rest.starts_with('.') || rest.starts_with('[') {
                    error.field = format!("{to}{rest}");
                    break;
                }
            }
        }
        if let [only] = self.problem.errors.as_slice() {
            self.problem.detail = format!("{}: {}", only.field, only.reason);
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem body.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

fn short_items(short: &[ShortLine]) -> Vec<ShortItem> {
    short
        .iter()
        .map(|line| ShortItem {
            item: line.item.clone(),
            requested: u64::from(line.requested),
            available: line.available,
        })
        .collect()
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound { what, id } => Self::not_found(format!("no {what} {id}")),
            Error::Invalid { field, reason } => Self::invalid(field, reason),
            Error::InsufficientStock { short } => {
                let names: Vec<String> = short
                    .iter()
                    .map(|l| {
                        format!(
                            "{} (requested {}, available {})",
                            l.item, l.requested, l.available
                        )
                    })
                    .collect();
                let mut problem = Self::new(
                    StatusCode::CONFLICT,
                    "insufficient-stock",
                    "Not enough stock",
                    format!("not enough stock for {}", names.join(", ")),
                );
                problem.problem.short = short_items(&short);
                problem
            }
            Error::PriceMismatch {
                field,
                item,
                quoted,
                catalog,
            } => {
                let listed: Vec<String> = catalog.iter().map(|price| price.decimal()).collect();
                Self::new(
                    StatusCode::CONFLICT,
                    "price-mismatch",
                    "The quoted price is not the catalog price",
                    format!(
                        "{field}: {quoted} is not a current price of {item} (catalog: {}); prices always come from the catalog",
                        listed.join(", ")
                    ),
                )
                .with_field(field, format!("catalog price: {}", listed.join(", ")))
            }
            Error::IdempotencyMismatch { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused with another request",
                "this Idempotency-Key was used with a different request; use a new key",
            ),
            Error::Conflict { detail } => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "The resource is not in a state that allows this",
                detail,
            ),
            Error::Unavailable {
                component,
                retryable,
                detail,
            } => {
                tracing::error!(%component, retryable, %detail, "dependency unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "A service we depend on is unavailable",
                    format!("{component} is unavailable; try again shortly"),
                )
                .retry_after(1)
            }
            other => {
                tracing::error!(error = %other, "unexpected error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "something went wrong on our side; it has been logged",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_seconds
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        if self.shed {
            response.extensions_mut().insert(super::admission::Shed);
        }
        response
    }
}
