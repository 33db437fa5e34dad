//! `HttpVendorClient`: a vendor's HTTP API behind the `VendorClient` trait.

use std::sync::Arc;

use aggregator_core::clock::{Clock, SystemClock};
use aggregator_core::domain::VendorId;
use aggregator_core::error::{Error, Result};
use aggregator_core::resilience::VendorBudget;
use aggregator_core::resilience::{Backoff, BreakerState, CircuitBreaker};
use aggregator_core::traits::{
    Cache, CancelOutcome, StockPage, VendorClient, VendorInfo, VendorOrder, VendorOrderOutcome,
};
use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Client, RequestBuilder, StatusCode, Url};

use super::config::HttpVendorConfig;
use super::wire::{self, Refusal, WireFault};

/// The refusal code of a vendor for an order under a key that was cancelled before.
const KEY_CANCELLED: &str = "order_cancelled";

/// A vendor's answer, read whole.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Why a fetch got no answer to judge.
enum FetchError {
    /// Network trouble or a timeout: worth another try.
    Transport(String),
    /// The body broke the size limit.
    TooLarge,
}

/// How a call's answer was judged, when it was not what the caller wanted.
enum Judged {
    /// The vendor answered sensibly but with an error; no retry.
    Final(Error),
    /// The answer breaks the protocol (bad JSON, bad values, missing headers).
    Malformed(WireFault),
}

/// A [`VendorClient`] over HTTP for vendors that speak the mock vendors' API.
///
/// Every call has a connect and a request timeout; transport failures, timeouts, `5xx`
/// and `429` answers are tried again with exponential backoff and jitter (every call is
/// idempotent: reads, and writes under an idempotency key); a circuit breaker per client
/// opens after a run of failures so a dead vendor costs nothing until its probe.
/// Every request first takes its place in the vendor's budget ([`HttpVendorConfig::limits`]:
/// requests a second and at once, shared by every process when the budget is counted
/// through a cache), and a `429` or `503` with `Retry-After` pauses every request to the
/// vendor for that long (up to five minutes).
/// Anything malformed the vendor sends is an error naming the vendor, the request and
/// the field, and never becomes a [`StockPage`].
pub struct HttpVendorClient {
    config: HttpVendorConfig,
    base: Url,
    http: Client,
    breaker: CircuitBreaker,
    budget: VendorBudget,
}

/// The longest `Retry-After` honoured; a vendor asking for more is asked again then.
const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

