//! Taking the local PostgreSQL, RabbitMQ and Redis down and up again, with the same
//! commands `.ci/run` (and the machine notes) start them with. Only the servers on
//! their default local ports are touched, and whatever happens they are started again.

use std::process::Command;
use std::time::Duration;

/// Runs `program args` and answers whether it succeeded (its output goes to a log line).
fn run(program: &str, args: &[&str]) -> bool {
    match Command::new(program).args(args).output() {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            eprintln!(
                "faults: {program} {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            false
        }
        Err(error) => {
            eprintln!("faults: {program} cannot run: {error}");
            false
        }
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

fn wait_for_port(port: u16, open: bool, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if port_open(port) == open {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Whether `url` names the local server on `port` (the only one this harness restarts).
pub(crate) fn is_local(url: &str, port: u16) -> bool {
    [format!("127.0.0.1:{port}"), format!("localhost:{port}")]
        .iter()
        .any(|host| url.contains(host.as_str()))
}

/// The local PostgreSQL cluster's version directory (e.g. `15`).
fn postgres_version() -> Option<String> {
    std::fs::read_dir("/etc/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .min()
}

/// Restarts PostgreSQL (fast shutdown: every connection is cut).
pub(crate) fn restart_postgres() -> bool {
    let Some(version) = postgres_version() else {
        return false;
    };
    let restarted = run(
        "pg_ctlcluster",
        &[
            "--skip-systemctl-redirect",
            &version,
            "main",
            "restart",
            "-m",
            "fast",
        ],
    );
    restarted && wait_for_port(5432, true, Duration::from_secs(60))
}

/// Stops the RabbitMQ application (every connection is cut; durable queues stay).
pub(crate) fn stop_rabbitmq() -> bool {
    run("rabbitmqctl", &["stop_app"]) && wait_for_port(5672, false, Duration::from_secs(30))
}

/// Starts the RabbitMQ application again.
pub(crate) fn start_rabbitmq() -> bool {
    run("rabbitmqctl", &["start_app"]) && wait_for_port(5672, true, Duration::from_secs(60))
}

/// Shuts Redis down.
pub(crate) fn stop_redis() -> bool {
    // `shutdown` closes the connection it came on, so the command itself "fails".
    let _ = Command::new("redis-cli")
        .args(["-p", "6379", "shutdown", "nosave"])
        .output();
    wait_for_port(6379, false, Duration::from_secs(10))
}

/// Starts Redis as the machine starts it.
pub(crate) fn start_redis() -> bool {
    if port_open(6379) {
        return true;
    }
    let _ = std::fs::create_dir_all("/var/lib/redis");
    let _ = std::fs::create_dir_all("/var/log/redis");
    let started = run(
        "redis-server",
        &[
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ],
    );
    started && wait_for_port(6379, true, Duration::from_secs(10))
}

/// Makes sure all three are up again (after a case, or when the harness unwinds).
pub(crate) fn ensure_up() {
    if !port_open(6379) {
        start_redis();
    }
    if !port_open(5672) {
        start_rabbitmq();
    }
    if !port_open(5432)
        && let Some(version) = postgres_version()
    {
        run(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", &version, "main", "start"],
        );
        wait_for_port(5432, true, Duration::from_secs(60));
    }
}

/// Starts whatever is down when dropped, however the case ends.
#[derive(Debug)]
pub(crate) struct EnsureUp;

impl Drop for EnsureUp {
    fn drop(&mut self) {
        ensure_up();
    }
}
