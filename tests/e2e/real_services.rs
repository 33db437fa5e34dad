//! On the real PostgreSQL, RabbitMQ and Redis: two API instances and two workers, a
//! vendor outage, a worker stopped mid-message.

use std::sync::Arc;
use std::time::Duration;

use aggregator_core::clock::SystemClock;
use aggregator_core::conformance::service_url;
use aggregator_core::domain::QueueName;
use aggregator_core::traits::{Cache, OrderQueue, StockStore};
use aggregator_http::api::HealthProbes;
use aggregator_postgres::testing::TestDatabase;
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};
use aggregator_redis::{RedisCache, RedisConfig};
use mock_vendors::Faults;
use order_aggregator::app::App;
use order_aggregator::backends::Backends;
use order_aggregator::settings::Settings;
use order_aggregator::stack::Roles;
use serde_json::json;

use super::support::{
    all_orders, confirmed_units, eventually, get_json, settings, vendor_row, vendors,
};

/// The real services for one test: its own database, queue names and cache keys.
struct Services {
    db: TestDatabase,
    rabbit: RabbitQueue,
    redis: Arc<RedisCache>,
}

impl Services {
    async fn connect(settings: &Settings) -> Option<Self> {
        let amqp = service_url("AMQP_URL")?;
        let redis = service_url("REDIS_URL")?;
        let db = TestDatabase::create(16).await?;
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let mut rabbit = RabbitConfig::new(amqp);
        rabbit.prefix = format!("test.{unique}.");
        rabbit.retry = settings.queue.retry.clone();
        let rabbit = RabbitQueue::connect(rabbit).await.expect("rabbitmq");
        let mut cache = RedisConfig::new(redis);
        cache.key_prefix = format!("test:{unique}:");
        let redis = Arc::new(RedisCache::new(cache).expect("redis"));
        Some(Self { db, rabbit, redis })
    }

    fn backends(&self) -> Backends {
        let store: Arc<dyn StockStore> = Arc::new(self.db.store.clone());
        let queue: Arc<dyn OrderQueue> = Arc::new(self.rabbit.clone());
        let cache: Arc<dyn Cache> = self.redis.clone();
        Backends {
            store,
            queue,
            cache,
            clock: Arc::new(SystemClock),
            probes: HealthProbes::default(),
            replica: None,
        }
    }

    /// Nothing waits in either queue (unacked messages come back once consumers are
    /// gone) and neither dead-letter queue holds anything; then everything is removed.
    async fn assert_drained_and_finish(self) {
        for queue in QueueName::ALL {
            let dead = self
                .rabbit
                .dead_letters(queue, 10)
                .await
                .expect("dead letters");
            assert!(dead.is_empty(), "{}: {dead:?}", queue.dead_letter_name());
        }
        let mut subscription = self
            .rabbit
            .subscribe(QueueName::Orders, 10)
            .await
            .expect("subscribe");
        let left = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await;
        assert!(left.is_err(), "a message was left in order_queue");
        drop(subscription);
        self.rabbit.delete_topology().await.expect("cleanup");
        self.db.finish().await;
    }
}

