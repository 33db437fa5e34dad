//! The order worker's step: forward a reserved order to its vendors and confirm it,
//! re-routing a line a vendor cannot serve, or failing the order and releasing its
//! units.
//!
//! # Why nothing a vendor accepted outlives our order
//!
//! * An order's part at a vendor is placed under a key tied to the order's version
//!   ([`Order::vendor_key`]). Every handler of one version uses the same keys, so a
//!   duplicate delivery, a retry or a handler that takes over after a crash replays at
//!   the vendor instead of placing again.
//! * A key dies only when a change of the order commits: a re-route (new version, new
//!   keys), a failure, a cancel, an expiry. The store writes a `CancelAtVendor` message
//!   for every key the change kills in the same atomic step (see [`Order::apply`]), so
//!   a crash right after the commit loses none of them, and no handler ever cancels a
//!   key on its own before the change that kills it has committed: a handler that lost a
//!   race can never take back a placement the winner confirmed.
//! * A vendor refuses a placement under a key it has cancelled, so a stale handler that
//!   reaches a vendor after the cancellation places nothing; one that got there first
//!   has its placement cancelled by the message.
//! * A confirmation must carry this version's keys and is a compare-and-set on the
//!   version: a handler working on an older version cannot confirm.
//!
//! So any number of handlers may work on one order at once (duplicate deliveries are
//! normal with an outbox and a broker); only one change per version commits, and every
//! vendor effect is either in our confirmed order or cancelled.
//!
//! # Why a cancellation is never abandoned
//!
//! * A handler sends placements of one version only within the placement timeout of
//!   reading the order ([`OrderProcessor::with_placement_timeout`]); a call still
//!   running then is dropped and the message retried from a fresh read. So once a key
//!   has been dead for the timeout, no placement under it is still on its way, but for
//!   one in transit; a vendor that says it never saw the key is believed only once the
//!   key has been dead for twice the timeout, and asked again until then. The second
//!   timeout also covers what the first cannot see: the time of a change is read just
//!   before its transaction commits (at most one store call earlier, a sweeper's batch
//!   of expiries included), the hosts' clocks differ a little, and a request sent just
//!   before the deadline takes a moment to reach the vendor. Every process must run with
//!   the same placement timeout.
//! * Every other refusal of a cancellation is retryable: it is retried through the
//!   queue's delays and then queued again as a fresh message, for ever.
//! * The store keeps every cancellation pending until the vendor confirms it, and the
//!   sweeper queues again those not queued for a while, so one that was dead-lettered
//!   (a worker that kept dying while holding it) comes back.

mod batch;

use std::collections::BTreeMap;
use std::sync::Arc;

use time::Duration;

use crate::clock::Clock;
use crate::domain::{
    Message, Order, OrderId, OrderMessage, OrderStatus, QueueName, StalenessLimit, StatusChange,
    Transition, Vendor, VendorId, VendorPlacement,
};
use crate::error::{Error, Result};
use crate::service::allocator::{Taken, plan_line};
use crate::service::cached_catalog::CachedCatalog;
use crate::service::telemetry;
use crate::traits::{
    CancelOutcome, CatalogReads, OrderQueue, OrderStore, PlannedAllocation, Reroute,
    VendorDirectory, VendorOrder, VendorOrderLine, VendorOrderOutcome, VendorShortSku,
};

/// How many times one message may re-route lines before the order fails.
const MAX_REROUTES: u32 = 3;

/// How many versions of one order a single handling may move through (its own
/// re-routes and other handlers' changes) before it hands the message back.
const MAX_ROUNDS: u32 = 8;

/// How many times a failure is tried again when the order keeps changing under it.
const FAIL_ATTEMPTS: u32 = 5;

/// What handling one order message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessOutcome {
    /// Every vendor accepted; the order is confirmed.
    Confirmed(Order),
    /// The order could not be fulfilled; it failed with its units released.
    Failed(Order),
    /// Nothing to do: the order had already left `reserved` (a redelivery, or a cancel
    /// or expiry won the race; the change that moved it queued the cancellation of
    /// every vendor order it may have caused).
    AlreadySettled(OrderStatus),
    /// The order was cancelled at a vendor.
    CancelledAtVendor,
    /// A `ProcessOrders` message: what became of each of its orders.
    Batch(BatchOutcome),
}

