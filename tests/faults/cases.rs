//! The cases: what each one does to the running system while the clients shop.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use aggregator_core::domain::{Message, OrderMessage, QueueName};
use aggregator_core::traits::OrderQueue;
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};
use mock_vendors::Faults;

use crate::cluster::{Layout, World, retry_policy};
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
        inject: |_, _, load| Box::pin(async move { sleep(load).await }),
    },
    Case {
        name: "kill-worker",
        what: "kill -9 of a worker process, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["worker-1", "worker-2"], load)),
    },
    Case {
        name: "kill-api",
        what: "kill -9 of the API process, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["api"], load)),
    },
    Case {
        name: "kill-relay",
        what: "kill -9 of the outbox relay, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["relay"], load)),
    },
    Case {
        name: "kill-sweeper",
        what: "kill -9 of the sweeper, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["sweeper"], load)),
    },
    Case {
        name: "kill-sync",
        what: "kill -9 of the stock sync, three times, each started again",
        restarts_services: false,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(kill_repeatedly(world, &["sync"], load)),
    },
    Case {
        name: "rabbitmq-restart",
        what: "RabbitMQ stopped for 3 s, then started again",
        restarts_services: true,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(rabbitmq_restart(world, load)),
    },
    Case {
        name: "postgres-restart",
        what: "PostgreSQL restarted (fast shutdown: every connection cut)",
        restarts_services: true,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(postgres_restart(world, load)),
    },
    Case {
        name: "redis-down",
        what: "Redis shut down for 3 s, then started again",
        restarts_services: true,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(redis_down(world, load)),
    },
    Case {
        name: "vendor-latency",
        what: "both vendors answer 400 ms late",
        restarts_services: false,
        layout: Layout::OneHost,
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
        inject: |world, _, load| Box::pin(vendor_outage(world, load)),
    },
    Case {
        name: "malformed-feed",
        what: "VendorB sends bodies cut in half and negative stock for 4 s",
        restarts_services: false,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(malformed_feed(world, load)),
    },
    Case {
        name: "clock-skew",
        what: "VendorA's feed 3 s ahead and its orders 1 s behind; VendorB's feed an hour ahead for 4 s",
        restarts_services: false,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(clock_skew(world, load)),
    },
    Case {
        name: "lost-answers",
        what: "both vendors place 30% of orders and then break the connection",
        restarts_services: false,
        layout: Layout::OneHost,
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
        inject: |world, view, load| Box::pin(duplicates(world, view, load)),
    },
    Case {
        name: "partition",
        what: "worker-1 cut off from RabbitMQ for 10 s (its messages go to worker-2 meanwhile)",
        restarts_services: false,
        layout: Layout::OneHost,
        inject: |world, _, load| Box::pin(partition(world, load)),
    },
    Case {
        name: "hosts",
        what: "two API hosts and two worker hosts in network namespaces: an API host dies (kill -9 of all it runs), then a worker host is cut off from everything",
        restarts_services: false,
        layout: Layout::FourHosts,
        inject: |world, view, load| Box::pin(hosts_fail(world, view, load)),
    },
    Case {
        name: "everything",
        what: "all of the above at once",
        restarts_services: true,
        layout: Layout::OneHost,
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
    let mut config = RabbitConfig::new(world.amqp_url().to_owned());
    config.prefix = world.queue_prefix.clone();
    config.retry = retry_policy();
    let queue = RabbitQueue::connect(config)
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
