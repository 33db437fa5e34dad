//! The README's curl tour, request for request, against the system on in-memory
//! backends (on free ports instead of 3000-3002).

use std::time::Duration;

use order_aggregator::app::App;
use order_aggregator::stack::Roles;
use serde_json::{Value, json};

use super::support::{eventually, get_json, memory_backends, settings, vendors};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_tour_works_as_written() {
    let (a, b) = vendors().await;
    let running = App::on(settings(&[&a, &b]), memory_backends())
        .await
        .expect("app")
        .start(Roles::ALL)
        .await
        .expect("started");
    let api = format!("http://{}", running.api_addr.expect("api"));
    let http = reqwest::Client::new();
    eventually(
        "the first sync of both vendors",
        Duration::from_secs(10),
        || async {
            let laptop = get_json(&http, &format!("{api}/api/products/LAPTOP-001")).await;
            let vendors = laptop["data"]["product"]["vendors"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (vendors.len() == 2 && vendors.iter().all(|v| v["fresh"] == true)).then_some(())
        },
    )
    .await;
    let health = get_json(&http, &format!("{api}/health")).await;
    assert_eq!(health["status"], "ok", "{health}");
    let post = |path: String, body: Value| {
        let http = http.clone();
        async move {
            let response = http
                .post(path)
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    let (status, simple) = post(
        format!("{api}/order"),
        json!({"productId": "LAPTOP-001", "quantity": 1, "customerId": "test"}),
    )
    .await;
    assert_eq!(status, 201, "{simple}");
    assert_eq!(
        (simple["success"].clone(), simple["orderId"].is_string()),
        (json!(true), true)
    );

    let (status, full) = post(
        format!("{api}/api/orders"),
        json!({
            "customerId": "customer-123",
            "customerEmail": "customer@example.com",
            "items": [
                {"sku": "LAPTOP-a-001", "quantity": 2, "unitPrice": 999.99},
                {"sku": "SMARTPHONE-b-002", "quantity": 1, "unitPrice": 599.99}
            ],
            "shippingAddress": {"street": "123 Main St", "city": "Boston", "state": "MA", "zipCode": "02101", "country": "USA"},
            "paymentMethod": "credit_card",
            "notes": "Urgent delivery required"
        }),
    )
    .await;
    assert_eq!(status, 201, "the seed's example body as written: {full}");
    let id = full["orderId"].as_str().expect("id").to_owned();

    let list = get_json(&http, &format!("{api}/api/orders")).await;
    assert_eq!(list["data"]["pagination"]["total"], 2);
    eventually("confirmed by a worker", Duration::from_secs(10), || async {
        let confirmed = get_json(
            &http,
            &format!("{api}/api/orders?page=1&limit=20&status=confirmed"),
        )
        .await;
        (confirmed["data"]["pagination"]["total"] == 2).then_some(())
    })
    .await;
    let one = get_json(&http, &format!("{api}/api/orders/{id}")).await;
    assert_eq!(one["data"]["order"]["status"], "confirmed");
    let (status, cancelled) = post(
        format!("{api}/api/orders/{id}/cancel"),
        json!({"reason": "Customer requested cancellation"}),
    )
    .await;
    assert_eq!(
        (status, cancelled["data"]["order"]["status"].clone()),
        (200, json!("cancelled"))
    );

    let vendors_view = get_json(&http, &format!("{api}/api/vendors")).await;
    assert_eq!(vendors_view["data"]["vendors"][0]["health"], "healthy");
    assert_eq!(
        get_json(&http, &format!("{}/health", a.base_url())).await["status"],
        "ok"
    );
    let stock = get_json(&http, &format!("{}/stock", b.base_url())).await;
    assert_eq!(
        (stock[0]["sku"].clone(), stock.as_array().map(Vec::len)),
        (json!("LAPTOP-b-001"), Some(10))
    );
    assert_eq!(
        get_json(&http, &format!("{}/info", a.base_url())).await["name"],
        "Vendor A"
    );
    let (status, _) = post(format!("{}/simulate/fluctuation", a.base_url()), json!({})).await;
    assert_eq!(status, 200);

    let mut load = Vec::new();
    for i in 1..=10 {
        load.push(post(
            format!("{api}/api/orders"),
            json!({"customerId": format!("load-test-{i}"), "items": [{"sku": "LAPTOP-a-001", "quantity": 1}]}),
        ));
    }
    for (status, body) in futures_join(load).await {
        assert!(status == 201 || status == 409, "{status}: {body}");
    }
    running.shutdown().await.expect("clean shutdown");
}

async fn futures_join<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(
    futures: Vec<F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("joined"));
    }
    results
}