/// The worker's processing step.
#[derive(Debug, Clone)]
pub struct OrderProcessor {
    store: Arc<dyn OrderStore>,
    stock: Arc<dyn CatalogReads>,
    vendors: VendorDirectory,
    queue: Arc<dyn OrderQueue>,
    clock: Arc<dyn Clock>,
    staleness: StalenessLimit,
    reroute_unavailable_after: Duration,
    placement_timeout: Duration,
    clock_tolerance: Duration,
    cached: Option<Arc<CachedCatalog>>,
    batch_orders: batch::BatchOrders,
}

/// The placement timeout unless set otherwise: see
/// [`OrderProcessor::with_placement_timeout`].
pub const DEFAULT_PLACEMENT_TIMEOUT: Duration = Duration::seconds(60);

pub use batch::{BatchOutcome, DEFAULT_BATCH_ORDERS_IN_FLIGHT};

/// How one round of placements at the order's vendors ended.
enum Round {
    /// Every vendor accepted its part.
    AllAccepted(Vec<VendorPlacement>),
    /// `vendor` is short (on `short`, or on everything when empty).
    Refused {
        vendor: VendorId,
        short: Vec<VendorShortSku>,
    },
    /// `vendor` had our key cancelled: the order moved on, or that vendor must not be
    /// used for this version.
    KeyCancelled { vendor: VendorId },
    /// `vendor` could not be reached (after the client's own retries).
    Unavailable { vendor: VendorId, error: Error },
}

/// How an attempt to change the order ended when it did not end the handling.
enum Moved {
    /// Our change committed; here is the order after it.
    Done(Order),
    /// Someone else changed the order first; here it is as it is now.
    Changed(Order),
    /// The change cannot be made, for this reason.
    Impossible(String),
}

impl OrderProcessor {
    /// A processor forwarding orders in `store` to `vendors`, re-routing with the rows
    /// `stock` reads; cancellations that run out of attempts start over through
    /// `queue`.
    pub fn new(
        store: Arc<dyn OrderStore>,
        stock: Arc<dyn CatalogReads>,
        vendors: VendorDirectory,
        queue: Arc<dyn OrderQueue>,
        clock: Arc<dyn Clock>,
        staleness: StalenessLimit,
    ) -> Self {
        Self {
            store,
            stock,
            vendors,
            queue,
            clock,
            staleness,
            reroute_unavailable_after: Duration::seconds(20),
            placement_timeout: DEFAULT_PLACEMENT_TIMEOUT,
            clock_tolerance: Duration::seconds(5),
            cached: None,
            batch_orders: batch::BatchOrders::new(batch::DEFAULT_BATCH_ORDERS_IN_FLIGHT),
        }
    }

    /// Holds at most `orders` orders of batch messages (`ProcessOrders`) at once across
    /// this processor and its clones (1,024 by default), whatever the number of messages
    /// being handled: a message's orders wait for room, unread, in chunks of up to 64.
    /// Without it a worker holding 128 messages could hold 128 x 256 orders with their
    /// vendor calls when vendors slow down. Refuses 0.
    pub fn with_batch_orders_in_flight(mut self, orders: usize) -> Result<Self> {
        if orders == 0 {
            return Err(Error::invalid("batchOrdersInFlight", "must be at least 1"));
        }
        self.batch_orders = batch::BatchOrders::new(orders);
        Ok(self)
    }

    /// Logs, and shows per vendor, a confirmation whose `confirmedAt` lies further than
    /// `tolerance` (5 s by default) from the time we received it. (A confirmation counts
    /// from the later of the two either way; see the clock notes in
    /// [`crate::domain::StockLedger`]'s module.) Refuses a negative tolerance.
    pub fn with_clock_tolerance(mut self, tolerance: Duration) -> Result<Self> {
        if tolerance.is_negative() {
            return Err(Error::invalid("clockTolerance", "must not be negative"));
        }
        self.clock_tolerance = tolerance;
        Ok(self)
    }

    /// Sends the placements of one version of an order only within `timeout` (60 s by
    /// default) of reading it: a vendor call still running then is dropped and the
    /// message retried from a fresh read. A vendor that answers a cancellation with
    /// "unknown key" is believed once the key has been dead for twice `timeout` (no
    /// placement under it can still land), and asked again before. Refuses a timeout
    /// that is not positive.
    pub fn with_placement_timeout(mut self, timeout: Duration) -> Result<Self> {
        if !timeout.is_positive() {
            return Err(Error::invalid("placementTimeout", "must be positive"));
        }
        self.placement_timeout = timeout;
        Ok(self)
    }

