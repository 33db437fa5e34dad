//! One case's world: a database, queue names and cache keys of its own, two mock
//! vendors, the `aggregator` processes, and the steps of a case (start, load and fault,
//! heal, settle, audit, tear down).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aggregator_postgres::testing::TestDatabase;
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};
use mock_vendors::{MockVendor, MockVendorConfig};
use tokio::process::{Child, Command};

use crate::audit::{Audit, Report};
use crate::cases::Case;
use crate::hosts::Hosts;
use crate::load::{self, Ledger};
use crate::proxy::Proxy;
use crate::services;

/// Where RabbitMQ and Redis are (each case makes a PostgreSQL database of its own from
/// `DATABASE_URL`).
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    pub(crate) amqp: String,
    pub(crate) redis: String,
}

/// The products the clients buy, and the units each vendor starts with.
pub(crate) const PRODUCTS: [(&str, &str, &str, i64, i64); 3] = [
    ("LAPTOP-001", "LAPTOP-a-001", "LAPTOP-b-001", 60, 40),
    ("TABLET-003", "TABLET-a-003", "TABLET-b-003", 50, 30),
    ("MOUSE-007", "MOUSE-a-007", "MOUSE-b-007", 40, 40),
];

/// How many clients place orders at once.
pub(crate) const CLIENTS: usize = 12;

/// The retry delays of the processes (short, so that a case settles in seconds).
const RETRY_DELAYS_MS: &str = "200,500,1000,2000,4000";

/// How long the orders hold their units before they expire.
pub(crate) const RESERVATION_TTL_SECS: u64 = 25;

/// The processes of a case, by name: (name, part of the `aggregator` binary).
pub(crate) const PROCESSES: [(&str, &str); 6] = [
    ("api", "api"),
    ("relay", "relay"),
    ("sweeper", "sweeper"),
    ("sync", "sync"),
    ("worker-1", "worker"),
    ("worker-2", "worker"),
];

/// Where a case's processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// [`PROCESSES`], all on this machine's loopback.
    OneHost,
    /// Four hosts in network namespaces (see [`HOSTS`]): two API hosts behind which
    /// the clients spread their requests, and two worker hosts.
    FourHosts,
}

/// The processes of [`Layout::FourHosts`]: (name, part, host).
pub(crate) const HOSTS: [(&str, &str, usize); 8] = [
    ("api", "api", 0),
    ("relay", "relay", 0),
    ("sweeper", "sweeper", 0),
    ("sync", "sync", 0),
    ("api-2", "api", 1),
    ("relay-2", "relay", 1),
    ("worker-1", "worker", 2),
    ("worker-2", "worker", 3),
];

/// A running case.
pub(crate) struct World {
    pub(crate) name: String,
    pub(crate) db: TestDatabase,
    urls: Urls,
    pub(crate) queue_prefix: String,
    cache_prefix: String,
    pub(crate) vendors: Vec<MockVendor>,
    /// (vendor, SKU) → units at the start.
    pub(crate) initial: BTreeMap<(String, String), i64>,
    api_port: u16,
    pub(crate) api_base: String,
    /// Every API's base URL (the clients spread over them and move on when one fails).
    pub(crate) api_bases: Vec<String>,
    /// The processes: (name, part, host index when the layout has hosts).
    plan: Vec<(&'static str, &'static str, Option<usize>)>,
    /// The hosts, in a layout that has them.
    pub(crate) network: Option<Hosts>,
    pub(crate) admin_key: String,
    /// (customer, key) of every client.
    pub(crate) clients: Vec<(String, String)>,
    /// worker-1 reaches RabbitMQ through this (so that it can be cut off).
    pub(crate) worker_link: Proxy,
    processes: BTreeMap<String, Child>,
    pub(crate) logs: PathBuf,
    /// What was done to the world, for the report.
    pub(crate) injected: Vec<String>,
    /// Settings of this case for every process (over the harness's own).
    settings: &'static [(&'static str, &'static str)],
    /// Vendors whose own rate limit a case turned on: the audit counts the seconds in
    /// which one received more.
    pub(crate) vendor_limits: BTreeMap<String, u64>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").field("name", &self.name).finish()
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `url` with its host and port replaced by `addr` and a short heartbeat, so a cut
/// connection is noticed in seconds.
fn through(url: &str, addr: std::net::SocketAddr) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (credentials, rest) = rest.rsplit_once('@').map_or(("", rest), |(c, r)| (c, r));
    let path = rest.find('/').map_or("/%2f", |at| &rest[at..]);
    let at = if credentials.is_empty() { "" } else { "@" };
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("amqp://{credentials}{at}{addr}{path}{sep}heartbeat=3")
}

