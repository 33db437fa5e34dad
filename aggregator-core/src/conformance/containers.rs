//! Services in containers, for machines with a Docker engine and no services of their
//! own (feature `testcontainers`).
//!
//! When a test asks for `DATABASE_URL`, `AMQP_URL` or `REDIS_URL` and the variable is
//! unset, [`url_for`] starts PostgreSQL 16, RabbitMQ 4.1 or Redis 7 once per test
//! process and answers its URL. The containers are marked for reuse: they keep running
//! after the tests, and the next run (of any test binary) uses the same ones instead of
//! starting more. Remove them with
//! `docker rm -f order-aggregator-test-postgres order-aggregator-test-rabbitmq order-aggregator-test-redis`.

use std::sync::OnceLock;
use std::time::Duration;

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, Image, ImageExt, ReuseDirective};
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::redis::{REDIS_PORT, Redis};

/// How long a container may take to become ready (the first run also pulls its image).
const STARTUP: Duration = Duration::from_secs(300);

/// A service a test can ask for by its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Postgres,
    RabbitMq,
    Redis,
}

impl Service {
    fn of(variable: &str) -> Option<Self> {
        match variable {
            "DATABASE_URL" => Some(Self::Postgres),
            "AMQP_URL" => Some(Self::RabbitMq),
            "REDIS_URL" => Some(Self::Redis),
            _ => None,
        }
    }

    fn started(self) -> &'static OnceLock<Option<String>> {
        static POSTGRES: OnceLock<Option<String>> = OnceLock::new();
        static RABBITMQ: OnceLock<Option<String>> = OnceLock::new();
        static REDIS: OnceLock<Option<String>> = OnceLock::new();
        match self {
            Self::Postgres => &POSTGRES,
            Self::RabbitMq => &RABBITMQ,
            Self::Redis => &REDIS,
        }
    }
}

/// Whether a Docker engine looks reachable: `DOCKER_HOST` is set or the default socket
/// exists. (A client without an engine, as on our CI machines, is not enough.)
pub fn engine_reachable() -> bool {
    std::env::var_os("DOCKER_HOST").is_some_and(|host| !host.is_empty())
        || std::path::Path::new("/var/run/docker.sock").exists()
}

/// The URL of a container serving `variable`'s service, started on first use; `None`
/// when the variable names no such service, no engine is reachable, or the container
/// could not start (the reason is printed).
pub fn url_for(variable: &str) -> Option<String> {
    let service = Service::of(variable)?;
    if !engine_reachable() {
        return None;
    }
    service
        .started()
        .get_or_init(|| {
            // Started on a thread of its own: the caller is usually inside a Tokio
            // runtime already, where another cannot be blocked on.
            let started = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(start(service))
            })
            .join()
            .unwrap_or_else(|_| Err("the container thread panicked".to_owned()));
            match started {
                Ok(url) => Some(url),
                Err(why) => {
                    use std::io::Write as _;
                    let _ = writeln!(
                        std::io::stderr(),
                        "could not start a container for {variable}: {why}"
                    );
                    None
                }
            }
        })
        .clone()
}

/// Starts `image` as the reusable container `name` and answers where its `port` is
/// reachable from here.
async fn run<I: Image>(
    image: I,
    tag: &str,
    name: &str,
    port: u16,
) -> Result<(String, u16), String> {
    let text = |e: testcontainers::TestcontainersError| e.to_string();
    let container = image
        .with_tag(tag)
        .with_container_name(name)
        .with_reuse(ReuseDirective::Always)
        .with_startup_timeout(STARTUP)
        .start()
        .await
        .map_err(text)?;
    let host = container.get_host().await.map_err(text)?;
    let port = container.get_host_port_ipv4(port).await.map_err(text)?;
    Ok((host.to_string(), port))
}

async fn start(service: Service) -> Result<String, String> {
    Ok(match service {
        Service::Postgres => {
            let (host, port) = run(
                Postgres::default(),
                "16-alpine",
                "order-aggregator-test-postgres",
                5432,
            )
            .await?;
            format!("postgres://postgres:postgres@{host}:{port}/postgres")
        }
        Service::RabbitMq => {
            // The community module waits for a plugin count that differs between
            // RabbitMQ versions; the start-up line itself does not.
            let image = GenericImage::new("rabbitmq", "4.1-management")
                .with_exposed_port(5672.tcp())
                .with_wait_for(WaitFor::message_on_stdout("Server startup complete"));
            let (host, port) = run(
                image,
                "4.1-management",
                "order-aggregator-test-rabbitmq",
                5672,
            )
            .await?;
            format!("amqp://guest:guest@{host}:{port}/%2f")
        }
        Service::Redis => {
            let (host, port) = run(
                Redis::default(),
                "7",
                "order-aggregator-test-redis",
                REDIS_PORT,
            )
            .await?;
            format!("redis://{host}:{port}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_service_variables_start_containers() {
        assert_eq!(Service::of("DATABASE_URL"), Some(Service::Postgres));
        assert_eq!(Service::of("AMQP_URL"), Some(Service::RabbitMq));
        assert_eq!(Service::of("REDIS_URL"), Some(Service::Redis));
        assert_eq!(Service::of("HOME"), None);
        assert_eq!(url_for("HOME"), None);
    }
}