    /// Also forgets the cached availability of every order it changes.
    pub fn with_cache(mut self, cached: Arc<CachedCatalog>) -> Self {
        self.cached = Some(cached);
        self
    }

    /// Moves the part of a vendor that cannot be reached to other fresh vendors with
    /// stock once the order's allocation has stood unconfirmed for `after` (20 s by
    /// default), as a refusal would; before that, and when no other vendor can take it,
    /// the message is retried. Refuses a negative bound.
    pub fn with_reroute_unavailable_after(mut self, after: Duration) -> Result<Self> {
        if after.is_negative() {
            return Err(Error::invalid(
                "rerouteUnavailableAfter",
                "must not be negative",
            ));
        }
        self.reroute_unavailable_after = after;
        Ok(self)
    }

    async fn forget(&self, order: &Order) {
        if let Some(cached) = &self.cached {
            cached.invalidate_order(order).await;
        }
    }

    /// Handles one message. A retryable error means "retry this delivery later"
    /// (vendor placements already made are repeated under the same keys, so nothing is
    /// placed twice). Any other error will not go away by retrying: call
    /// [`OrderProcessor::give_up`] and then dead-letter the delivery. A batch
    /// (`ProcessOrders`) handles each order as `ProcessOrder` would and sends every
    /// order it could not settle on alone (see [`BatchOutcome`]); its only error is a
    /// retryable one from publishing those, and handling it again is harmless.
    pub async fn handle(&self, message: &OrderMessage) -> Result<ProcessOutcome> {
        match message {
            OrderMessage::ProcessOrder { order } => self.process(*order).await,
            OrderMessage::ProcessOrders { orders } => {
                self.process_batch(orders).await.map(ProcessOutcome::Batch)
            }
            OrderMessage::CancelAtVendor {
                order,
                vendor,
                idempotency_key,
                killed_at,
            } => {
                let client = self.vendors.get(vendor).map_err(|_| {
                    Error::permanent(format!("vendor {vendor}"), "no client configured")
                })?;
                let outcome = client.cancel_order(idempotency_key).await;
                telemetry::vendor_cancellation(vendor, outcome.as_ref().ok().copied());
                if outcome? == CancelOutcome::UnknownKey {
                    let killed_at = match killed_at {
                        Some(at) => *at,
                        None => self.store.order(*order).await?.updated_at,
                    };
                    let believed_from = killed_at + self.placement_timeout * 2;
                    if self.clock.now() < believed_from {
                        return Err(Error::transient(
                            format!("vendor {vendor}"),
                            format!(
                                "says it never saw key {idempotency_key}, but a placement \
                                 under it may still land until {believed_from}; asking again"
                            ),
                        ));
                    }
                }
                self.store
                    .vendor_cancellation_done(vendor, idempotency_key)
                    .await?;
                if self.cached.is_some()
                    && let Ok(order) = self.store.order(*order).await
                {
                    self.forget(&order).await;
                }
                Ok(ProcessOutcome::CancelledAtVendor)
            }
        }
    }

    /// Called before a message is dead-lettered because handling it failed with
    /// `error` (out of attempts, or failing for good). A reserved order fails with the
    /// error as its reason, releasing its units and queueing the cancellation of every
    /// vendor order it may have caused, in one step; an order in any other state is
    /// left alone. A cancellation that ran out of attempts on a vendor that may come
    /// back (a retryable error) never gives up: it is queued again as a fresh message,
    /// and `Ok(true)` says the delivery may simply be acknowledged; one the vendor
    /// refuses for good is dead-lettered for an operator. A batch gives up each of its
    /// orders as its own `ProcessOrder` would be given up. An error means not all was
    /// given up: leave the delivery unsettled so that it comes back.
    pub async fn give_up(&self, message: &OrderMessage, error: &Error) -> Result<bool> {
        let reason = error.to_string();
        match message {
            OrderMessage::ProcessOrder { order } => {
                let order = match self.store.order(*order).await {
                    Ok(order) => order,
                    Err(Error::NotFound { .. }) => return Ok(false),
                    Err(other) => return Err(other),
                };
                self.fail_any_version(order, &format!("gave up: {reason}"))
                    .await?;
                Ok(false)
            }
            OrderMessage::ProcessOrders { orders } => {
                for order in orders {
                    let order = match self.store.order(*order).await {
                        Ok(order) => order,
                        Err(Error::NotFound { .. }) => continue,
                        Err(other) => return Err(other),
                    };
                    self.fail_any_version(order, &format!("gave up: {reason}"))
                        .await?;
                }
                Ok(false)
            }
            OrderMessage::CancelAtVendor {
                order,
                vendor,
                idempotency_key,
                ..
            } => {
                if self.vendors.get(vendor).is_err() || !error.is_retryable() {
                    tracing::error!(
                        %order, %vendor, idempotency_key, reason,
                        "cannot cancel an order at a vendor; needs an operator"
                    );
                    return Ok(false);
                }
                tracing::warn!(
                    %order, %vendor, idempotency_key, reason,
                    "cancellation at vendor out of attempts; queued again"
                );
                let again = Message::json(message)?;
                self.queue.publish(QueueName::Orders, &again).await?;
                Ok(true)
            }
        }
    }

