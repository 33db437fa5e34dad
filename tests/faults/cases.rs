//! The cases: what each one does to the running system while the clients shop.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use aggregator_core::domain::{Message, OrderMessage, QueueName};
use aggregator_core::traits::OrderQueue;
use aggregator_rabbitmq::RabbitQueue;
use mock_vendors::Faults;

use crate::cluster::{Layout, PRODUCTS, World};
use crate::load::LoadView;
use crate::services;

/// What a case's injection returns: it runs while the load runs.
type Injection<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One case.
pub(crate) struct Case {
    /// Its name (`--case NAME`).
    pub(crate) name: &'static str,
    /// What it does.
    pub(crate) what: &'static str,
    /// Whether it restarts PostgreSQL, RabbitMQ or Redis (only the local ones).
    pub(crate) restarts_services: bool,
    /// Where its processes run.
    pub(crate) layout: Layout,
    /// Settings its processes run with, over the harness's own.
    pub(crate) settings: &'static [(&'static str, &'static str)],
    /// Injects its faults while the load runs for the given time.
    pub(crate) inject: for<'a> fn(&'a mut World, LoadView, Duration) -> Injection<'a>,
}

/// Every case, in the order they run; the last one does everything at once.
pub(crate) const ALL: &[Case] = &[
    Case {
        name: "baseline",
        what: "no fault: the load alone",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |_, _, load| Box::pin(async move { sleep(load).await }),
    },
    Case {
        name: "kill-worker",
        what: "kill -9 of a worker process, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["worker-1", "worker-2"], load)),
    },
    Case {
        name: "kill-api",
        what: "kill -9 of the API process, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["api"], load)),
    },
    Case {
        name: "kill-relay",
        what: "kill -9 of the outbox relay, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["relay"], load)),
    },
    Case {
        name: "kill-sweeper",
        what: "kill -9 of the sweeper, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["sweeper"], load)),
    },
    Case {
        name: "kill-sync",
        what: "kill -9 of the stock sync, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["sync"], load)),
    },
    Case {
        name: "rabbitmq-restart",
        what: "RabbitMQ stopped for 3 s, then started again",
        restarts_services: true,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(rabbitmq_restart(world, load)),
    },
    Case {
        name: "postgres-restart",
        what: "PostgreSQL restarted (fast shutdown: every connection cut)",
        restarts_services: true,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(postgres_restart(world, load)),
    },
    Case {
        name: "redis-down",
        what: "Redis shut down for 3 s, then started again",
        restarts_services: true,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(redis_down(world, load)),
    },
    Case {
        name: "vendor-latency",
        what: "both vendors answer 400 ms late",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| {
            Box::pin(vendor_faults(
                world,
                load,
                "vendors 400 ms late",
                Faults {
                    latency_ms: 400,
                    ..Faults::default()
                },
            ))
        },
    },
    Case {
        name: "vendor-errors",
        what: "both vendors fail 30% of requests with a 500",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| {
            Box::pin(vendor_faults(
                world,
                load,
                "vendors fail 30%",
                Faults {
                    error_rate: 0.3,
                    ..Faults::default()
                },
            ))
        },
    },
    Case {
        name: "vendor-outage",
        what: "VendorA answers 503 to everything for 4 s",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(vendor_outage(world, load)),
    },
    Case {
        name: "malformed-feed",
        what: "VendorB sends bodies cut in half and negative stock for 4 s",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(malformed_feed(world, load)),
    },
    Case {
        name: "clock-skew",
        what: "VendorA's feed 3 s ahead and its orders 1 s behind; VendorB's feed an hour ahead for 4 s",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(clock_skew(world, load)),
    },
    Case {
        name: "lost-answers",
        what: "both vendors place 30% of orders and then break the connection",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| {
            Box::pin(vendor_faults(
                world,
                load,
                "vendors lose 30% of order answers",
                Faults {
                    lost_answer_rate: 0.3,
                    ..Faults::default()
                },
            ))
        },
    },
    Case {
        name: "duplicates",
        what: "every order message delivered several times more (a relay publishing twice)",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, view, load| Box::pin(duplicates(world, view, load)),
    },
    Case {
        name: "partition",
        what: "worker-1 cut off from RabbitMQ for 10 s (its messages go to worker-2 meanwhile)",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(partition(world, load)),
    },
    Case {
        name: "hosts",
        what: "two API hosts and two worker hosts in network namespaces: an API host dies (kill -9 of all it runs), then a worker host is cut off from everything",
        restarts_services: false,
        layout: Layout::FourHosts,
        settings: &[],
        inject: |world, view, load| Box::pin(hosts_fail(world, view, load)),
    },
    Case {
        name: "cancel-refusals",
        what: "VendorA refuses every cancellation (422) for a while; VendorB answers 404 to keys it never saw, remembering nothing",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[("AGGREGATOR_PLACEMENT_TIMEOUT_SECS", "2")],
        inject: |world, _, load| Box::pin(cancel_refusals(world, load)),
    },
    Case {
        name: "cancel-crash-loop",
        what: "workers killed over and over while they hold cancellations (vendors answer them in 5 s; delivery limit 2): cancellations dead-lettered by the broker come back",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[
            ("AGGREGATOR_QUEUE_DELIVERY_LIMIT", "2"),
            ("AGGREGATOR_CANCELLATION_REQUEUE_AFTER_SECS", "3"),
            ("AGGREGATOR_PLACEMENT_TIMEOUT_SECS", "2"),
        ],
        inject: |world, view, load| Box::pin(cancel_crash_loop(world, view, load)),
    },
    Case {
        name: "batch-crash-loop",
        what: "the relay paused so orders pile up into batch messages, and workers killed over and over while they hold them (vendors answer orders in 2.5 s; delivery limit 2): a batch on its last hand-out sends its orders on alone",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[
            ("AGGREGATOR_QUEUE_DELIVERY_LIMIT", "2"),
            ("AGGREGATOR_VENDOR_TIMEOUT_MS", "4000"),
            // Cancellations held by the dying workers are dead-lettered by the broker
            // too; the sweeper brings them back.
            ("AGGREGATOR_CANCELLATION_REQUEUE_AFTER_SECS", "3"),
        ],
        inject: |world, _, load| Box::pin(batch_crash_loop(world, load)),
    },
    Case {
        name: "order-clock-behind",
        what: "VendorA's order endpoint runs 60 s behind its feed (and us)",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| {
            Box::pin(vendor_faults(
                world,
                load,
                "VendorA orders 60 s behind",
                Faults {
                    order_clock_offset_ms: -60_000,
                    ..Faults::default()
                },
            ))
        },
    },
    Case {
        name: "price-move-retry",
        what: "keyed orders quoting VendorA's price, its price raised, then each retried with its key",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(price_move_retry(world, load)),
    },
    Case {
        name: "quote-lower-priority",
        what: "orders quoting only the lower-priority VendorB's price, for every product",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, _, load| Box::pin(quote_lower_priority(world, load)),
    },
    Case {
        name: "reroute-cancel-storm",
        what: "VendorA down (its orders re-routed) while every recent order is cancelled at once, again and again",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, view, load| Box::pin(reroute_cancel_storm(world, view, load)),
    },
    Case {
        name: "vendor-rate-limit",
        what: "both vendors take at most 50 requests a second (429 past it); our budget is 45",
        restarts_services: false,
        layout: Layout::OneHost,
        settings: &[("AGGREGATOR_VENDOR_MAX_PER_SECOND", "45")],
        inject: |world, _, load| Box::pin(vendor_rate_limit(world, load)),
    },
    Case {
        name: "everything",
        what: "all of the above at once",
        restarts_services: true,
        layout: Layout::OneHost,
        settings: &[],
        inject: |world, view, load| Box::pin(everything(world, view, load)),
    },
];

