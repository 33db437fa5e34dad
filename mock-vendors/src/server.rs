//! Running mock vendors: in-process for tests, or from the binary.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::catalog::CatalogItem;
use crate::faults::Faults;
use crate::routes::router;
use crate::state::{MockVendorConfig, VendorOrderRecord, VendorState};

/// A mock vendor serving on a local port until it is shut down or dropped.
#[derive(Debug)]
pub struct MockVendor {
    state: Arc<VendorState>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl MockVendor {
    /// Starts `config`'s vendor on `addr` (port 0 picks a free port; see
    /// [`MockVendor::addr`]). Fails if the address cannot be bound.
    pub async fn spawn(config: MockVendorConfig, addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(VendorState::new(config));
        let app = router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(vendor = %state.config.id, %addr, skus = state.sku_count(), "mock vendor serving");
        Ok(Self {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Starts `config`'s vendor on a free port of 127.0.0.1.
    pub async fn spawn_local(config: MockVendorConfig) -> io::Result<Self> {
        Self::spawn(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// The vendor's id.
    pub fn id(&self) -> &str {
        &self.state.config.id
    }

    /// The vendor's display name.
    pub fn name(&self) -> &str {
        &self.state.config.name
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, e.g. `http://127.0.0.1:3001`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The faults it is simulating now.
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// Switches faults on or off (as `POST /simulate/fault` does).
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// Turns every fault off.
    pub fn reset_faults(&self) {
        self.state.set_faults(Faults::default());
    }

    /// Units on hand of `sku`, if the vendor sells it.
    pub fn quantity(&self, sku: &str) -> Option<i64> {
        self.state.item(sku).map(|item| item.quantity)
    }

    /// Sets the units of `sku` (negative becomes 0); false if the vendor does not sell it.
    pub fn set_quantity(&self, sku: &str, quantity: i64) -> bool {
        self.state.set_quantity(sku, quantity)
    }

    /// Sets the price of `sku` (in cents, above zero), as its next feed reports it;
    /// false when there is no such SKU or the price is not positive.
    pub fn set_price(&self, sku: &str, price_minor: i64) -> bool {
        self.state.set_price(sku, price_minor)
    }

    /// The whole catalog as it stands.
    pub fn items(&self) -> Vec<CatalogItem> {
        self.state.items()
    }

    /// The order placed under idempotency key (or vendor order id) `id`, if any.
    pub fn order(&self, id: &str) -> Option<VendorOrderRecord> {
        self.state.order(id)
    }

    /// Every order and cancelled key this vendor knows, by idempotency key: what an
    /// audit compares with the orders on our side.
    pub fn orders(&self) -> Vec<VendorOrderRecord> {
        self.state.all_orders()
    }

    /// How many orders were placed here (cancelled ones included, replays not).
    pub fn orders_placed(&self) -> usize {
        self.state.order_count()
    }

    /// API requests received in each second (Unix seconds, the vendor's clock) of the
    /// last hour, every request counted, refused ones too.
    pub fn arrivals_per_second(&self) -> Vec<(i64, u64)> {
        self.state.arrivals()
    }

    /// The most API requests this vendor received in one second (of its clock).
    pub fn busiest_second(&self) -> u64 {
        self.state
            .arrivals()
            .into_iter()
            .map(|(_, count)| count)
            .max()
            .unwrap_or(0)
    }

    /// Requests the rate-limit switch answered `429`.
    pub fn refused_for_rate(&self) -> u64 {
        self.state.refused_for_rate()
    }

    /// How many keys were cancelled here (orders cancelled, and keys cancelled before
    /// any placement).
    pub fn cancellations(&self) -> usize {
        self.state.cancelled_count()
    }

    /// Stops serving: in-flight requests finish, then the port is closed.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for MockVendor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