    async fn process(&self, id: OrderId) -> Result<ProcessOutcome> {
        let order = self.store.order(id).await?;
        self.process_read(order, tokio::time::Instant::now()).await
    }

    /// [`OrderProcessor::process`] of `order` as read from the store at `first_read_at`
    /// (the placement timeout counts from then).
    async fn process_read(
        &self,
        mut order: Order,
        first_read_at: tokio::time::Instant,
    ) -> Result<ProcessOutcome> {
        let id = order.id;
        let mut reroutes = 0;
        for round in 0..MAX_ROUNDS {
            // Every way into this loop has just read (or written) `order`; the first
            // read may be a batch's, a little earlier.
            let read_at = if round == 0 {
                first_read_at
            } else {
                tokio::time::Instant::now()
            };
            if order.status != OrderStatus::Reserved {
                return Ok(ProcessOutcome::AlreadySettled(order.status));
            }
            let (vendor, short) = match self.place_at_vendors(&order, read_at).await? {
                Round::AllAccepted(placements) => match self.confirm(&order, placements).await? {
                    Moved::Done(confirmed) => return Ok(ProcessOutcome::Confirmed(confirmed)),
                    Moved::Changed(current) => {
                        order = current;
                        continue;
                    }
                    Moved::Impossible(reason) => return Err(Error::permanent("order", reason)),
                },
                Round::Refused { vendor, short } => (vendor, short),
                Round::KeyCancelled { vendor } => {
                    let current = self.store.order(id).await?;
                    if current.version != order.version {
                        order = current;
                        continue;
                    }
                    tracing::warn!(%id, %vendor, "our live key was cancelled at the vendor; moving its part");
                    (vendor, Vec::new())
                }
                Round::Unavailable { vendor, error } => {
                    let standing = self.clock.now() - order.updated_at;
                    if standing < self.reroute_unavailable_after {
                        return Err(error);
                    }
                    match self.reroute(&order, &vendor, &[]).await? {
                        Moved::Done(next) | Moved::Changed(next) => {
                            tracing::warn!(%id, %vendor, %error, "vendor unavailable too long; moved its part");
                            order = next;
                            continue;
                        }
                        // Nobody else can take it: wait for the vendor.
                        Moved::Impossible(_) => return Err(error),
                    }
                }
            };
            if reroutes >= MAX_REROUTES {
                let reason = format!("vendors kept refusing after {MAX_REROUTES} re-routes");
                match self.fail(&order, &reason).await? {
                    Moved::Done(failed) => return Ok(ProcessOutcome::Failed(failed)),
                    Moved::Changed(current) => {
                        order = current;
                        continue;
                    }
                    Moved::Impossible(reason) => return Err(Error::permanent("order", reason)),
                }
            }
            reroutes += 1;
            order = match self.reroute(&order, &vendor, &short).await? {
                Moved::Done(next) | Moved::Changed(next) => next,
                Moved::Impossible(reason) => match self.fail(&order, &reason).await? {
                    Moved::Done(failed) => return Ok(ProcessOutcome::Failed(failed)),
                    Moved::Changed(current) => current,
                    Moved::Impossible(reason) => return Err(Error::permanent("order", reason)),
                },
            };
        }
        Err(Error::transient(
            "order store",
            format!("order {id} kept changing while it was processed"),
        ))
    }

