//! `aggregator-api`: the HTTP API on in-memory backends, for trying the API and for
//! API tests (schemathesis). Vendors come from `AGGREGATOR_VENDORS` (default: the mock
//! vendors on 3001 and 3002) and are synced once at start; the address from
//! `AGGREGATOR_API_ADDR` (default 127.0.0.1:3000); API keys from `AGGREGATOR_API_KEYS`.
//! The whole system on real backends is `aggregator` (or `examples/full_stack.rs`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use aggregator_core::clock::SystemClock;
use aggregator_core::memory::{InMemoryCache, InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::service::{OrderConfig, StockSync, SyncConfig};

use aggregator_http::api::{ApiBackends, ApiConfig, ApiKeys, ApiState, check_bind, router};
use aggregator_http::{parse_vendor_list, register_vendors};

const DEFAULT_VENDORS: &str = "VendorA=http://127.0.0.1:3001,VendorB=http://127.0.0.1:3002";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("aggregator-api: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let addr: SocketAddr = env("AGGREGATOR_API_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .map_err(|e| format!("AGGREGATOR_API_ADDR: {e}"))?;
    let keys = match env("AGGREGATOR_API_KEYS") {
        Some(text) => ApiKeys::parse(&text).map_err(|e| e.to_string())?,
        None => ApiKeys::none(),
    };
    let banner = check_bind(addr, &keys).map_err(|e| e.to_string())?;
    let store = Arc::new(InMemoryStockStore::new());
    let clock = Arc::new(SystemClock);
    let vendors =
        parse_vendor_list(&env("AGGREGATOR_VENDORS").unwrap_or_else(|| DEFAULT_VENDORS.into()))
            .map_err(|e| format!("AGGREGATOR_VENDORS: {e}"))?;
    let directory = register_vendors(store.as_ref(), &vendors, |_| {})
        .await
        .map_err(|e| e.to_string())?;
    let sync = StockSync::new(
        store.clone(),
        directory,
        clock.clone(),
        SyncConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    for endpoint in &vendors {
        match sync.sync_vendor(&endpoint.id).await {
            Ok(report) => println!("{}: synced {} SKU(s)", endpoint.id, report.applied),
            Err(error) => println!("{}: not synced ({error})", endpoint.id),
        }
    }
    let backends = ApiBackends::new(
        store,
        Arc::new(InMemoryOrderQueue::default()),
        Arc::new(InMemoryCache::new()),
        clock,
    );
    let config = ApiConfig {
        keys,
        ..ApiConfig::default()
    };
    let state =
        ApiState::new(backends, OrderConfig::default(), config).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("{banner}");
    println!("API on http://{addr} (docs at /docs)");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| e.to_string())
}
