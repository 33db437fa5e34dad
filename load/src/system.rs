//! The system under load: a fresh database, mock vendors and the `aggregator` binary,
//! started as child processes of this harness and stopped by their PIDs only (the
//! machine is shared: nothing else is ever signalled).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep};

use crate::http::{Connection as Http, post_json};

/// Where the services are and what to start.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    /// PostgreSQL server URL without a database name, e.g. `postgres://postgres@127.0.0.1:5432`.
    pub(crate) postgres: String,
    /// RabbitMQ URL.
    pub(crate) amqp: String,
    /// Redis URL.
    pub(crate) redis: String,
    /// Where the release binaries are.
    pub(crate) bin_dir: PathBuf,
    /// First port to use (API; the vendors take the next ones).
    pub(crate) base_port: u16,
    /// Extra environment for every aggregator process (after the scenario's own).
    pub(crate) env: Vec<(String, String)>,
}

/// A running system.
#[derive(Debug)]
pub(crate) struct System {
    pub(crate) api: SocketAddr,
    pub(crate) pool: PgPool,
    pub(crate) database_url: String,
    services: Services,
    database: String,
    prefix: String,
    children: Vec<Child>,
    aggregator_pid: Option<u32>,
    /// (group, pid) of every process started, for CPU accounting.
    counted: Vec<(&'static str, u32)>,
}

/// What one system runs.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// `aggregator` parts, e.g. `["all"]` or `["api", "relay", "sync"]`.
    pub(crate) parts: Vec<String>,
    /// SKUs per vendor in the two mock vendors.
    pub(crate) skus: u32,
    /// Extra environment for the aggregator (group commit settings...).
    pub(crate) env: Vec<(String, String)>,
    /// A third vendor with this many SKUs, for the big-sync scenario.
    pub(crate) big_vendor_skus: Option<u32>,
    /// The two mock vendors' quantities times this (`mock-vendors --stock-scale`).
    pub(crate) stock_scale: u32,
}

pub(crate) type Failure = String;