    /// Sends each vendor its part of `order` (as read at `read_at`) under this version's
    /// key; stops at the first vendor that does not accept. Sends nothing past the
    /// placement timeout from `read_at` (a retryable error: read the order again).
    async fn place_at_vendors(
        &self,
        order: &Order,
        read_at: tokio::time::Instant,
    ) -> Result<Round> {
        let timeout = std::time::Duration::try_from(self.placement_timeout)
            .map_err(|e| Error::invalid("placementTimeout", e.to_string()))?;
        let deadline = read_at + timeout;
        let mut accepted = Vec::new();
        for (vendor, allocations) in order.allocations_by_vendor() {
            let client = self.vendors.get(&vendor).map_err(|_| {
                Error::permanent(format!("vendor {vendor}"), "no client configured")
            })?;
            let key = order.vendor_key(&vendor);
            let request = VendorOrder {
                idempotency_key: key.clone(),
                lines: allocations
                    .iter()
                    .map(|a| VendorOrderLine {
                        sku: a.sku.clone(),
                        quantity: a.quantity,
                    })
                    .collect(),
            };
            let sent = tokio::time::timeout_at(deadline, client.place_order(&request)).await;
            let Ok(answer) = sent else {
                // Past the timeout nothing more goes out under this version's keys;
                // the message comes back and starts from a fresh read.
                return Err(Error::transient(
                    format!("vendor {vendor}"),
                    format!(
                        "order {} read more than {} s ago; placing again from a fresh read",
                        order.id,
                        self.placement_timeout.whole_seconds()
                    ),
                ));
            };
            match answer {
                Ok(VendorOrderOutcome::Accepted {
                    vendor_order_id,
                    confirmed_at,
                }) => {
                    let received_at = self.clock.now();
                    let offset = confirmed_at - received_at;
                    telemetry::vendor_order_clock_offset(&vendor, offset);
                    if offset.abs() > self.clock_tolerance {
                        tracing::warn!(
                            %vendor,
                            offset_ms = offset.whole_milliseconds(),
                            "the vendor's order clock is off from ours by more than the \
                             clock tolerance; its confirmations count from our receive time"
                        );
                    }
                    accepted.push(VendorPlacement {
                        vendor,
                        vendor_order_id,
                        idempotency_key: key,
                        // No report taken before the sale may prune it, whatever the
                        // vendor's order clock says (see `StockLedger`'s clock notes).
                        confirmed_at: confirmed_at.max(received_at),
                    });
                }
                Ok(VendorOrderOutcome::Refused { short }) => {
                    return Ok(Round::Refused { vendor, short });
                }
                Ok(VendorOrderOutcome::KeyCancelled) => return Ok(Round::KeyCancelled { vendor }),
                Err(error) if error.is_retryable() => {
                    return Ok(Round::Unavailable { vendor, error });
                }
                Err(error) => return Err(error),
            }
        }
        Ok(Round::AllAccepted(accepted))
    }

    async fn confirm(&self, order: &Order, placements: Vec<VendorPlacement>) -> Result<Moved> {
        let transition = Transition {
            order: order.id,
            expected_version: order.version,
            change: StatusChange::Confirm { placements },
            reason: "every vendor accepted".into(),
            at: self.clock.now(),
        };
        self.change(order, &transition).await
    }

    /// Commits `transition` (made from `order` as read); a lost race answers the order
    /// as it is now.
    async fn change(&self, order: &Order, transition: &Transition) -> Result<Moved> {
        match self.store.transition(transition, &[]).await {
            Ok(next) => {
                self.forget(&next).await;
                Ok(Moved::Done(next))
            }
            Err(Error::Conflict { detail }) => {
                let current = self.store.order(order.id).await?;
                if current.version == order.version {
                    return Ok(Moved::Impossible(detail));
                }
                Ok(Moved::Changed(current))
            }
            Err(other) => Err(other),
        }
    }

