//! Operations: on-demand stock sync and dead letters.

use aggregator_core::domain::{Message, QueueName, SyncRequest};
use aggregator_core::traits::OrderQueue;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{TestApp, assert_problem};

#[tokio::test]
async fn stock_sync_queues_one_request_per_vendor_or_for_one() {
    let app = TestApp::open().await;
    let (status, all) = app
        .call(Method::POST, "/api/ops/stock-sync", None, &[])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{all}");
    assert_eq!(all["data"]["queued"], json!(["VendorA", "VendorB"]));
    let (status, one) = app
        .post("/api/ops/stock-sync", &json!({"vendor": "VendorB"}))
        .await;
    assert_eq!(
        (status, one["data"]["queued"].clone()),
        (StatusCode::ACCEPTED, json!(["VendorB"]))
    );
    let (status, problem) = app
        .post("/api/ops/stock-sync", &json!({"vendor": "VendorZ"}))
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not-found");
    let mut subscription = app
        .queue
        .subscribe(QueueName::StockSync, 10)
        .await
        .expect("subscribe");
    let mut vendors = Vec::new();
    for _ in 0..3 {
        let delivery = subscription.next().await.expect("delivery");
        vendors.push(
            delivery
                .message
                .decode::<SyncRequest>()
                .expect("request")
                .vendor
                .to_string(),
        );
        delivery.ack().await.expect("ack");
    }
    assert_eq!(vendors, ["VendorA", "VendorB", "VendorB"]);
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed() {
    let app = TestApp::open().await;
    let message = Message::json(
        &json!({"type": "processOrder", "order": "01a211db-cf0d-71ed-bf5a-7f2a6038e505"}),
    )
    .expect("message");
    app.queue
        .publish(QueueName::Orders, &message)
        .await
        .expect("publish");
    let mut subscription = app
        .queue
        .subscribe(QueueName::Orders, 1)
        .await
        .expect("subscribe");
    let delivery = subscription.next().await.expect("delivery");
    delivery
        .dead_letter("vendor refused for good")
        .await
        .expect("dead-lettered");
    drop(subscription);
    let (status, list) = app.get("/api/ops/dlq/order_queue").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let letter = &list["data"]["deadLetters"][0];
    assert_eq!(letter["messageId"], message.id.to_string());
    assert_eq!(letter["reason"], "vendor refused for good");
    assert_eq!(letter["body"]["type"], "processOrder");
    let (_, empty) = app.get("/api/ops/dlq/stock_sync_queue").await;
    assert_eq!(empty["data"]["deadLetters"], json!([]));
    let (status, problem) = app
        .post(
            "/api/ops/dlq/order_queue/replay",
            &json!({"messageId": "nope"}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "validation");
    let (status, replayed) = app
        .post(
            "/api/ops/dlq/order_queue/replay",
            &json!({"messageId": message.id.to_string()}),
        )
        .await;
    assert_eq!(
        (status, replayed["data"]["replayed"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (_, after) = app.get("/api/ops/dlq/order_queue").await;
    assert_eq!(after["data"]["deadLetters"], json!([]));
    let mut subscription = app
        .queue
        .subscribe(QueueName::Orders, 1)
        .await
        .expect("subscribe");
    let back = subscription.next().await.expect("back in the queue");
    assert_eq!(back.message.id, message.id);
    assert_eq!(back.attempt, 1);
}
