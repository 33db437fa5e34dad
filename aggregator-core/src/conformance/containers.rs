//! Services in containers, for machines with a Docker engine and no services of their
//! own (feature `testcontainers`).
//!
//! When a test asks for `DATABASE_URL`, `AMQP_URL` or `REDIS_URL` and the variable is
//! unset, [`url_for`] starts a PostgreSQL, RabbitMQ or Redis container once per test
//! process and answers its URL. The images are the official `postgres:16-alpine`,
//! `rabbitmq:4.1-management` and `redis:7` unless `AGGREGATOR_POSTGRES_IMAGE`,
//! `AGGREGATOR_RABBITMQ_IMAGE` or `AGGREGATOR_REDIS_IMAGE` name others (where no registry
//! is reachable, `scripts/local-images.sh` builds stand-ins from Debian's packages and
//! prints those variables). Any image that starts the way the official ones do works:
//! the same environment, and the same log line when ready.
//!
//! The containers are marked for reuse: they keep running after the tests, and the next
//! run (of any test binary) uses the same ones instead of starting more. Remove them with
//! `docker rm -f order-aggregator-test-postgres order-aggregator-test-rabbitmq order-aggregator-test-redis`.

use std::sync::OnceLock;
use std::time::Duration;

use testcontainers::core::wait::LogWaitStrategy;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt, ReuseDirective};

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

    /// The variable naming this service's image, and the official image used without it.
    fn image_setting(self) -> (&'static str, &'static str) {
        match self {
            Self::Postgres => ("AGGREGATOR_POSTGRES_IMAGE", "postgres:16-alpine"),
            Self::RabbitMq => ("AGGREGATOR_RABBITMQ_IMAGE", "rabbitmq:4.1-management"),
            Self::Redis => ("AGGREGATOR_REDIS_IMAGE", "redis:7"),
        }
    }

    /// The image to start: its setting when set, else the official one.
    fn image(self) -> String {
        let (variable, official) = self.image_setting();
        std::env::var(variable)
            .ok()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| official.to_owned())
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

/// Splits `name[:tag]` into its name and tag (`latest` when none); a registry's port
/// (`host:5000/name`) is part of the name.
fn name_and_tag(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

/// Starts `image` as the reusable container `name`, waits until it wrote every line of
/// `ready` and answers where its `port` is reachable from here.
async fn run(
    image: &str,
    ready: Vec<LogWaitStrategy>,
    env: &[(&str, &str)],
    name: &str,
    port: u16,
) -> Result<(String, u16), String> {
    let text = |e: testcontainers::TestcontainersError| e.to_string();
    let (image_name, tag) = name_and_tag(image);
    let mut image = GenericImage::new(image_name, tag).with_exposed_port(port.tcp());
    for line in ready {
        image = image.with_wait_for(WaitFor::Log(line));
    }
    let mut request = image
        .with_container_name(name)
        .with_reuse(ReuseDirective::Always)
        .with_startup_timeout(STARTUP);
    for (key, value) in env {
        request = request.with_env_var(*key, *value);
    }
    let container = request.start().await.map_err(text)?;
    let host = container.get_host().await.map_err(text)?;
    let port = container.get_host_port_ipv4(port).await.map_err(text)?;
    Ok((host.to_string(), port))
}

async fn start(service: Service) -> Result<String, String> {
    let image = service.image();
    Ok(match service {
        Service::Postgres => {
            // A first start sets the cluster up on a server of its own, whose log
            // pg_ctl sends to standard output; the real server then logs to standard
            // error.
            let line = "database system is ready to accept connections";
            let ready = vec![LogWaitStrategy::stdout(line), LogWaitStrategy::stderr(line)];
            let env = [("POSTGRES_PASSWORD", "postgres")];
            let (host, port) =
                run(&image, ready, &env, "order-aggregator-test-postgres", 5432).await?;
            format!("postgres://postgres:postgres@{host}:{port}/postgres")
        }
        Service::RabbitMq => {
            let ready = vec![LogWaitStrategy::stdout("Server startup complete")];
            let (host, port) =
                run(&image, ready, &[], "order-aggregator-test-rabbitmq", 5672).await?;
            format!("amqp://guest:guest@{host}:{port}/%2f")
        }
        Service::Redis => {
            let ready = vec![LogWaitStrategy::stdout("Ready to accept connections")];
            let (host, port) = run(&image, ready, &[], "order-aggregator-test-redis", 6379).await?;
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

    #[test]
    fn image_names_split_into_name_and_tag() {
        assert_eq!(
            name_and_tag("postgres:16-alpine"),
            ("postgres", "16-alpine")
        );
        assert_eq!(
            name_and_tag("aggregator-local/redis:7"),
            ("aggregator-local/redis", "7")
        );
        assert_eq!(name_and_tag("redis"), ("redis", "latest"));
        assert_eq!(
            name_and_tag("registry.local:5000/rabbitmq"),
            ("registry.local:5000/rabbitmq", "latest")
        );
    }
}
