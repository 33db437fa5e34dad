//! Webhooks on the real PostgreSQL, RabbitMQ and Redis, through the `aggregator`
//! binary: the process delivering them is killed with SIGKILL mid-flow and another
//! started; every order event still reaches the receiver, and any repeat carries the
//! same delivery id.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use aggregator_core::conformance::service_url;
use aggregator_postgres::testing::TestDatabase;
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};
use mock_vendors::WebhookReceiver;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::support::{eventually, get_json, vendors};

const SECRET: &str = "whsec-e2e-0123456789abcdef";

/// What every process of the test shares: its database, queue and cache names, and
/// the vendors.
struct Environment(Vec<(&'static str, String)>);

impl Environment {
    fn spawn(&self, roles: &[&str], extra: &[(&str, String)]) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aggregator"));
        command
            .args(roles)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in self
            .0
            .iter()
            .map(|(n, v)| (*n, v))
            .chain(extra.iter().map(|(n, v)| (*n, v)))
        {
            command.env(name, value);
        }
        command.spawn().expect("the binary starts")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_delivering_process_loses_no_event_and_repeats_carry_the_same_id() {
    let (Some(amqp), Some(redis)) = (service_url("AMQP_URL"), service_url("REDIS_URL")) else {
        return;
    };
    let Some(db) = TestDatabase::create(4).await else {
        return;
    };
    let (a, b) = vendors().await;
    let receiver = WebhookReceiver::spawn_local(SECRET)
        .await
        .expect("receiver");
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let environment = Environment(vec![
        ("DATABASE_URL", db.config().url.expose().to_owned()),
        ("AMQP_URL", amqp),
        ("REDIS_URL", redis),
        ("AGGREGATOR_QUEUE_PREFIX", format!("test.{unique}.")),
        ("AGGREGATOR_CACHE_PREFIX", format!("test:{unique}:")),
        (
            "AGGREGATOR_VENDORS",
            format!("VendorA={},VendorB={}", a.base_url(), b.base_url()),
        ),
        ("AGGREGATOR_LOG_DIR", "none".to_owned()),
        ("RUST_LOG", "error".to_owned()),
        ("AGGREGATOR_WEBHOOK_ALLOW_PRIVATE", "true".to_owned()),
        ("AGGREGATOR_RETRY_DELAYS_MS", "200,400,800,1600".to_owned()),
    ]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut api = environment.spawn(
        &["api", "sync"],
        &[("AGGREGATOR_API_ADDR", format!("127.0.0.1:{port}"))],
    );
    let http = reqwest::Client::new();
    eventually(
        "the API with a synced catalog",
        Duration::from_secs(30),
        || {
            let http = http.clone();
            let url = format!("{base}/api/products/MOUSE-007");
            async move {
                let answer = http.get(&url).send().await.ok()?;
                answer.status().is_success().then_some(())
            }
        },
    )
    .await;
    let registered: Value = http
        .post(format!("{base}/api/webhooks"))
        .json(&json!({"url": receiver.url(), "secret": SECRET}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let hook = registered["data"]["id"]
        .as_str()
        .expect("registered")
        .to_owned();

    let mut worker = environment.spawn(&["worker", "relay"], &[]);
    let mut orders = Vec::new();
    for n in 0..30 {
        let placed: Value = http
            .post(format!("{base}/order"))
            .json(&json!({"productId": "MOUSE-007", "quantity": 1, "customerId": format!("c{n}")}))
            .send()
            .await
            .expect("order")
            .json()
            .await
            .expect("json");
        orders.push(placed["orderId"].as_str().expect("placed").to_owned());
    }
    eventually("the first deliveries", Duration::from_secs(30), || {
        let accepted = receiver.accepted().len();
        async move { (accepted >= 10).then_some(()) }
    })
    .await;
    worker.start_kill().expect("SIGKILL");
    let _ = worker.wait().await;
    let mut worker = environment.spawn(&["worker", "relay"], &[]);

    // Every order settles, and then every one of its events arrives.
    let expected: BTreeSet<String> =
        eventually("every order settled", Duration::from_secs(60), || {
            let http = http.clone();
            let base = base.clone();
            let orders = orders.clone();
            let hook = hook.clone();
            async move {
                let mut ids = BTreeSet::new();
                for id in &orders {
                    let order = get_json(&http, &format!("{base}/api/orders/{id}")).await;
                    let order = &order["data"]["order"];
                    if order["status"] == "reserved" {
                        return None;
                    }
                    for event in order["events"].as_array()? {
                        ids.insert(format!("{id}:v{}@{hook}", event["version"]));
                    }
                }
                Some(ids)
            }
        })
        .await;
    assert!(
        expected.len() >= 60,
        "two events or more per order: {}",
        expected.len()
    );
    eventually("every event delivered", Duration::from_secs(60), || {
        let received: BTreeSet<String> = receiver.accepted().into_iter().map(|d| d.id).collect();
        let done = expected.is_subset(&received);
        async move { done.then_some(()) }
    })
    .await;
    let accepted = receiver.accepted();
    let received: BTreeSet<String> = accepted.iter().map(|d| d.id.clone()).collect();
    assert_eq!(received, expected, "nothing lost, nothing unexpected");
    for delivery in &accepted {
        let body = &delivery.body;
        let id = format!(
            "{}:v{}@{hook}",
            body["orderId"].as_str().unwrap_or_default(),
            body["version"]
        );
        assert_eq!(delivery.id, id, "a repeat carries the same id as the first");
    }
    assert_eq!(receiver.forged(), 0, "every delivery was signed correctly");
    let repeats = accepted.len() - received.len();
    eprintln!(
        "webhooks after SIGKILL: {} events, {} deliveries, {repeats} repeats",
        expected.len(),
        accepted.len()
    );

    worker.start_kill().expect("stop worker");
    api.start_kill().expect("stop api");
    let _ = worker.wait().await;
    let _ = api.wait().await;
    let mut rabbit = RabbitConfig::new(service_url("AMQP_URL").unwrap_or_default());
    rabbit.prefix = format!("test.{unique}.");
    if let Ok(queue) = RabbitQueue::connect(rabbit).await {
        let _ = queue.delete_topology().await;
    }
    db.finish().await;
}
