//! The whole system in one process on in-memory backends.

use std::time::Duration;

use order_aggregator::app::App;
use order_aggregator::stack::Roles;
use serde_json::json;

use super::support::{
    all_orders, confirmed_units, eventually, get_json, memory_backends, settings, vendors,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_over_http_are_confirmed_and_the_vendors_stock_drops_by_exactly_that() {
    let (a, b) = vendors().await;
    let settings = settings(&[&a, &b]);
    let running = App::on(settings.clone(), memory_backends())
        .await
        .expect("app")
        .start(Roles::ALL)
        .await
        .expect("started");
    let base = format!("http://{}", running.api_addr.expect("api"));
    let http = reqwest::Client::new();
    let before_a = a.quantity("LAPTOP-a-001").expect("sold");
    let before_b = b.quantity("LAPTOP-b-001").expect("sold");
    let total = before_a + before_b;
    eventually("the first sync", Duration::from_secs(10), || async {
        let product = get_json(&http, &format!("{base}/api/products/LAPTOP-001")).await;
        (product["data"]["product"]["available"].as_i64() == Some(total)).then_some(())
    })
    .await;

    // More orders than stock, one unit each, some as the seed's simple order.
    let mut created = 0;
    let mut refused = 0;
    for n in 0..(total + 5) {
        let response = if n % 2 == 0 {
            http.post(format!("{base}/order"))
                .json(&json!({"productId": "LAPTOP-001", "quantity": 1, "customerId": format!("c{n}")}))
                .send()
                .await
        } else {
            http.post(format!("{base}/api/orders"))
                .json(&json!({"customerId": format!("c{n}"), "items": [{"sku": "LAPTOP-001", "quantity": 1}]}))
                .send()
                .await
        }
        .expect("sent");
        match response.status().as_u16() {
            201 => created += 1,
            409 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, refused), (total, 5));
    let orders = eventually("every order confirmed", Duration::from_secs(20), || async {
        let orders = all_orders(&http, &base).await;
        orders
            .iter()
            .all(|o| o["status"] == "confirmed")
            .then_some(orders)
    })
    .await;
    assert_eq!(orders.len() as i64, total);
    let at_a = confirmed_units(&orders, "VendorA");
    let at_b = confirmed_units(&orders, "VendorB");
    assert_eq!(at_a + at_b, total);
    assert_eq!(
        a.quantity("LAPTOP-a-001"),
        Some(before_a - at_a),
        "VendorA dropped by what it confirmed"
    );
    assert_eq!(
        b.quantity("LAPTOP-b-001"),
        Some(before_b - at_b),
        "VendorB dropped by what it confirmed"
    );
    assert_eq!(
        a.orders_placed() + b.orders_placed(),
        orders.len(),
        "one vendor order per order"
    );
    running.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_sync_command_talks_to_a_running_stack_with_api() {
    let (a, b) = vendors().await;
    let settings = settings(&[&a, &b]);
    let running = App::on(settings.clone(), memory_backends())
        .await
        .expect("app")
        .start(Roles::ALL)
        .await
        .expect("started");
    let base = format!("http://{}", running.api_addr.expect("api"));
    let http = reqwest::Client::new();
    let total =
        a.quantity("LAPTOP-a-001").expect("sold") + b.quantity("LAPTOP-b-001").expect("sold");
    eventually("the first sync", Duration::from_secs(10), || async {
        let product = get_json(&http, &format!("{base}/api/products/LAPTOP-001")).await;
        (product["data"]["product"]["available"].as_i64() == Some(total)).then_some(())
    })
    .await;
    let run = |args: Vec<&str>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stock-sync"));
        command
            .args(args)
            .env("AGGREGATOR_LOG_DIR", "none")
            .env_remove("DATABASE_URL")
            .env_remove("AMQP_URL");
        command.env(
            "AGGREGATOR_VENDORS",
            format!("VendorA={},VendorB={}", a.base_url(), b.base_url()),
        );
        async move {
            let output = command.output().await.expect("runs");
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
            )
        }
    };
    let (code, out) = run(vec!["all", "--api", &base]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("VendorA: sync requested") && out.contains("VendorB: sync requested"),
        "{out}"
    );
    let (code, out) = run(vec!["vendor", "VendorB", "--api", &base]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("VendorB: sync requested") && !out.contains("VendorA"),
        "{out}"
    );
    let (code, out) = run(vec!["aggregate", "--api", &base]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("LAPTOP-001\tavailable {total}\t")),
        "{out}"
    );
    assert!(out.contains("10 product(s)"), "{out}");
    running.shutdown().await.expect("clean shutdown");
}