impl std::fmt::Debug for HttpVendorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpVendorClient")
            .field("config", &self.config)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl HttpVendorClient {
    /// A client for `config`'s vendor, timing its breaker by the system clock.
    pub fn new(config: HttpVendorConfig) -> Result<Self> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client whose breaker reads time from `clock`.
    pub fn with_clock(config: HttpVendorConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let base = Url::parse(config.base_url.expose())
            .map_err(|e| Error::invalid("baseUrl", format!("{}: {e}", config.base_url)))?;
        if base.cannot_be_a_base() {
            return Err(Error::invalid(
                "baseUrl",
                "must be an http(s) URL with a host",
            ));
        }
        let http = Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Error::permanent(format!("vendor {}", config.vendor), e.to_string()))?;
        let breaker = CircuitBreaker::new(config.breaker, clock);
        let budget = Self::budget(&config, None)?;
        Ok(Self {
            config,
            base,
            http,
            breaker,
            budget,
        })
    }

    /// Counts this vendor's budget through `cache`, shared by every process using it
    /// (while the cache is down, each process counts on its own).
    pub fn sharing_budget_through(mut self, cache: Arc<dyn Cache>) -> Result<Self> {
        self.budget = Self::budget(&self.config, Some(cache))?;
        Ok(self)
    }

    fn budget(config: &HttpVendorConfig, cache: Option<Arc<dyn Cache>>) -> Result<VendorBudget> {
        // A request holds its place at most its timeout (and a little).
        let hold = config.request_timeout + std::time::Duration::from_secs(5);
        VendorBudget::new(config.vendor.clone(), config.limits, cache, hold)
    }

    /// The config this client runs with.
    pub fn config(&self) -> &HttpVendorConfig {
        &self.config
    }

    fn component(&self) -> String {
        format!("vendor {}", self.config.vendor)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends the request `build` makes, trying again on transport failures and `5xx`
    /// or `429` answers, and hands any other answer to `judge`. A malformed answer is a
    /// retryable error when `malformed_retryable` (writes, whose effect is unknown then).
    async fn call<T>(
        &self,
        op: &str,
        malformed_retryable: bool,
        build: impl Fn(&Client) -> RequestBuilder,
        judge: impl Fn(Answer) -> std::result::Result<T, Judged>,
    ) -> Result<T> {
        let backoff: Backoff = self.config.backoff;
        let mut last_failure = String::new();
        let mut asked_to_wait: Option<std::time::Duration> = None;
        for attempt in 1..=backoff.attempts() {
            if attempt > 1 {
                let mut delay = backoff.delay(attempt - 1, Backoff::random_jitter());
                if let Some(asked) = asked_to_wait.take() {
                    delay = delay.max(asked);
                }
                tracing::debug!(vendor = %self.config.vendor, op, attempt, ?delay, reason = %last_failure, "retrying vendor call");
                tokio::time::sleep(delay).await;
            }
            // Within what the vendor allows (a wait that spends none of the tries).
            let _place = self.budget.acquire(self.config.budget_wait).await?;
            let permit = match self.breaker.acquire_within(self.config.breaker_wait).await {
                Ok(permit) => permit,
                Err(open) => {
                    let mut detail = format!(
                        "{op}: circuit breaker open for {:.1} s more after repeated failures \
                         (waited up to {:.1} s)",
                        open.retry_after.as_secs_f64(),
                        self.config.breaker_wait.as_secs_f64()
                    );
                    if attempt > 1 {
                        detail.push_str(&format!(" (last: {last_failure})"));
                    }
                    return Err(Error::transient(self.component(), detail));
                }
            };
            let answer = match self.fetch(build(&self.http)).await {
                Ok(answer) => answer,
                Err(FetchError::Transport(reason)) => {
                    permit.failure();
                    last_failure = reason;
                    continue;
                }
                Err(FetchError::TooLarge) => {
                    permit.failure();
                    let fault = WireFault::new(
                        "body",
                        format!("larger than {} bytes", self.config.max_body_bytes),
                    );
                    return Err(self.malformed(op, &fault, malformed_retryable));
                }
            };
            let status = answer.status;
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                permit.failure();
                last_failure = format!("HTTP {status}: {}", wire::error_summary(&answer.body));
                if matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) && let Some(asked) = retry_after(&answer.headers)
                {
                    let asked = asked.min(MAX_RETRY_AFTER);
                    self.budget.pause(asked).await;
                    if asked > self.config.budget_wait {
                        return Err(Error::transient(
                            self.component(),
                            format!(
                                "{op}: asked us to wait {} s ({last_failure})",
                                asked.as_secs()
                            ),
                        ));
                    }
                    asked_to_wait = Some(asked);
                }
                continue;
            }
            return match judge(answer) {
                Ok(value) => {
                    permit.success();
                    Ok(value)
                }
                Err(Judged::Final(error)) => {
                    permit.success();
                    Err(error)
                }
                Err(Judged::Malformed(fault)) => {
                    permit.failure();
                    tracing::warn!(vendor = %self.config.vendor, op, %fault, "vendor sent a malformed answer");
                    Err(self.malformed(op, &fault, malformed_retryable))
                }
            };
        }
        Err(Error::transient(
            self.component(),
            format!(
                "{op}: failed {} time(s): {last_failure}",
                backoff.attempts()
            ),
        ))
    }

    fn malformed(&self, op: &str, fault: &WireFault, retryable: bool) -> Error {
        let detail = format!("{op}: malformed answer: {fault}");
        if retryable {
            Error::transient(self.component(), detail)
        } else {
            Error::permanent(self.component(), detail)
        }
    }

    /// An error for an answer the vendor gave on purpose but we cannot use.
    fn refused(&self, op: &str, answer: &Answer) -> Judged {
        Judged::Final(Error::permanent(
            self.component(),
            format!(
                "{op}: HTTP {}: {}",
                answer.status,
                wire::error_summary(&answer.body)
            ),
        ))
    }

    async fn fetch(&self, request: RequestBuilder) -> std::result::Result<Answer, FetchError> {
        let describe = |error: reqwest::Error| {
            let kind = if error.is_timeout() {
                format!(
                    "timed out (connect {} ms, request {} ms)",
                    self.config.connect_timeout.as_millis(),
                    self.config.request_timeout.as_millis()
                )
            } else if error.is_connect() {
                "cannot connect".to_owned()
            } else {
                "transport error".to_owned()
            };
            let error = error.without_url();
            let mut detail = format!("{kind}: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                detail.push_str(": ");
                detail.push_str(&cause.to_string());
                source = cause.source();
            }
            if let Some((cut, _)) = detail.char_indices().nth(500) {
                detail.truncate(cut);
            }
            FetchError::Transport(detail)
        };
        let mut response = request.send().await.map_err(describe)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > self.config.max_body_bytes {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// How long a `Retry-After` header asks to wait: whole seconds or an HTTP date; `None`
/// when it is missing or neither.
fn retry_after(headers: &HeaderMap) -> Option<std::time::Duration> {
    let text = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(std::time::Duration::from_secs(seconds));
    }
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc2822).ok()?;
    let left = at - time::OffsetDateTime::now_utc();
    Some(std::time::Duration::try_from(left).unwrap_or_default())
}

/// Header `name` of `answer` as text; `None` when it is missing.
fn header<'a>(answer: &'a Answer, name: &str) -> std::result::Result<Option<&'a str>, Judged> {
    answer
        .headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| Judged::Malformed(WireFault::new(name, "header is not text")))
        })
        .transpose()
}

