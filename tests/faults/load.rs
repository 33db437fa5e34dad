//! The clients of a case: each places one-unit orders under Idempotency-Keys, retrying
//! a request with the same key until it gets a definite answer, cancels every fifth
//! order shortly after placing it, and now and then holds a unit and turns the hold
//! into an order (or lets it go). A prober meanwhile tries what must need a key.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aggregator_core::domain::OrderId;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::cluster::{PRODUCTS, World};

/// What the clients were told, and what the prober got.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    /// Orders the API answered with success.
    pub(crate) told_success: Vec<Told>,
    /// Orders whose cancel the API answered with success.
    pub(crate) cancelled: Vec<OrderId>,
    /// Order attempts, holds included.
    pub(crate) attempts: u64,
    /// Attempts refused for stock (409).
    pub(crate) refused: u64,
    /// Attempts that never got a definite answer within the client's patience.
    pub(crate) unanswered: u64,
    /// Answers 2xx to requests without a valid key, or for another customer's order.
    pub(crate) unauthenticated_2xx: u64,
    /// Requests the prober made.
    pub(crate) probes: u64,
    /// When each order attempt got its definite answer (success or refusal).
    pub(crate) answered_at: Vec<Instant>,
}

/// An order a client was told succeeded.
#[derive(Debug, Clone)]
pub(crate) struct Told {
    /// The order.
    pub(crate) id: OrderId,
    /// Whose.
    pub(crate) customer: String,
    /// How many units.
    pub(crate) units: i64,
}

/// The load while it runs.
pub(crate) struct Running {
    ledger: Arc<Mutex<Ledger>>,
    tasks: JoinSet<()>,
}

/// What a fault injection may read of the load: the orders told success so far.
#[derive(Clone)]
pub(crate) struct LoadView {
    ledger: Arc<Mutex<Ledger>>,
}

impl LoadView {
    /// Order attempts answered per second between `from` and `to`.
    pub(crate) fn answers_per_second(&self, from: Instant, to: Instant) -> f64 {
        let ledger = lock(&self.ledger);
        let answered = ledger
            .answered_at
            .iter()
            .filter(|at| **at >= from && **at < to)
            .count();
        let seconds = to.saturating_duration_since(from).as_secs_f64();
        if seconds > 0.0 {
            answered as f64 / seconds
        } else {
            0.0
        }
    }

    /// Some orders already told success (for duplicate deliveries).
    pub(crate) fn recent_orders(&self, at_most: usize) -> Vec<OrderId> {
        let ledger = lock(&self.ledger);
        ledger
            .told_success
            .iter()
            .rev()
            .take(at_most)
            .map(|told| told.id)
            .collect()
    }
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Running {
    /// A view for fault injections.
    pub(crate) fn view(&self) -> LoadView {
        LoadView {
            ledger: Arc::clone(&self.ledger),
        }
    }

    /// Waits for every client to finish its last request.
    pub(crate) async fn finish(mut self) -> Ledger {
        while self.tasks.join_next().await.is_some() {}
        lock(&self.ledger).clone()
    }
}

/// One client's view of the API.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    /// Every API; requests go to `bases[current]`, and to the next one after a
    /// transport error (as behind a load balancer that drops a dead server).
    bases: Arc<Vec<String>>,
    current: Arc<std::sync::atomic::AtomicUsize>,
    customer: String,
    key: String,
}

/// A definite answer: its status and body.
type Answer = (StatusCode, Value);