impl World {
    async fn start(
        name: &str,
        urls: &Urls,
        layout: Layout,
        settings: &'static [(&'static str, &'static str)],
    ) -> Result<Self, String> {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let db = TestDatabase::create(8)
            .await
            .ok_or("DATABASE_URL is not set")?;
        let mut vendors = Vec::new();
        let mut initial = BTreeMap::new();
        for (id, column) in [("VendorA", 0), ("VendorB", 1)] {
            let vendor = MockVendor::spawn_local(MockVendorConfig::new(id))
                .await
                .map_err(|e| format!("{id}: {e}"))?;
            for (_, sku_a, sku_b, units_a, units_b) in PRODUCTS {
                let (sku, units) = if column == 0 {
                    (sku_a, units_a)
                } else {
                    (sku_b, units_b)
                };
                vendor.set_quantity(sku, units);
                initial.insert((id.to_owned(), sku.to_owned()), units);
            }
            vendors.push(vendor);
        }
        let amqp_addr = service_addr(&urls.amqp, 5672)?;
        let worker_link = Proxy::start(amqp_addr)
            .await
            .map_err(|e| format!("proxy: {e}"))?;
        let api_port = free_port().map_err(|e| e.to_string())?;
        let (plan, network, api_bases) = match layout {
            Layout::OneHost => (
                PROCESSES
                    .iter()
                    .map(|(name, part)| (*name, *part, None))
                    .collect::<Vec<_>>(),
                None,
                vec![format!("http://127.0.0.1:{api_port}")],
            ),
            Layout::FourHosts => {
                let mut vendor_addrs = Vec::new();
                for vendor in &vendors {
                    vendor_addrs.push((
                        vendor.id().to_owned(),
                        service_addr(&vendor.base_url(), 80)?,
                    ));
                }
                let hosts = Hosts::create(
                    4,
                    service_addr(db.config().url.expose(), 5432)?,
                    amqp_addr,
                    service_addr(&urls.redis, 6379)?,
                    &vendor_addrs,
                )
                .await?;
                let bases = [0, 1]
                    .iter()
                    .map(|&i| format!("http://{}:{api_port}", hosts.hosts[i].address))
                    .collect();
                (
                    HOSTS
                        .iter()
                        .map(|(name, part, host)| (*name, *part, Some(*host)))
                        .collect(),
                    Some(hosts),
                    bases,
                )
            }
        };
        let clients = (0..CLIENTS)
            .map(|n| (format!("client-{n}"), format!("key-{unique}-{n}")))
            .collect();
        let logs =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("faults-{name}-{unique}"));
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        Ok(Self {
            name: name.to_owned(),
            db,
            urls: urls.clone(),
            queue_prefix: format!("faults.{unique}."),
            cache_prefix: format!("faults:{unique}:"),
            vendors,
            initial,
            api_port,
            api_base: api_bases[0].clone(),
            api_bases,
            plan,
            network,
            admin_key: format!("admin-{unique}"),
            clients,
            worker_link,
            processes: BTreeMap::new(),
            logs,
            injected: Vec::new(),
            settings,
            vendor_limits: BTreeMap::new(),
        })
    }

    /// A client's customer and key, as the clients use them.
    pub(crate) fn client(&self, n: usize) -> (&str, &str) {
        let (customer, key) = &self.clients[n % self.clients.len()];
        (customer, key)
    }

    /// The queue settings of this case's processes (their prefix, retry delays and
    /// delivery limit), to reach their queues directly.
    pub(crate) fn rabbit_config(&self) -> RabbitConfig {
        let mut config = RabbitConfig::new(self.urls.amqp.clone());
        config.prefix = self.queue_prefix.clone();
        config.retry = retry_policy();
        if let Some(limit) = self
            .settings
            .iter()
            .find(|(name, _)| *name == "AGGREGATOR_QUEUE_DELIVERY_LIMIT")
            .and_then(|(_, value)| value.parse::<u32>().ok())
        {
            config.delivery_limit = (limit > 0).then_some(limit);
        }
        config
    }

    /// The vendor with this id.
    pub(crate) fn vendor(&self, id: &str) -> &MockVendor {
        match self.vendors.iter().find(|v| v.id() == id) {
            Some(vendor) => vendor,
            None => panic!("no vendor {id}"),
        }
    }

    fn command(&self, name: &str, part: &str, host: Option<usize>) -> Result<Command, String> {
        let binary = env!("CARGO_BIN_EXE_aggregator");
        let on_host = host.and_then(|i| {
            let network = self.network.as_ref()?;
            Some((network.hosts.get(i)?, network.uplinks.get(i)?))
        });
        let mut command = match on_host {
            Some((host, _)) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", host.namespace.as_str(), binary]);
                command
            }
            None => Command::new(binary),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))
            .map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let database = self.db.config().url.expose().to_owned();
        let (database, amqp, redis, api_addr) = match on_host {
            // Inside a host: everything through its link.
            Some((host, uplinks)) => (
                rehost(&database, uplinks.postgres.addr()),
                through(&self.urls.amqp, uplinks.rabbitmq.addr()),
                rehost(&self.urls.redis, uplinks.redis.addr()),
                format!("{}:{}", host.address, self.api_port),
            ),
            None => (
                database,
                if name == "worker-1" {
                    through(&self.urls.amqp, self.worker_link.addr())
                } else {
                    self.urls.amqp.clone()
                },
                self.urls.redis.clone(),
                format!("127.0.0.1:{}", self.api_port),
            ),
        };
        let keys: Vec<String> = std::iter::once(format!("admin:{}", self.admin_key))
            .chain(
                self.clients
                    .iter()
                    .map(|(customer, key)| format!("client:{customer}:{key}")),
            )
            .collect();
        let vendors: Vec<String> = self
            .vendors
            .iter()
            .map(|v| {
                let through = on_host.and_then(|(_, uplinks)| {
                    uplinks
                        .vendors
                        .iter()
                        .find(|(id, _)| id == v.id())
                        .map(|(_, proxy)| format!("http://{}", proxy.addr()))
                });
                format!("{}={}", v.id(), through.unwrap_or_else(|| v.base_url()))
            })
            .collect();
        command
            .arg(part)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("DATABASE_URL", database)
            .env("AMQP_URL", amqp)
            .env("REDIS_URL", redis)
            .env("AGGREGATOR_QUEUE_PREFIX", &self.queue_prefix)
            .env("AGGREGATOR_CACHE_PREFIX", &self.cache_prefix)
            .env("AGGREGATOR_VENDORS", vendors.join(","))
            .env("AGGREGATOR_API_ADDR", api_addr)
            .env("AGGREGATOR_API_KEYS", keys.join(","))
            .env("AGGREGATOR_RATE_LIMIT_PER_SEC", "100000")
            .env("AGGREGATOR_WORKERS", "1")
            .env("AGGREGATOR_WORKER_CONCURRENCY", "8")
            .env("AGGREGATOR_SYNC_INTERVAL_SECS", "1")
            .env("AGGREGATOR_SWEEP_INTERVAL_SECS", "1")
            .env("AGGREGATOR_RELAY_INTERVAL_MS", "20")
            .env("AGGREGATOR_RETRY_DELAYS_MS", RETRY_DELAYS_MS)
            .env("AGGREGATOR_VENDOR_TIMEOUT_MS", "1500")
            .env("AGGREGATOR_VENDOR_BREAKER_OPEN_SECS", "2")
            .env("AGGREGATOR_VENDOR_BREAKER_WAIT_SECS", "3")
            .env("AGGREGATOR_REROUTE_UNAVAILABLE_AFTER_SECS", "3")
            .env(
                "AGGREGATOR_RESERVATION_TTL_SECS",
                RESERVATION_TTL_SECS.to_string(),
            )
            .env("AGGREGATOR_SHUTDOWN_GRACE_SECS", "2")
            .env("AGGREGATOR_LOG_DIR", "none")
            .env("AGGREGATOR_LOG_FORMAT", "json")
            .envs(self.settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        Ok(command)
    }

    /// Starts process `name` (one of the layout's processes).
    pub(crate) fn spawn(&mut self, name: &str) -> Result<(), String> {
        let (part, host) = self
            .plan
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, part, host)| (*part, *host))
            .ok_or_else(|| format!("no process {name}"))?;
        let child = self
            .command(name, part, host)?
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        self.processes.insert(name.to_owned(), child);
        Ok(())
    }

    /// kill -9 of process `name` (by its PID), then waits for it to be gone.
    pub(crate) async fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.processes.remove(name) {
            let _ = child.start_kill();
            let _ = child.wait().await;
            self.injected.push(format!("kill -9 {name}"));
        }
    }

    /// kill -9 of every process on host `index`: the host is gone.
    pub(crate) async fn kill_host(&mut self, index: usize) {
        let on_host: Vec<&str> = self
            .plan
            .iter()
            .filter(|(_, _, host)| *host == Some(index))
            .map(|(name, _, _)| *name)
            .collect();
        for name in on_host {
            if let Some(mut child) = self.processes.remove(name) {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
        self.injected.push(format!("host {index} killed"));
    }

    /// Starts again every process that is not running (killed, or exited by itself).
    pub(crate) async fn respawn_missing(&mut self) -> Result<(), String> {
        let plan: Vec<&'static str> = self.plan.iter().map(|(name, _, _)| *name).collect();
        for name in plan {
            let running = match self.processes.get_mut(name) {
                Some(child) => matches!(child.try_wait(), Ok(None)),
                None => false,
            };
            if !running {
                self.spawn(name)?;
            }
        }
        Ok(())
    }

    /// The API answers and both vendors' stock is fresh in the catalog.
    async fn wait_ready(&self, http: &reqwest::Client) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let product = http
                .get(format!("{}/api/products/{}", self.api_base, PRODUCTS[0].0))
                .bearer_auth(&self.admin_key)
                .send()
                .await;
            let mut others_live = true;
            for base in self.api_bases.iter().skip(1) {
                let live = http.get(format!("{base}/health/live")).send().await;
                others_live &= live.is_ok_and(|r| r.status().is_success());
            }
            if let Ok(response) = product
                && others_live
                && response.status().is_success()
            {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                let fresh = body["data"]["product"]["vendors"]
                    .as_array()
                    .is_some_and(|rows| rows.len() == 2 && rows.iter().all(|r| r["fresh"] == true));
                if fresh {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("{}: not ready within 60 s", self.name))
    }

    /// Stops every process (by PID), removes the queues and the database.
    async fn tear_down(mut self) {
        for (_, mut child) in std::mem::take(&mut self.processes) {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        if let Ok(queue) = RabbitQueue::connect(self.rabbit_config()).await {
            let _ = queue.delete_topology().await;
        }
        for vendor in std::mem::take(&mut self.vendors) {
            let _ = vendor.shutdown().await;
        }
        self.db.finish().await;
    }
}

/// The processes' retry policy.
pub(crate) fn retry_policy() -> aggregator_core::traits::RetryPolicy {
    let delays = RETRY_DELAYS_MS
        .split(',')
        .filter_map(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .collect();
    match aggregator_core::traits::RetryPolicy::new(delays) {
        Ok(policy) => policy,
        Err(error) => panic!("retry delays: {error}"),
    }
}

/// The address of the server `url` names (`default_port` when it names none).
fn service_addr(url: &str, default_port: u16) -> Result<std::net::SocketAddr, String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split('/').next().unwrap_or(rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    };
    use std::net::ToSocketAddrs;
    host.to_socket_addrs()
        .map_err(|e| format!("service host {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("service host {host} has no address"))
}

/// `url` with its host and port replaced by `addr`.
fn rehost(url: &str, addr: std::net::SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
    let credentials = authority.rsplit_once('@').map_or("", |(c, _)| c);
    let at = if credentials.is_empty() { "" } else { "@" };
    format!("{scheme}://{credentials}{at}{addr}{path}")
}

/// Runs one case: starts the world, loads it while the case's faults are injected,
/// heals everything, waits for it to settle, audits it and tears it down.
pub(crate) async fn run_case(
    case: &Case,
    round: u32,
    urls: &Urls,
    load_for: Duration,
) -> Result<Report, String> {
    let _restore = services::EnsureUp;
    let started = Instant::now();
    let mut world = World::start(case.name, urls, case.layout, case.settings).await?;
    let logs = world.logs.display().to_string();
    let outcome = async {
        let plan: Vec<&'static str> = world.plan.iter().map(|(name, _, _)| *name).collect();
        for name in plan {
            world.spawn(name)?;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        world.wait_ready(&http).await?;
        let load = load::start(&world, load_for);
        (case.inject)(&mut world, load.view(), load_for).await?;
        let ledger: Ledger = load.finish().await;
        // Heal: every service up, every process running, every vendor well.
        services::ensure_up();
        world.worker_link.set_cut(false);
        if let Some(network) = &world.network {
            network.heal();
        }
        for vendor in &world.vendors {
            vendor.reset_faults();
        }
        world.respawn_missing().await?;
        let settle_started = Instant::now();
        let audit = Audit::settle(&world, &ledger, Duration::from_secs(120)).await;
        Ok::<_, String>((ledger, audit, settle_started.elapsed()))
    }
    .await;
    let injected = world.injected.clone();
    world.tear_down().await;
    let (ledger, audit, settled_in) = outcome?;
    Ok(Report {
        case: case.name.to_owned(),
        round,
        ledger,
        audit,
        injected,
        settled_in,
        took: started.elapsed(),
        logs,
    })
}