fn quick_retries(mut settings: Settings) -> Settings {
    settings.queue.retry = aggregator_core::traits::RetryPolicy::new(vec![
        Duration::from_millis(300),
        Duration::from_millis(600),
        Duration::from_millis(900),
    ])
    .expect("policy");
    settings.vendor.vendor_breaker_open = Duration::from_secs(1);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apis_and_two_workers_sell_exactly_the_stock_of_a_thousand_racing_orders() {
    let (a, b) = vendors().await;
    assert!(a.set_quantity("LAPTOP-a-001", 300));
    let mut settings = quick_retries(settings(&[&a, &b]));
    // One sync at start, none during the race: a report that arrives after the vendor
    // took an order but before our confirmation of it counts that unit twice until the
    // next report (the conservative side: it can refuse a unit for a second, never sell
    // one twice). This test is about placements being exact across two APIs.
    settings.sync.sync_interval = Duration::from_secs(3600);
    let Some(services) = Services::connect(&settings).await else {
        return;
    };
    let first = App::on(settings.clone(), services.backends())
        .await
        .expect("app")
        .start(Roles::ALL)
        .await
        .expect("first");
    let second_roles = Roles {
        api: true,
        worker: true,
        relay: true,
        ..Roles::NONE
    };
    let second = App::on(settings.clone(), services.backends())
        .await
        .expect("app")
        .start(second_roles)
        .await
        .expect("second");
    let bases = [
        format!("http://{}", first.api_addr.expect("api")),
        format!("http://{}", second.api_addr.expect("api")),
    ];
    let http = reqwest::Client::new();
    eventually("the first sync", Duration::from_secs(15), || async {
        let product = get_json(&http, &format!("{}/api/products/LAPTOP-001", bases[1])).await;
        vendor_row(&product, "VendorA")
            .filter(|row| row["sellable"] == 300 && row["fresh"] == true)
            .map(|_| ())
    })
    .await;

    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    let mut racers = Vec::new();
    for n in 0..1_000 {
        let http = http.clone();
        let url = format!("{}/order", bases[n % 2]);
        let permits = permits.clone();
        racers.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.expect("permit");
            http.post(url)
                .json(&json!({"productId": "LAPTOP-a-001", "quantity": 1, "customerId": format!("racer-{n}")}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let (mut created, mut refused) = (0, 0);
    for racer in racers {
        match racer.await.expect("joined").expect("sent") {
            201 => created += 1,
            409 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, refused), (300, 700), "exactly the 300 units sold");
    let orders = eventually("every order confirmed", Duration::from_secs(60), || async {
        let orders = all_orders(&http, &bases[0]).await;
        (orders.len() == 300 && orders.iter().all(|o| o["status"] == "confirmed")).then_some(orders)
    })
    .await;
    assert_eq!(confirmed_units(&orders, "VendorA"), 300);
    assert_eq!(
        a.quantity("LAPTOP-a-001"),
        Some(0),
        "the vendor's stock is start minus confirmed"
    );
    assert_eq!(
        a.orders_placed(),
        300,
        "each order placed at the vendor once"
    );
    second.shutdown().await.expect("second stops cleanly");
    first.shutdown().await.expect("first stops cleanly");
    services.assert_drained_and_finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_outage_retries_then_confirms_or_fails_with_units_released() {
    let (a, b) = vendors().await;
    assert!(a.set_quantity("MOUSE-a-007", 50));
    let mut settings = quick_retries(settings(&[&a, &b]));
    // One sync at start only: this test is about orders, not about failing syncs.
    settings.sync.sync_interval = Duration::from_secs(3_600);
    let Some(services) = Services::connect(&settings).await else {
        return;
    };
    let running = App::on(settings.clone(), services.backends())
        .await
        .expect("app")
        .start(Roles::ALL)
        .await
        .expect("started");
    let base = format!("http://{}", running.api_addr.expect("api"));
    let http = reqwest::Client::new();
    eventually("the first sync", Duration::from_secs(15), || async {
        let product = get_json(&http, &format!("{base}/api/products/MOUSE-007")).await;
        // Fresh too: the rows are written before the sync marks the vendor fresh.
        vendor_row(&product, "VendorA")
            .filter(|row| row["sellable"] == 50 && row["fresh"] == true)
            .map(|_| ())
    })
    .await;
    let place = |customer: &'static str| {
        let http = http.clone();
        let url = format!("{base}/order");
        async move {
            let body: serde_json::Value = http
                .post(url)
                .json(&json!({"productId": "MOUSE-a-007", "quantity": 2, "customerId": customer}))
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            match body["orderId"].as_str() {
                Some(id) => id.to_owned(),
                None => panic!("not placed: {body}"),
            }
        }
    };
    let status_of = |id: String| {
        let http = http.clone();
        let url = format!("{base}/api/orders/{id}");
        async move {
            get_json(&http, &url).await["data"]["order"]["status"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        }
    };

    // A short outage: the worker's attempts fail, then one succeeds once it is back.
    a.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    let survivor = place("survivor").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        status_of(survivor.clone()).await,
        "reserved",
        "still retrying"
    );
    a.reset_faults();
    eventually(
        "confirmed after the outage",
        Duration::from_secs(15),
        || async { (status_of(survivor.clone()).await == "confirmed").then_some(()) },
    )
    .await;
    assert_eq!(a.quantity("MOUSE-a-007"), Some(48));

    // A long outage: after the last attempt the order fails and its units come back.
    a.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    let casualty = place("casualty").await;
    let order = eventually(
        "failed after the last attempt",
        Duration::from_secs(20),
        || async {
            let order =
                get_json(&http, &format!("{base}/api/orders/{casualty}")).await["data"]["order"]
                    .clone();
            (order["status"] == "failed").then_some(order)
        },
    )
    .await;
    assert!(
        order["failureReason"]
            .as_str()
            .unwrap_or_default()
            .contains("VendorA"),
        "{order}"
    );
    a.reset_faults();
    // Its compensation (cancel at the vendor, in case the vendor got it) goes through
    // the queue and lands once the vendor is back.
    eventually(
        "the compensation reaches the vendor",
        Duration::from_secs(15),
        || async { (a.cancellations() == 1).then_some(()) },
    )
    .await;
    let product = get_json(&http, &format!("{base}/api/products/MOUSE-007")).await;
    let at_a = vendor_row(&product, "VendorA").expect("VendorA's row");
    assert_eq!(at_a["reserved"], 0, "units released");
    assert_eq!(
        a.quantity("MOUSE-a-007"),
        Some(48),
        "nothing sold twice, nothing lost"
    );
    assert_eq!(a.orders_placed(), 1);
    running.shutdown().await.expect("stops cleanly");
    // The failed order's message went to the dead-letter queue by design; take it out
    // before checking that nothing else is left.
    let dead = services
        .rabbit
        .dead_letters(QueueName::Orders, 10)
        .await
        .expect("dlq");
    assert_eq!(dead.len(), 1, "the failed order's message");
    drain_dead_letters(&services.rabbit).await;
    services.assert_drained_and_finish().await;
}

/// Replays the dead letters and acks them away.
async fn drain_dead_letters(queue: &RabbitQueue) {
    let moved = queue
        .replay_dead_letters(QueueName::Orders, None)
        .await
        .expect("replay");
    let mut subscription = queue
        .subscribe(QueueName::Orders, 10)
        .await
        .expect("subscribe");
    for _ in 0..moved {
        let delivery = subscription.next().await.expect("delivery");
        delivery.ack().await.expect("ack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_mid_message_leaves_it_for_another_that_processes_it_once() {
    let (a, b) = vendors().await;
    let mut settings = quick_retries(settings(&[&a, &b]));
    settings.worker.grace = Duration::ZERO;
    let Some(services) = Services::connect(&settings).await else {
        return;
    };
    let api_only = Roles {
        api: true,
        relay: true,
        sync: true,
        ..Roles::NONE
    };
    let api = App::on(settings.clone(), services.backends())
        .await
        .expect("app")
        .start(api_only)
        .await
        .expect("api");
    let base = format!("http://{}", api.api_addr.expect("api"));
    let http = reqwest::Client::new();
    eventually("the first sync", Duration::from_secs(15), || async {
        let product = get_json(&http, &format!("{base}/api/products/LAPTOP-001")).await;
        (product["data"]["product"]["available"]
            .as_u64()
            .unwrap_or(0)
            > 0)
        .then_some(())
    })
    .await;
    let before = a.quantity("LAPTOP-a-001").expect("sold");
    // The vendor takes the order at once but answers slowly: the worker is stopped while
    // it waits, before it can confirm and ack.
    a.set_faults(Faults {
        latency_ms: 3_000,
        ..Faults::default()
    });
    let mut worker_settings = settings.clone();
    worker_settings.vendor.vendor_timeout = Duration::from_secs(10);
    let workers_only = Roles {
        worker: true,
        ..Roles::NONE
    };
    let doomed = App::on(worker_settings.clone(), services.backends())
        .await
        .expect("app")
        .start(workers_only)
        .await
        .expect("worker");
    let placed: serde_json::Value = http
        .post(format!("{base}/order"))
        .json(&json!({"productId": "LAPTOP-a-001", "quantity": 1, "customerId": "interrupted"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let id = placed["orderId"].as_str().expect("placed").to_owned();
    eventually(
        "the vendor has the order",
        Duration::from_secs(10),
        || async { (a.orders_placed() == 1).then_some(()) },
    )
    .await;
    doomed.shutdown().await.expect("stopped mid-message");
    let status =
        get_json(&http, &format!("{base}/api/orders/{id}")).await["data"]["order"]["status"]
            .clone();
    assert_eq!(
        status, "reserved",
        "not confirmed: the worker was stopped before"
    );
    a.reset_faults();
    let rescuer = App::on(worker_settings.clone(), services.backends())
        .await
        .expect("app")
        .start(workers_only)
        .await
        .expect("worker");
    eventually(
        "confirmed by the next worker",
        Duration::from_secs(20),
        || async {
            let order =
                get_json(&http, &format!("{base}/api/orders/{id}")).await["data"]["order"].clone();
            (order["status"] == "confirmed").then_some(())
        },
    )
    .await;
    assert_eq!(
        a.orders_placed(),
        1,
        "placed at the vendor once (the key made the retry a replay)"
    );
    assert_eq!(a.quantity("LAPTOP-a-001"), Some(before - 1));
    rescuer.shutdown().await.expect("stops");
    api.shutdown().await.expect("stops");
    services.assert_drained_and_finish().await;
}
