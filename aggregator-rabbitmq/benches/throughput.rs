//! RabbitQueue throughput next to a bare lapin loop doing the same work in the same
//! run: publishing 1 KiB persistent messages with confirms from 32 concurrent
//! publishers, and consuming them with manual acks (prefetch 100); for classic and for
//! quorum queues.
//!
//! Run: `AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo bench -p aggregator-rabbitmq --bench throughput`
//! Options after `--`: `--messages N` (default 20000).

use std::sync::Arc;
use std::time::Instant;

use aggregator_core::domain::{Message, MessageId, QueueName};
use aggregator_core::traits::OrderQueue;
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};

const PUBLISHERS: usize = 32;

fn fail<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

async fn ours_publish(queue: &RabbitQueue, messages: usize, body: &[u8]) -> f64 {
    let queue = Arc::new(queue.clone());
    let started = Instant::now();
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let queue = Arc::clone(&queue);
            let body = body.to_vec();
            tokio::spawn(async move {
                for _ in (p..messages).step_by(PUBLISHERS) {
                    let message = Message {
                        id: MessageId::new(),
                        body: body.clone(),
                    };
                    fail(queue.publish(QueueName::Orders, &message).await);
                }
            })
        })
        .collect();
    for task in tasks {
        fail(task.await);
    }
    messages as f64 / started.elapsed().as_secs_f64()
}

async fn ours_consume(queue: &RabbitQueue, messages: usize) -> f64 {
    let mut subscription = fail(queue.subscribe(QueueName::Orders, 100).await);
    let started = Instant::now();
    for _ in 0..messages {
        let delivery = fail(subscription.next().await);
        fail(delivery.ack().await);
    }
    messages as f64 / started.elapsed().as_secs_f64()
}

/// The same work with lapin alone, on a queue of its own.
async fn bare(url: &str, name: &str, quorum: bool, messages: usize, body: &[u8]) -> (f64, f64) {
    let connection = fail(Connection::connect(url, ConnectionProperties::default()).await);
    let channel = fail(connection.create_channel().await);
    fail(
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await,
    );
    let mut arguments = FieldTable::default();
    if quorum {
        arguments.insert(
            ShortString::from("x-queue-type"),
            AMQPValue::LongString(LongString::from("quorum")),
        );
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    fail(channel.queue_declare(name.into(), durable, arguments).await);
    let started = Instant::now();
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let channel = channel.clone();
            let (name, body) = (name.to_owned(), body.to_vec());
            tokio::spawn(async move {
                for _ in (p..messages).step_by(PUBLISHERS) {
                    let properties = BasicProperties::default().with_delivery_mode(2);
                    let confirm = fail(
                        channel
                            .basic_publish(
                                "".into(),
                                name.as_str().into(),
                                Default::default(),
                                &body,
                                properties,
                            )
                            .await,
                    );
                    fail(confirm.await);
                }
            })
        })
        .collect();
    for task in tasks {
        fail(task.await);
    }
    let published = messages as f64 / started.elapsed().as_secs_f64();
    let consumer_channel = fail(connection.create_channel().await);
    fail(
        consumer_channel
            .basic_qos(100, BasicQosOptions::default())
            .await,
    );
    let mut consumer = fail(
        consumer_channel
            .basic_consume(
                name.into(),
                "bench".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await,
    );
    let started = Instant::now();
    for _ in 0..messages {
        let delivery = fail(
            consumer
                .next()
                .await
                .unwrap_or_else(|| panic!("consumer ended")),
        );
        fail(delivery.acker.ack(BasicAckOptions::default()).await);
    }
    let consumed = messages as f64 / started.elapsed().as_secs_f64();
    fail(
        channel
            .queue_delete(name.into(), QueueDeleteOptions::default())
            .await,
    );
    (published, consumed)
}

#[tokio::main]
async fn main() {
    let mut messages = 20_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--messages" {
            messages = args.next().and_then(|n| n.parse().ok()).unwrap_or(messages);
        }
    }
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let body = vec![b'x'; 1024];
    println!("{messages} messages of 1 KiB, {PUBLISHERS} concurrent publishers, prefetch 100");
    println!(
        "{:<8} {:<8} {:>12} {:>12} {:>7}",
        "queues", "step", "ours msg/s", "lapin msg/s", "ratio"
    );
    for quorum in [false, true] {
        let mut config = RabbitConfig::new(url.clone());
        config.prefix = format!("bench.{}.", std::process::id());
        config.quorum = quorum;
        let queue = fail(RabbitQueue::connect(config).await);
        let published = ours_publish(&queue, messages, &body).await;
        let consumed = ours_consume(&queue, messages).await;
        fail(queue.delete_topology().await);
        let bare_name = format!("bench.{}.bare.{quorum}", std::process::id());
        let (bare_published, bare_consumed) = bare(&url, &bare_name, quorum, messages, &body).await;
        let kind = if quorum { "quorum" } else { "classic" };
        for (step, ours, theirs) in [
            ("publish", published, bare_published),
            ("consume", consumed, bare_consumed),
        ] {
            println!(
                "{kind:<8} {step:<8} {ours:>12.0} {theirs:>12.0} {:>7.2}",
                ours / theirs
            );
        }
    }
}