#[async_trait]
impl VendorClient for HttpVendorClient {
    fn vendor(&self) -> &VendorId {
        &self.config.vendor
    }

    fn breaker_state(&self) -> Option<BreakerState> {
        Some(self.breaker.state())
    }

    async fn health(&self) -> Result<()> {
        let op = "GET /health";
        self.call(
            op,
            false,
            |http| http.get(self.url(&["health"])),
            |answer| {
                if answer.status.is_success() {
                    Ok(())
                } else {
                    Err(self.refused(op, &answer))
                }
            },
        )
        .await
    }

    async fn info(&self) -> Result<VendorInfo> {
        let op = "GET /info";
        self.call(
            op,
            false,
            |http| http.get(self.url(&["info"])),
            |answer| {
                if !answer.status.is_success() {
                    return Err(self.refused(op, &answer));
                }
                wire::info(&answer.body).map_err(Judged::Malformed)
            },
        )
        .await
    }

    async fn stock_page(&self, page: u32, limit: u32) -> Result<StockPage> {
        if page == 0 {
            return Err(Error::invalid("page", "pages are numbered from 1"));
        }
        if limit == 0 {
            return Err(Error::invalid("limit", "must be at least 1"));
        }
        let op = format!("GET /stock?page={page}&limit={limit}");
        self.call(
            &op,
            false,
            |http| {
                http.get(self.url(&["stock"]))
                    .query(&[("page", page), ("limit", limit)])
            },
            |answer| {
                if answer.status != StatusCode::OK {
                    return Err(self.refused(&op, &answer));
                }
                wire::stock_page(
                    page,
                    limit,
                    header(&answer, "x-total-count")?,
                    header(&answer, "x-as-of")?,
                    &answer.body,
                )
                .map_err(Judged::Malformed)
            },
        )
        .await
    }

    async fn place_order(&self, order: &VendorOrder) -> Result<VendorOrderOutcome> {
        let body = serde_json::to_vec(order)
            .map_err(|e| Error::invalid("order", format!("cannot be encoded: {e}")))?;
        let op = format!("POST /orders (key {})", order.idempotency_key);
        self.call(
            &op,
            true,
            |http| {
                http.post(self.url(&["orders"]))
                    .header("idempotency-key", &order.idempotency_key)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            },
            |answer| match answer.status {
                StatusCode::OK | StatusCode::CREATED => {
                    let (vendor_order_id, confirmed_at) =
                        wire::accepted_order(&answer.body).map_err(Judged::Malformed)?;
                    Ok(VendorOrderOutcome::Accepted {
                        vendor_order_id,
                        confirmed_at,
                    })
                }
                StatusCode::CONFLICT => match wire::refusal(&answer.body) {
                    Ok(Refusal::Short(short)) => Ok(VendorOrderOutcome::Refused { short }),
                    Ok(Refusal::Other { code, .. }) if code == KEY_CANCELLED => {
                        Ok(VendorOrderOutcome::KeyCancelled)
                    }
                    Ok(Refusal::Other { code, detail }) => Err(Judged::Final(Error::permanent(
                        self.component(),
                        format!("{op}: refused: {code}: {detail}"),
                    ))),
                    Err(fault) => Err(Judged::Malformed(fault)),
                },
                _ => Err(self.refused(&op, &answer)),
            },
        )
        .await
    }

    async fn cancel_order(&self, idempotency_key: &str) -> Result<CancelOutcome> {
        let op = format!("POST /orders/{idempotency_key}/cancel");
        self.call(
            &op,
            true,
            |http| http.post(self.url(&["orders", idempotency_key, "cancel"])),
            |answer| {
                if answer.status == StatusCode::NOT_FOUND {
                    return Ok(CancelOutcome::UnknownKey);
                }
                // "Already cancelled", said as a refusal, is done all the same.
                if answer.status == StatusCode::CONFLICT
                    && let Ok(Refusal::Other { code, .. }) = wire::refusal(&answer.body)
                    && (code == KEY_CANCELLED || code == "already_cancelled")
                {
                    return Ok(CancelOutcome::Cancelled);
                }
                if !answer.status.is_success() {
                    // A cancellation is never abandoned: any refusal is asked again.
                    return Err(Judged::Final(Error::transient(
                        self.component(),
                        format!(
                            "{op}: cancellation refused: HTTP {}: {}",
                            answer.status,
                            wire::error_summary(&answer.body)
                        ),
                    )));
                }
                #[derive(serde::Deserialize)]
                struct Cancelled {
                    status: String,
                }
                let cancelled: Cancelled = wire::json(&answer.body).map_err(Judged::Malformed)?;
                if cancelled.status != "cancelled" {
                    return Err(Judged::Malformed(WireFault::new(
                        "status",
                        format!("{:?} where \"cancelled\" was expected", cancelled.status),
                    )));
                }
                Ok(CancelOutcome::Cancelled)
            },
        )
        .await
    }
}