    /// Moves the units `vendor` cannot serve to other fresh vendors of the same product.
    async fn reroute(
        &self,
        order: &Order,
        vendor: &VendorId,
        short: &[VendorShortSku],
    ) -> Result<Moved> {
        let now = self.clock.now();
        let fresh_since = self.staleness.fresh_since(now);
        let vendors: BTreeMap<VendorId, Vendor> = self
            .stock
            .vendors()
            .await?
            .into_iter()
            .filter(|candidate| &candidate.id != vendor)
            .map(|candidate| (candidate.id.clone(), candidate))
            .collect();
        let mut skus: Vec<_> = if short.is_empty() {
            // A refusal without detail: move everything that vendor had.
            order
                .allocations_by_vendor()
                .into_iter()
                .filter(|(v, _)| v == vendor)
                .flat_map(|(_, allocations)| allocations.into_iter().map(|a| a.sku))
                .collect()
        } else {
            short.iter().map(|s| s.sku.clone()).collect()
        };
        skus.sort();
        skus.dedup();
        let mut current = order.clone();
        let mut taken = Taken::new();
        for sku in skus {
            // Every line on this SKU moves together (two lines may share one SKU).
            let mut units = 0_u32;
            let mut line = None;
            for candidate in &current.lines {
                for allocation in &candidate.allocations {
                    if &allocation.vendor == vendor && allocation.sku == sku {
                        units += allocation.quantity.get();
                        line.get_or_insert_with(|| candidate.clone());
                    }
                }
            }
            let Some(line) = line else {
                continue;
            };
            let rows: Vec<_> = self
                .stock
                .stock_for_product(&line.product)
                .await?
                .into_iter()
                .filter(|row| &row.vendor != vendor)
                // A quoted line moves only to rows at the price the customer agreed to.
                .filter(|row| {
                    line.quoted_unit_price
                        .is_none_or(|quoted| row.price.is(&quoted))
                })
                .collect();
            let quantity = crate::domain::Quantity::try_from(units)?;
            let reason = format!(
                "vendor {vendor} cannot serve {sku} and no other vendor has {quantity} units of {}",
                line.product
            );
            let Some(plan) = plan_line(
                &line.item,
                quantity,
                &rows,
                &vendors,
                fresh_since,
                &mut taken,
            ) else {
                return Ok(Moved::Impossible(reason));
            };
            if plan.short.is_some() {
                return Ok(Moved::Impossible(reason));
            }
            let request = Reroute {
                order: current.id,
                expected_version: current.version,
                vendor: vendor.clone(),
                sku: sku.clone(),
                replacement: plan.line.allocations.clone(),
                reason: format!(
                    "vendor {vendor} cannot serve {sku}; moved {}",
                    describe(&plan.line.allocations)
                ),
                at: now,
                fresh_since,
            };
            match self.store.reroute(&request).await {
                Ok(next) => {
                    self.forget(&next).await;
                    current = next;
                }
                Err(Error::InsufficientStock { .. } | Error::PriceMismatch { .. }) => {
                    return Ok(Moved::Impossible(reason));
                }
                Err(Error::Conflict { detail }) => {
                    let latest = self.store.order(order.id).await?;
                    if latest.version == current.version {
                        return Ok(Moved::Impossible(detail));
                    }
                    return Ok(Moved::Changed(latest));
                }
                Err(other) => return Err(other),
            }
        }
        if current.version == order.version {
            return Ok(Moved::Impossible(format!(
                "vendor {vendor} refused the order"
            )));
        }
        Ok(Moved::Done(current))
    }

    /// Fails `order` (as read) with `reason`, releasing its units.
    async fn fail(&self, order: &Order, reason: &str) -> Result<Moved> {
        let transition = Transition {
            order: order.id,
            expected_version: order.version,
            change: StatusChange::Fail,
            reason: reason.to_owned(),
            at: self.clock.now(),
        };
        self.change(order, &transition).await
    }

    /// Fails the order whatever its version while it can still fail; leaves it as it is
    /// once it cannot.
    async fn fail_any_version(&self, mut order: Order, reason: &str) -> Result<Order> {
        for _ in 0..FAIL_ATTEMPTS {
            if !order.status.can_become(OrderStatus::Failed) {
                return Ok(order);
            }
            match self.fail(&order, reason).await? {
                Moved::Done(failed) => return Ok(failed),
                Moved::Changed(current) => order = current,
                Moved::Impossible(detail) => return Err(Error::permanent("order", detail)),
            }
        }
        Err(Error::transient(
            "order store",
            format!("order {} kept changing while failing it", order.id),
        ))
    }
}

/// The key an order's part is placed with at `vendor`; see [`Order::vendor_key`].
pub fn vendor_key(order: &Order, vendor: &VendorId) -> String {
    order.vendor_key(vendor)
}

fn describe(allocations: &[PlannedAllocation]) -> String {
    let parts: Vec<String> = allocations
        .iter()
        .map(|a| format!("{} x{} to {}", a.sku, a.quantity, a.vendor))
        .collect();
    parts.join(", ")
}