impl Client {
    /// Sends the request until it gets a definite answer (anything but a transport
    /// error, 5xx, 429 or "request in progress"), within `patience`, under one
    /// Idempotency-Key.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        patience: Duration,
    ) -> Option<Answer> {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            let at = self.current.load(std::sync::atomic::Ordering::Relaxed);
            let base = &self.bases[at % self.bases.len()];
            let mut request = self
                .http
                .request(method.clone(), format!("{base}{path}"))
                .bearer_auth(&self.key);
            if let Some(key) = idempotency_key {
                request = request.header("idempotency-key", key);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let sent = request.send().await;
            if sent.is_err() {
                self.current
                    .store(at.wrapping_add(1), std::sync::atomic::Ordering::Relaxed);
            }
            if let Ok(response) = sent {
                let status = response.status();
                if let Ok(body) = response.json::<Value>().await {
                    let in_progress = body["type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("request-in-progress"));
                    let retry = status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || in_progress;
                    if !retry {
                        return Some((status, body));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    }
}

/// How long a client keeps retrying one request.
const PATIENCE: Duration = Duration::from_secs(30);

/// Starts the clients and the prober for `run_for`.
pub(crate) fn start(world: &World, run_for: Duration) -> Running {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut tasks = JoinSet::new();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let until = Instant::now() + run_for;
    for (n, (customer, key)) in world.clients.iter().enumerate() {
        let client = Client {
            http: http.clone(),
            bases: Arc::new(world.api_bases.clone()),
            current: Arc::new(std::sync::atomic::AtomicUsize::new(n)),
            customer: customer.clone(),
            key: key.clone(),
        };
        let ledger = Arc::clone(&ledger);
        let case = world.name.clone();
        tasks.spawn(async move { shop(client, n, until, case, ledger).await });
    }
    let others: Vec<(String, String)> = world.clients.clone();
    let (http, base, ledger_for_probe) = (http, world.api_base.clone(), Arc::clone(&ledger));
    tasks.spawn(async move { probe(http, base, others, until, ledger_for_probe).await });
    Running { ledger, tasks }
}

fn order_body(customer: &str, product: &str) -> Value {
    json!({
        "customerId": customer,
        "customerEmail": "faults@example.com",
        "items": [{"sku": product, "quantity": 1}],
        "shippingAddress": {"street": "1 Main St", "city": "Boston", "zipCode": "02101", "country": "USA"},
        "paymentMethod": "credit_card"
    })
}

async fn shop(client: Client, n: usize, until: Instant, case: String, ledger: Arc<Mutex<Ledger>>) {
    let mut attempt = 0_u64;
    while Instant::now() < until {
        attempt += 1;
        let product = PRODUCTS[(attempt as usize + n) % PRODUCTS.len()].0;
        let key = format!("{case}-{}-{attempt}", client.customer);
        let placed = if attempt.is_multiple_of(6) {
            hold_then_order(&client, product, &key).await
        } else {
            client
                .send(
                    Method::POST,
                    "/api/orders",
                    Some(&order_body(&client.customer, product)),
                    Some(&key),
                    PATIENCE,
                )
                .await
        };
        let id = {
            let mut ledger = lock(&ledger);
            ledger.attempts += 1;
            if placed.is_some() {
                ledger.answered_at.push(Instant::now());
            }
            match &placed {
                Some((status, body)) if status.is_success() => {
                    let id = body["orderId"]
                        .as_str()
                        .and_then(|id| id.parse::<OrderId>().ok());
                    if let Some(id) = id {
                        ledger.told_success.push(Told {
                            id,
                            customer: client.customer.clone(),
                            units: 1,
                        });
                    }
                    id
                }
                Some((StatusCode::CONFLICT, _)) => {
                    ledger.refused += 1;
                    None
                }
                Some(_) => None,
                None => {
                    ledger.unanswered += 1;
                    None
                }
            }
        };
        if let Some(id) = id.filter(|_| attempt.is_multiple_of(5)) {
            tokio::time::sleep(Duration::from_millis(attempt % 4 * 100)).await;
            let cancelled = client
                .send(
                    Method::POST,
                    &format!("/api/orders/{id}/cancel"),
                    Some(&json!({"reason": "changed my mind"})),
                    Some(&format!("{key}-cancel")),
                    PATIENCE,
                )
                .await;
            if cancelled.is_some_and(|(status, _)| status.is_success()) {
                lock(&ledger).cancelled.push(id);
            }
        }
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
}

/// Holds one unit, then turns the hold into an order (two in three times) or releases
/// it; answers like a placement.
async fn hold_then_order(client: &Client, product: &str, key: &str) -> Option<Answer> {
    let hold = json!({"customerId": client.customer, "items": [{"sku": product, "quantity": 1}], "ttlSeconds": 5});
    let (status, held) = client
        .send(Method::POST, "/api/holds", Some(&hold), Some(key), PATIENCE)
        .await?;
    if !status.is_success() {
        return Some((status, held));
    }
    let Some(id) = held["data"]["hold"]["id"].as_str().map(str::to_owned) else {
        // A success without a hold id: not a definite answer this client can act on.
        return Some((StatusCode::INTERNAL_SERVER_ERROR, held));
    };
    if key.ends_with('0') || key.ends_with('3') || key.ends_with('6') {
        client
            .send(
                Method::DELETE,
                &format!("/api/holds/{id}"),
                None,
                None,
                PATIENCE,
            )
            .await;
        return Some((StatusCode::NO_CONTENT, Value::Null));
    }
    let (status, converted) = client
        .send(
            Method::POST,
            &format!("/api/holds/{id}/order"),
            Some(&json!({})),
            Some(&format!("{key}-order")),
            PATIENCE,
        )
        .await?;
    // Answered like a placement: the order the hold became.
    let order = &converted["data"]["hold"]["orderId"];
    if status.is_success() && order.is_string() {
        Some((status, json!({ "orderId": order })))
    } else {
        Some((status, converted))
    }
}

/// Requests that must not succeed: no key, a wrong key, an operator endpoint with a
/// client key, and another customer's order with a client key.
async fn probe(
    http: reqwest::Client,
    base: String,
    clients: Vec<(String, String)>,
    until: Instant,
    ledger: Arc<Mutex<Ledger>>,
) {
    let mut round = 0_usize;
    while Instant::now() < until {
        round += 1;
        let someones_order = lock(&ledger).told_success.last().cloned();
        let (_, client_key) = &clients[round % clients.len()];
        let stranger = &clients[(round + 1) % clients.len()].0;
        let mut requests = vec![
            http.get(format!("{base}/api/orders")),
            http.post(format!("{base}/api/orders"))
                .json(&order_body("intruder", PRODUCTS[0].0)),
            http.get(format!("{base}/metrics")),
            http.post(format!("{base}/api/ops/stock-sync")).json(&json!({})),
            http.get(format!("{base}/api/orders")).bearer_auth("not-a-key"),
            http.post(format!("{base}/api/holds"))
                .bearer_auth("not-a-key")
                .json(&json!({"customerId": "intruder", "items": [{"sku": PRODUCTS[0].0, "quantity": 1}], "ttlSeconds": 5})),
            http.get(format!("{base}/metrics")).bearer_auth(client_key),
            http.get(format!("{base}/api/ops/dlq/order_queue")).bearer_auth(client_key),
            http.post(format!("{base}/api/orders"))
                .bearer_auth(client_key)
                .json(&order_body(stranger, PRODUCTS[0].0)),
        ];
        if let Some(told) = &someones_order {
            // Every other customer's key must not see it.
            for (customer, key) in &clients {
                if customer != &told.customer {
                    requests.push(
                        http.get(format!("{base}/api/orders/{}", told.id))
                            .bearer_auth(key),
                    );
                }
            }
        }
        let mut unauthorized = 0;
        let mut sent = 0;
        for request in requests {
            sent += 1;
            if let Ok(response) = request.send().await
                && response.status().is_success()
            {
                unauthorized += 1;
            }
        }
        {
            let mut ledger = lock(&ledger);
            ledger.probes += sent;
            ledger.unauthenticated_2xx += unauthorized;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