async fn sleep(duration: Duration) -> Result<(), String> {
    tokio::time::sleep(duration).await;
    Ok(())
}

/// Runs a blocking service command off the runtime.
async fn blocking(work: fn() -> bool) -> Result<(), String> {
    match tokio::task::spawn_blocking(work).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("a service command failed".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

async fn kill_repeatedly(world: &mut World, names: &[&str], load: Duration) -> Result<(), String> {
    let gap = load / 4;
    for round in 0..3 {
        sleep(gap).await?;
        world.kill(names[round % names.len()]).await;
        sleep(Duration::from_millis(300)).await?;
        world.respawn_missing().await?;
    }
    sleep(gap).await
}

async fn rabbitmq_restart(world: &mut World, load: Duration) -> Result<(), String> {
    sleep(load / 4).await?;
    blocking(services::stop_rabbitmq).await?;
    world.injected.push("RabbitMQ stopped".into());
    sleep(Duration::from_secs(3)).await?;
    blocking(services::start_rabbitmq).await?;
    sleep(load / 4).await
}

async fn postgres_restart(world: &mut World, load: Duration) -> Result<(), String> {
    sleep(load / 3).await?;
    blocking(services::restart_postgres).await?;
    world.injected.push("PostgreSQL restarted".into());
    sleep(load / 3).await
}

async fn redis_down(world: &mut World, load: Duration) -> Result<(), String> {
    sleep(load / 4).await?;
    blocking(services::stop_redis).await?;
    world.injected.push("Redis down".into());
    sleep(Duration::from_secs(3)).await?;
    blocking(services::start_redis).await?;
    sleep(load / 4).await
}

async fn vendor_faults(
    world: &mut World,
    load: Duration,
    what: &str,
    faults: Faults,
) -> Result<(), String> {
    sleep(load / 8).await?;
    for vendor in &world.vendors {
        vendor.set_faults(faults);
    }
    world.injected.push(what.to_owned());
    sleep(load * 7 / 8).await
}

async fn vendor_outage(world: &mut World, load: Duration) -> Result<(), String> {
    sleep(load / 4).await?;
    world.vendor("VendorA").set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    world.injected.push("VendorA outage 4 s".into());
    sleep(Duration::from_secs(4)).await?;
    world.vendor("VendorA").reset_faults();
    sleep(load / 4).await
}

async fn malformed_feed(world: &mut World, load: Duration) -> Result<(), String> {
    sleep(load / 4).await?;
    world.vendor("VendorB").set_faults(Faults {
        malformed: true,
        bad_data: true,
        ..Faults::default()
    });
    world.injected.push("VendorB malformed 4 s".into());
    sleep(Duration::from_secs(4)).await?;
    world.vendor("VendorB").reset_faults();
    sleep(load / 4).await
}

async fn clock_skew(world: &mut World, load: Duration) -> Result<(), String> {
    world.vendor("VendorA").set_faults(Faults {
        feed_clock_offset_ms: 3_000,
        order_clock_offset_ms: -1_000,
        ..Faults::default()
    });
    world.injected.push("VendorA feed +3 s, orders -1 s".into());
    sleep(load / 4).await?;
    world.vendor("VendorB").set_faults(Faults {
        feed_clock_offset_ms: 3_600_000,
        ..Faults::default()
    });
    world.injected.push("VendorB feed +1 h for 4 s".into());
    sleep(Duration::from_secs(4)).await?;
    world.vendor("VendorB").reset_faults();
    sleep(load / 4).await
}

/// Publishes a second `ProcessOrder` for recent orders every 50 ms, as a relay that
/// crashed between publishing and marking would.
async fn publish_duplicates(
    world: &World,
    view: LoadView,
    run_for: Duration,
) -> Result<u64, String> {
    let queue = RabbitQueue::connect(world.rabbit_config())
        .await
        .map_err(|e| e.to_string())?;
    let until = tokio::time::Instant::now() + run_for;
    let mut published = 0;
    while tokio::time::Instant::now() < until {
        for order in view.recent_orders(3) {
            let message =
                Message::json(&OrderMessage::ProcessOrder { order }).map_err(|e| e.to_string())?;
            if queue.publish(QueueName::Orders, &message).await.is_ok() {
                published += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(published)
}

async fn duplicates(world: &mut World, view: LoadView, load: Duration) -> Result<(), String> {
    let published = publish_duplicates(world, view, load).await?;
    world
        .injected
        .push(format!("{published} duplicate order messages"));
    Ok(())
}

async fn partition(world: &mut World, load: Duration) -> Result<(), String> {
    sleep(Duration::from_secs(1)).await?;
    world.worker_link.set_cut(true);
    world
        .injected
        .push("worker-1 cut off from RabbitMQ 10 s".into());
    sleep(Duration::from_secs(10)).await?;
    world.worker_link.set_cut(false);
    sleep(load.saturating_sub(Duration::from_secs(11))).await
}

async fn everything(world: &mut World, view: LoadView, load: Duration) -> Result<(), String> {
    for vendor in &world.vendors {
        vendor.set_faults(Faults {
            latency_ms: 150,
            error_rate: 0.15,
            lost_answer_rate: 0.15,
            ..Faults::default()
        });
    }
    world.vendor("VendorA").set_faults(Faults {
        latency_ms: 150,
        error_rate: 0.15,
        lost_answer_rate: 0.15,
        feed_clock_offset_ms: 3_000,
        order_clock_offset_ms: -1_000,
        ..Faults::default()
    });
    world.injected.push(
        "vendors 150 ms late, failing 15%, losing 15% of answers; VendorA's clocks apart".into(),
    );
    world.worker_link.set_cut(true);
    world
        .injected
        .push("worker-1 cut off from RabbitMQ 10 s".into());
    let step = load / 8;
    sleep(step).await?;
    world.kill("worker-2").await;
    world.respawn_missing().await?;
    sleep(step).await?;
    blocking(services::stop_rabbitmq).await?;
    world.injected.push("RabbitMQ stopped".into());
    world.kill("api").await;
    sleep(Duration::from_secs(2)).await?;
    blocking(services::start_rabbitmq).await?;
    world.respawn_missing().await?;
    sleep(step).await?;
    blocking(services::restart_postgres).await?;
    world.injected.push("PostgreSQL restarted".into());
    world.kill("relay").await;
    world.respawn_missing().await?;
    sleep(step).await?;
    blocking(services::stop_redis).await?;
    world.injected.push("Redis down".into());
    world.vendor("VendorB").set_faults(Faults {
        malformed: true,
        bad_data: true,
        ..Faults::default()
    });
    world.injected.push("VendorB malformed".into());
    world.kill("sync").await;
    world.kill("sweeper").await;
    world.respawn_missing().await?;
    sleep(Duration::from_secs(2)).await?;
    blocking(services::start_redis).await?;
    world.vendor("VendorB").set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    world.injected.push("VendorB outage".into());
    world.kill("worker-1").await;
    world.respawn_missing().await?;
    let published = publish_duplicates(world, view, step * 2).await?;
    world
        .injected
        .push(format!("{published} duplicate order messages"));
    world.vendor("VendorB").reset_faults();
    world.worker_link.set_cut(false);
    Ok(())
}

/// Kills the second API host at a fifth of the load, cuts the first worker host off
/// from everything from two fifths to seven tenths, and checks that intake goes on
/// through the API host left and after the partition heals.
async fn hosts_fail(world: &mut World, view: LoadView, load: Duration) -> Result<(), String> {
    let start = std::time::Instant::now();
    sleep(load / 5).await?;
    let killed_at = std::time::Instant::now();
    world.kill_host(1).await;
    sleep(load / 5).await?;
    let cut_at = std::time::Instant::now();
    let network = world.network.as_ref().ok_or("the case needs hosts")?;
    network.set_partitioned(2, true)?;
    world.injected.push("host 2 (worker-1) partitioned".into());
    sleep(load * 3 / 10).await?;
    let network = world.network.as_ref().ok_or("the case needs hosts")?;
    network.set_partitioned(2, false)?;
    let healed_at = std::time::Instant::now();
    sleep((start + load).saturating_duration_since(healed_at)).await?;
    let both = view.answers_per_second(start, killed_at);
    let one = view.answers_per_second(killed_at, cut_at);
    let after = view.answers_per_second(healed_at, std::time::Instant::now());
    println!(
        "case=hosts order answers/s: {both:.1} with both API hosts, {one:.1} after one died, {after:.1} after the worker host's partition healed"
    );
    if one == 0.0 || after == 0.0 {
        return Err(format!(
            "intake did not recover: {both:.1}/s, then {one:.1}/s with one API host, {after:.1}/s after the partition"
        ));
    }
    Ok(())
}

/// A client for a case's own requests.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// An order body for one unit of `item`, quoting `price_minor` cents when given.
fn quoted_order(customer: &str, item: &str, price_minor: Option<i64>) -> serde_json::Value {
    let mut line = serde_json::json!({"sku": item, "quantity": 1});
    if let Some(cents) = price_minor {
        // A JSON number, as the seed's clients send it.
        let number = format!("{}.{:02}", cents / 100, cents % 100);
        line["unitPrice"] = serde_json::from_str(&number).unwrap_or_default();
    }
    serde_json::json!({
        "customerId": customer,
        "customerEmail": "faults@example.com",
        "items": [line],
        "shippingAddress": {"street": "1 Main St", "city": "Boston", "zipCode": "02101", "country": "USA"},
        "paymentMethod": "credit_card"
    })
}

/// Sends `body` to `POST /api/orders` under `key` until a definite answer (not a 5xx,
/// 429, a transport error or "in progress"), for up to 20 s.
async fn place_keyed(
    world: &World,
    client_key: &str,
    body: &serde_json::Value,
    key: &str,
) -> Result<(reqwest::StatusCode, serde_json::Value), String> {
    let http = http();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let sent = http
            .post(format!("{}/api/orders", world.api_base))
            .bearer_auth(client_key)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            let in_progress = answer["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("request-in-progress"));
            if !(status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || in_progress)
            {
                return Ok((status, answer));
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("no definite answer for key {key}"));
        }
        sleep(Duration::from_millis(200)).await?;
    }
}

/// Waits (up to 10 s) until the catalog shows `price_minor` for `vendor`'s row of
/// `product`.
async fn catalog_shows(
    world: &World,
    product: &str,
    vendor: &str,
    price_minor: i64,
) -> Result<(), String> {
    let http = http();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let read = http
            .get(format!("{}/api/products/{product}", world.api_base))
            .bearer_auth(&world.admin_key)
            .send()
            .await;
        if let Ok(response) = read {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let shown = body["data"]["product"]["vendors"]
                .as_array()
                .is_some_and(|rows| {
                    rows.iter().any(|row| {
                        row["vendor"] == vendor
                            && row["price"]["minorUnits"] == price_minor
                            && row["fresh"] == true
                    })
                });
            if shown {
                return Ok(());
            }
        }
        sleep(Duration::from_millis(200)).await?;
    }
    Err(format!(
        "{product} at {vendor} never showed {price_minor} cents"
    ))
}

/// The price of `sku` at `vendor`, in cents.
fn price_at(world: &World, vendor: &str, sku: &str) -> Result<i64, String> {
    world
        .vendor(vendor)
        .items()
        .into_iter()
        .find(|item| item.sku == sku)
        .map(|item| item.price_minor)
        .ok_or_else(|| format!("{vendor} does not sell {sku}"))
}

async fn cancel_refusals(world: &mut World, load: Duration) -> Result<(), String> {
    world.vendor("VendorB").set_faults(Faults {
        forget_unknown_cancels: true,
        ..Faults::default()
    });
    world
        .injected
        .push("VendorB answers 404 to cancels of keys it never saw".into());
    sleep(load / 8).await?;
    world.vendor("VendorA").set_faults(Faults {
        cancel_refusal_status: 422,
        ..Faults::default()
    });
    world
        .injected
        .push("VendorA refuses every cancel (422) 4 s".into());
    sleep(Duration::from_secs(4)).await?;
    world.vendor("VendorA").reset_faults();
    sleep(load.saturating_sub(load / 8 + Duration::from_secs(4))).await
}

/// Cancels, all at once, up to `count` orders told success lately (as their customers'
/// admin would); answers how many cancels were sent.
async fn cancel_recent(world: &World, view: &LoadView, count: usize) -> usize {
    let http = http();
    let mut cancels = tokio::task::JoinSet::new();
    for id in view.recent_orders(count) {
        let request = http
            .post(format!("{}/api/orders/{id}/cancel", world.api_base))
            .bearer_auth(&world.admin_key)
            .json(&serde_json::json!({"reason": "storm"}));
        cancels.spawn(async move { request.send().await.is_ok() });
    }
    let mut sent = 0;
    while let Some(done) = cancels.join_next().await {
        sent += usize::from(done.unwrap_or(false));
    }
    sent
}

/// Pauses the relay in turn so that orders pile up in the outbox and go out as batch
/// messages, and kills the workers in turn while vendors hold every order longer than a
/// worker lives, so that every batch is handed out for the last time before the
/// delivery limit; fails the case unless some batch was split that way (the workers'
/// logs say so).
async fn batch_crash_loop(world: &mut World, load: Duration) -> Result<(), String> {
    for vendor in &world.vendors {
        vendor.set_faults(Faults {
            latency_ms: 2_500,
            ..Faults::default()
        });
    }
    world
        .injected
        .push("vendors take 2.5 s to answer an order".into());
    let until = tokio::time::Instant::now() + load * 6 / 10;
    let mut round = 0_usize;
    while tokio::time::Instant::now() < until {
        // A worker lives about two rounds (1.4 s), less than a vendor takes to answer:
        // whatever it holds comes back unsettled.
        world.kill("relay").await;
        sleep(Duration::from_millis(400)).await?;
        world.respawn_missing().await?;
        sleep(Duration::from_millis(300)).await?;
        world.kill(["worker-1", "worker-2"][round % 2]).await;
        world.respawn_missing().await?;
        round += 1;
    }
    for vendor in &world.vendors {
        vendor.reset_faults();
    }
    sleep(load * 4 / 10).await?;
    let split: usize = ["worker-1", "worker-2"]
        .iter()
        .map(|name| {
            std::fs::read_to_string(world.logs.join(format!("{name}.log")))
                .map(|log| log.matches("its orders go on alone").count())
                .unwrap_or(0)
        })
        .sum();
    world.injected.push(format!(
        "{round} worker kills; {split} batches split on their last hand-out"
    ));
    if split == 0 {
        return Err(
            "no batch reached its last hand-out: the case did not drive its path".to_owned(),
        );
    }
    Ok(())
}

async fn cancel_crash_loop(
    world: &mut World,
    view: LoadView,
    load: Duration,
) -> Result<(), String> {
    for vendor in &world.vendors {
        vendor.set_faults(Faults {
            cancel_latency_ms: 5_000,
            ..Faults::default()
        });
    }
    world
        .injected
        .push("vendors take 5 s to answer a cancellation".into());
    let until = tokio::time::Instant::now() + load * 6 / 10;
    let mut round = 0_usize;
    while tokio::time::Instant::now() < until {
        cancel_recent(world, &view, 12).await;
        sleep(Duration::from_millis(600)).await?;
        let name = ["worker-1", "worker-2"][round % 2];
        world.kill(name).await;
        world.respawn_missing().await?;
        round += 1;
    }
    for vendor in &world.vendors {
        vendor.reset_faults();
    }
    sleep(load * 4 / 10).await?;
    // What the broker dead-lettered by its delivery limit (the sweeper brings the
    // cancellations back; the orders failed at their last hand-out, or expire).
    let queue = RabbitQueue::connect(world.rabbit_config())
        .await
        .map_err(|e| e.to_string())?;
    let dead = queue
        .dead_letters(QueueName::Orders, 10_000)
        .await
        .map_err(|e| e.to_string())?;
    let by_broker = |cancel: bool| {
        dead.iter()
            .filter(|letter| letter.reason.contains("delivery limit"))
            .filter(|letter| {
                matches!(
                    letter.message.decode::<OrderMessage>(),
                    Ok(OrderMessage::CancelAtVendor { .. })
                ) == cancel
            })
            .count()
    };
    let (cancels, orders) = (by_broker(true), by_broker(false));
    world.injected.push(format!(
        "{cancels} cancellations and {orders} orders dead-lettered by the broker"
    ));
    if cancels == 0 {
        return Err(
            "no cancellation reached the delivery limit: the case did not drive its path"
                .to_owned(),
        );
    }
    Ok(())
}

async fn price_move_retry(world: &mut World, load: Duration) -> Result<(), String> {
    let (customer, client_key) = world.client(0);
    let (customer, client_key) = (customer.to_owned(), client_key.to_owned());
    // A product the load does not buy, so it never runs out here.
    let (product, sku) = ("SMARTPHONE-002", "SMARTPHONE-a-002");
    world.vendor("VendorA").set_quantity(sku, 100);
    let until = tokio::time::Instant::now() + load;
    let (mut retried, mut failures) = (0, Vec::new());
    let mut round = 0;
    while tokio::time::Instant::now() < until && round < 6 {
        round += 1;
        let price = price_at(world, "VendorA", sku)?;
        catalog_shows(world, product, "VendorA", price).await?;
        let body = quoted_order(&customer, sku, Some(price));
        let key = format!("price-move-{round}");
        let (status, first) = place_keyed(world, &client_key, &body, &key).await?;
        if status != reqwest::StatusCode::CREATED {
            // Sold out, say: nothing placed under the key to retry.
            world
                .injected
                .push(format!("a quoted order was not placed: {status}"));
            continue;
        }
        let raised = price + 111;
        world.vendor("VendorA").set_price(sku, raised);
        catalog_shows(world, product, "VendorA", raised).await?;
        let (status, again) = place_keyed(world, &client_key, &body, &key).await?;
        retried += 1;
        if !status.is_success() || again["orderId"] != first["orderId"] {
            failures.push(format!("{key}: {status} {again}"));
        }
    }
    world.injected.push(format!(
        "{retried} keyed orders retried after their quoted price moved"
    ));
    if retried == 0 {
        return Err("no keyed order was placed to retry".to_owned());
    }
    if !failures.is_empty() {
        return Err(format!(
            "retries of placed orders were not answered with their order: {failures:?}"
        ));
    }
    Ok(())
}

async fn quote_lower_priority(world: &mut World, load: Duration) -> Result<(), String> {
    let (customer, client_key) = world.client(1);
    let (customer, client_key) = (customer.to_owned(), client_key.to_owned());
    // Make every product's two prices differ.
    let mut quotes = Vec::new();
    for (product, sku_a, sku_b, ..) in PRODUCTS {
        let a = price_at(world, "VendorA", sku_a)?;
        let mut b = price_at(world, "VendorB", sku_b)?;
        if a == b {
            b = (a - 37).max(1);
            world.vendor("VendorB").set_price(sku_b, b);
        }
        catalog_shows(world, product, "VendorB", b).await?;
        quotes.push((product, b));
    }
    let http = http();
    let until = tokio::time::Instant::now() + load;
    let (mut charged, mut failures, mut round) = (0, Vec::new(), 0);
    while tokio::time::Instant::now() < until {
        round += 1;
        for (product, b) in &quotes {
            let body = quoted_order(&customer, product, Some(*b));
            let key = format!("lower-priority-{round}-{product}");
            let (status, placed) = place_keyed(world, &client_key, &body, &key).await?;
            if status != reqwest::StatusCode::CREATED {
                continue;
            }
            let id = placed["orderId"].as_str().unwrap_or_default().to_owned();
            let read: serde_json::Value = http
                .get(format!("{}/api/orders/{id}", world.api_base))
                .bearer_auth(&client_key)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let allocations = read["data"]["order"]["items"][0]["allocations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let right = !allocations.is_empty()
                && allocations
                    .iter()
                    .all(|a| a["vendor"] == "VendorB" && a["unitPrice"]["minorUnits"] == *b);
            charged += 1;
            if !right {
                failures.push(format!("{id} quoted {b}: {allocations:?}"));
            }
        }
        sleep(Duration::from_millis(300)).await?;
    }
    world
        .injected
        .push(format!("{charged} orders quoting only VendorB's price"));
    if charged == 0 {
        return Err("no order quoting VendorB's price was placed".to_owned());
    }
    if !failures.is_empty() {
        return Err(format!("charged another price: {failures:?}"));
    }
    Ok(())
}

async fn reroute_cancel_storm(
    world: &mut World,
    view: LoadView,
    load: Duration,
) -> Result<(), String> {
    sleep(load / 4).await?;
    world.vendor("VendorA").set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    world
        .injected
        .push("VendorA down; its orders re-routed".into());
    let until = tokio::time::Instant::now() + load / 2;
    let mut sent = 0;
    while tokio::time::Instant::now() < until {
        sent += cancel_recent(world, &view, 20).await;
        sleep(Duration::from_millis(150)).await?;
    }
    world.vendor("VendorA").reset_faults();
    world
        .injected
        .push(format!("{sent} cancels sent in storms of 20"));
    sleep(load / 4).await
}

async fn vendor_rate_limit(world: &mut World, load: Duration) -> Result<(), String> {
    for vendor in &world.vendors {
        vendor.set_faults(Faults {
            rate_limit_per_sec: 50,
            ..Faults::default()
        });
    }
    for vendor in ["VendorA", "VendorB"] {
        world.vendor_limits.insert(vendor.to_owned(), 50);
    }
    world
        .injected
        .push("vendors take at most 50 requests a second".into());
    sleep(load).await?;
    let refused: u64 = world.vendors.iter().map(|v| v.refused_for_rate()).sum();
    let busiest = world
        .vendors
        .iter()
        .map(|v| v.busiest_second())
        .max()
        .unwrap_or(0);
    world.injected.push(format!(
        "busiest vendor second {busiest} requests, {refused} refused for rate"
    ));
    Ok(())
}