impl System {
    /// Creates a fresh database, starts the vendors and the aggregator, and waits until
    /// the API answers and the vendors are synced.
    pub(crate) async fn start(services: &Services, setup: &Setup) -> Result<Self, Failure> {
        let database = format!("aggregator_load_{}", std::process::id());
        let prefix = format!("{database}.");
        let database_url = format!("{}/{database}", services.postgres);
        admin(
            services,
            &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        )
        .await?;
        admin(services, &format!("CREATE DATABASE {database}")).await?;
        let api: SocketAddr = ([127, 0, 0, 1], services.base_port).into();
        let port_a = services.base_port + 1;
        let port_b = services.base_port + 2;
        let port_c = services.base_port + 3;
        let mut system = Self {
            api,
            pool: PgPoolOptions::new()
                .max_connections(2)
                .connect_lazy(&database_url)
                .map_err(|e| format!("database url: {e}"))?,
            database_url: database_url.clone(),
            services: services.clone(),
            database,
            prefix: prefix.clone(),
            children: Vec::new(),
            aggregator_pid: None,
            counted: Vec::new(),
        };
        let vendors = spawn(
            &services.bin_dir.join("mock-vendors"),
            &[
                "--skus".into(),
                setup.skus.to_string(),
                "--stock-scale".into(),
                setup.stock_scale.to_string(),
                "--vendor".into(),
                format!("VendorA:{port_a}"),
                "--vendor".into(),
                format!("VendorB:{port_b}"),
            ],
            &[],
        )?;
        system
            .counted
            .extend(vendors.id().map(|pid| ("vendors", pid)));
        system.children.push(vendors);
        let mut vendor_list =
            format!("VendorA=http://127.0.0.1:{port_a},VendorB=http://127.0.0.1:{port_b}");
        if let Some(skus) = setup.big_vendor_skus {
            let big = spawn(
                &services.bin_dir.join("mock-vendors"),
                &[
                    "--skus".into(),
                    skus.to_string(),
                    "--vendor".into(),
                    format!("VendorC:{port_c}"),
                ],
                &[],
            )?;
            system.counted.extend(big.id().map(|pid| ("vendors", pid)));
            system.children.push(big);
            vendor_list.push_str(&format!(",VendorC=http://127.0.0.1:{port_c}"));
        }
        wait_for_port(([127, 0, 0, 1], port_b).into()).await?;
        if setup.big_vendor_skus.is_some() {
            wait_for_port(([127, 0, 0, 1], port_c).into()).await?;
        }
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url),
            ("AMQP_URL".into(), services.amqp.clone()),
            ("REDIS_URL".into(), services.redis.clone()),
            ("AGGREGATOR_API_ADDR".into(), api.to_string()),
            ("AGGREGATOR_VENDORS".into(), vendor_list),
            ("AGGREGATOR_QUEUE_PREFIX".into(), prefix.clone()),
            (
                "AGGREGATOR_CACHE_PREFIX".into(),
                format!("{}:", system.database),
            ),
            ("AGGREGATOR_LOG_DIR".into(), "none".into()),
            ("AGGREGATOR_RATE_LIMIT_PER_SEC".into(), "10000000".into()),
            ("AGGREGATOR_SYNC_INTERVAL_SECS".into(), "3600".into()),
            ("RUST_LOG".into(), "warn".into()),
        ];
        env.extend(setup.env.iter().cloned());
        // `{database}` in a value stands for this run's database (for a read replica's
        // URL: `--set DATABASE_READ_URL=postgres://postgres@127.0.0.1:5499/{database}`).
        env.extend(
            services
                .env
                .iter()
                .map(|(key, value)| (key.clone(), value.replace("{database}", &system.database))),
        );
        let aggregator = spawn(&services.bin_dir.join("aggregator"), &setup.parts, &env)?;
        system.aggregator_pid = aggregator.id();
        system
            .counted
            .extend(aggregator.id().map(|pid| ("aggregator", pid)));
        system.children.push(aggregator);
        let vendors = if setup.big_vendor_skus.is_some() {
            3
        } else {
            2
        };
        system.wait_until_synced(vendors).await?;
        Ok(system)
    }

    /// Sets a vendor SKU's stock at the mock vendor (`a` or `b`), then syncs.
    pub(crate) async fn set_vendor_stock(
        &self,
        vendor: char,
        sku: &str,
        quantity: u64,
    ) -> Result<(), Failure> {
        let port = if vendor == 'a' {
            self.services.base_port + 1
        } else {
            self.services.base_port + 2
        };
        let mut connection = Http::new(([127, 0, 0, 1], port).into());
        let body = format!(r#"{{"sku":"{sku}","quantity":{quantity}}}"#);
        let answer = connection
            .send(&post_json("/simulate/stock", &body))
            .await
            .map_err(|e| format!("setting stock at vendor {vendor}: {e}"))?;
        if answer.status >= 300 {
            return Err(format!(
                "setting stock at vendor {vendor}: HTTP {}",
                answer.status
            ));
        }
        Ok(())
    }

    /// Syncs every vendor now, through the `stock-sync` binary, and returns how long it took.
    pub(crate) async fn sync_now(&self, vendor: Option<&str>) -> Result<Duration, Failure> {
        let mut args: Vec<String> = Vec::new();
        match vendor {
            Some(id) => {
                args.push("vendor".into());
                args.push(id.into());
            }
            None => args.push("all".into()),
        }
        let vendors = self.vendor_list(vendor.is_some());
        let started = Instant::now();
        let status = Command::new(self.services.bin_dir.join("stock-sync"))
            .args(&args)
            .env("DATABASE_URL", &self.database_url)
            .env("AGGREGATOR_VENDORS", vendors)
            .env("AGGREGATOR_LOG_DIR", "none")
            .env(
                "RUST_LOG",
                std::env::var("AGGREGATOR_LOAD_SYNC_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("AMQP_URL")
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .await
            .map_err(|e| format!("stock-sync: {e}"))?;
        if !status.success() {
            return Err(format!("stock-sync exited with {status}"));
        }
        Ok(started.elapsed())
    }

    fn vendor_list(&self, with_big: bool) -> String {
        let base = self.services.base_port;
        let mut list = format!(
            "VendorA=http://127.0.0.1:{},VendorB=http://127.0.0.1:{}",
            base + 1,
            base + 2
        );
        if with_big {
            list.push_str(&format!(",VendorC=http://127.0.0.1:{}", base + 3));
        }
        list
    }

    async fn wait_until_synced(&mut self, vendors: i64) -> Result<(), Failure> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for child in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("a process of the system exited at start: {status}"));
                }
            }
            let synced: Result<i64, _> =
                sqlx::query_scalar("SELECT count(*) FROM vendors WHERE last_good_sync IS NOT NULL")
                    .fetch_one(&self.pool)
                    .await;
            if synced.is_ok_and(|n| n >= vendors) {
                let mut http = Http::new(self.api);
                if http
                    .send(&crate::http::get("/health/live"))
                    .await
                    .is_ok_and(|r| r.status < 500)
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err("the system did not come up (API and vendor sync) within 60 s".into());
            }
            sleep(Duration::from_millis(200)).await;
        }
    }

    /// Orders per status.
    pub(crate) async fn count(&self, status: &str) -> Result<i64, Failure> {
        sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = $1")
            .bind(status)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| format!("counting orders: {e}"))
    }

    /// Units of all orders still holding or confirmed at one product's rows, against
    /// what the vendors reported: (sold, reported) over every row of `product`.
    pub(crate) async fn sold_and_reported(&self, product: &str) -> Result<(i64, i64), Failure> {
        let row: (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(sum(reserved + confirmed_not_yet_reported), 0)::int8,
                    COALESCE(sum(reported), 0)::int8
               FROM vendor_stock WHERE product_id = $1",
        )
        .bind(product)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| format!("reading stock: {e}"))?;
        Ok(row)
    }

    /// Whether the harness must stand in for autovacuum (the server runs without it, as
    /// CI machines do); says so, and that the `scenario` vacuums `when`, if it must.
    pub(crate) async fn must_vacuum(&self, scenario: &str, when: &str) -> Result<bool, Failure> {
        let setting: String = sqlx::query_scalar("SHOW autovacuum")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| format!("reading the autovacuum setting: {e}"))?;
        let must = setting != "on";
        if must {
            eprintln!(
                "  this server runs with autovacuum off: the {scenario} vacuums the store's \
                 tables {when}, as autovacuum would"
            );
        }
        Ok(must)
    }

    /// Vacuums the tables the store churns (what autovacuum would do).
    pub(crate) async fn vacuum(&self) -> Result<(), Failure> {
        sqlx::raw_sql(
            "VACUUM (ANALYZE) outbox, orders, reservations, vendor_stock, \
             pending_confirmations, idempotency_keys",
        )
        .execute(&self.pool)
        .await
        .map_err(|e| format!("vacuuming: {e}"))?;
        Ok(())
    }

    /// The CPU time every part of the system has used so far (see [`crate::cpu`]).
    pub(crate) fn cpu_snapshot(&self) -> crate::cpu::CpuSnapshot {
        crate::cpu::snapshot(&self.counted)
    }

    /// The aggregator process's id, while it runs.
    pub(crate) fn aggregator_pid(&self) -> Option<u32> {
        self.aggregator_pid
    }

    /// The aggregator process's resident memory, in KiB.
    pub(crate) fn aggregator_rss_kib(&self) -> Option<u64> {
        let pid = self.aggregator_pid?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Stops what this harness started (by PID), drops the database and the queues.
    pub(crate) async fn stop(mut self) {
        for child in &mut self.children {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
        }
        for child in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        self.pool.close().await;
        let _ = admin(
            &self.services,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
        )
        .await;
        delete_queues(&self.prefix).await;
    }
}

/// Runs one statement on the server's `postgres` database.
pub(crate) async fn admin(services: &Services, statement: &str) -> Result<(), Failure> {
    let mut connection = PgConnection::connect(&format!("{}/postgres", services.postgres))
        .await
        .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut connection)
        .await
        .map_err(|e| format!("{statement}: {e}"))?;
    let _ = connection.close().await;
    Ok(())
}

fn spawn(program: &Path, args: &[String], env: &[(String, String)]) -> Result<Child, Failure> {
    Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {} ({e}); build it first: cargo build --release --workspace --bins",
                program.display()
            )
        })
}

async fn wait_for_port(addr: SocketAddr) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("nothing listens on {addr} after 20 s"));
        }
        sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Deletes the RabbitMQ queues named with `prefix`, if `rabbitmqctl` is here.
async fn delete_queues(prefix: &str) {
    let Ok(listed) = Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "name"])
        .output()
        .await
    else {
        return;
    };
    for name in String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| name.starts_with(prefix))
    {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_queue", name])
            .stdout(Stdio::null())
            .status()
            .await;
    }
}
