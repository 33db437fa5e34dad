//! The order worker's step: forward a reserved order to its vendors and confirm it,
//! re-routing a line a vendor cannot serve, or failing the order and releasing its
//! units. Safe to run again for the same message: vendor calls are idempotent by key and
//! every status change is a compare-and-set.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::{
    Message, Order, OrderId, OrderMessage, OrderStatus, QueueName, StalenessLimit, StatusChange,
    Transition, Vendor, VendorId, VendorPlacement,
};
use crate::error::{Error, Result};
use crate::service::allocator::{Taken, plan_line};
use crate::service::cached_catalog::CachedCatalog;
use crate::traits::{
    OrderQueue, PlannedAllocation, Reroute, StockStore, VendorDirectory, VendorOrder,
    VendorOrderLine, VendorOrderOutcome, VendorShortSku,
};

/// How many times one message may re-route lines before the order fails.
const MAX_REROUTES: u32 = 3;

/// What handling one order message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessOutcome {
    /// Every vendor accepted; the order is confirmed.
    Confirmed(Order),
    /// The order could not be fulfilled; it failed with its units released.
    Failed(Order),
    /// Nothing to do: the order had already left `reserved` (a redelivery, or a cancel
    /// or expiry won the race; vendor placements made meanwhile are being cancelled).
    AlreadySettled(OrderStatus),
    /// The order was cancelled at a vendor.
    CancelledAtVendor,
}

/// The worker's processing step.
#[derive(Debug, Clone)]
pub struct OrderProcessor {
    store: Arc<dyn StockStore>,
    vendors: VendorDirectory,
    queue: Arc<dyn OrderQueue>,
    clock: Arc<dyn Clock>,
    staleness: StalenessLimit,
    cached: Option<Arc<CachedCatalog>>,
}

/// A vendor's answer within one round.
enum RoundResult {
    AllAccepted(Vec<VendorPlacement>),
    Refused {
        vendor: VendorId,
        short: Vec<VendorShortSku>,
        accepted: Vec<VendorPlacement>,
    },
}

impl OrderProcessor {
    /// A processor forwarding orders in `store` to `vendors`; compensations (vendor
    /// cancellations) go through `queue`.
    pub fn new(
        store: Arc<dyn StockStore>,
        vendors: VendorDirectory,
        queue: Arc<dyn OrderQueue>,
        clock: Arc<dyn Clock>,
        staleness: StalenessLimit,
    ) -> Self {
        Self {
            store,
            vendors,
            queue,
            clock,
            staleness,
            cached: None,
        }
    }

    /// Also forgets the cached availability of every order it changes.
    pub fn with_cache(mut self, cached: Arc<CachedCatalog>) -> Self {
        self.cached = Some(cached);
        self
    }

    async fn forget(&self, order: &Order) {
        if let Some(cached) = &self.cached {
            cached.invalidate_order(order).await;
        }
    }

    /// Handles one message. A retryable error means "retry this delivery later"
    /// (vendor placements already made are repeated under the same keys, so nothing is
    /// placed twice). Any other error will not go away by retrying: dead-letter the
    /// delivery and call [`OrderProcessor::give_up`], which fails the order, releases
    /// its units and cancels it at every vendor it may have reached.
    pub async fn handle(&self, message: &OrderMessage) -> Result<ProcessOutcome> {
        match message {
            OrderMessage::ProcessOrder { order } => self.process(*order).await,
            OrderMessage::CancelAtVendor {
                vendor,
                idempotency_key,
                ..
            } => {
                self.vendors
                    .get(vendor)?
                    .cancel_order(idempotency_key)
                    .await?;
                Ok(ProcessOutcome::CancelledAtVendor)
            }
        }
    }

    /// Called when a message has used up its attempts: a reserved order fails with
    /// `reason` and releases its units, and every vendor it may have reached is asked to
    /// cancel. A vendor cancellation that could not be delivered is only logged.
    pub async fn give_up(&self, message: &OrderMessage, reason: &str) -> Result<()> {
        match message {
            OrderMessage::ProcessOrder { order } => {
                let order = self.store.order(*order).await?;
                if order.status != OrderStatus::Reserved {
                    return Ok(());
                }
                let keys: Vec<(VendorId, String)> = order
                    .allocations_by_vendor()
                    .into_iter()
                    .map(|(vendor, _)| {
                        let key = vendor_key(&order, &vendor);
                        (vendor, key)
                    })
                    .collect();
                self.compensate(order.id, keys).await?;
                self.fail(order, &format!("gave up: {reason}")).await?;
                Ok(())
            }
            OrderMessage::CancelAtVendor {
                order,
                vendor,
                idempotency_key,
            } => {
                tracing::error!(
                    %order, %vendor, idempotency_key, reason,
                    "could not cancel order at vendor; needs an operator"
                );
                Ok(())
            }
        }
    }

    async fn process(&self, id: OrderId) -> Result<ProcessOutcome> {
        let mut order = self.store.order(id).await?;
        let mut reroutes = 0;
        loop {
            if order.status != OrderStatus::Reserved {
                return Ok(ProcessOutcome::AlreadySettled(order.status));
            }
            match self.place_at_vendors(&order).await? {
                RoundResult::AllAccepted(placements) => {
                    return self.confirm(order, placements).await;
                }
                RoundResult::Refused {
                    vendor,
                    short,
                    accepted,
                } => {
                    // Whatever this round placed was placed under keys tied to the
                    // current version; re-routing changes it, so take them back first.
                    self.compensate(order.id, placed_keys(&accepted)).await?;
                    if reroutes >= MAX_REROUTES {
                        let reason =
                            format!("vendors kept refusing after {MAX_REROUTES} re-routes");
                        return Ok(ProcessOutcome::Failed(self.fail(order, &reason).await?));
                    }
                    reroutes += 1;
                    match self.reroute(&order, &vendor, &short).await? {
                        Ok(next) => order = next,
                        Err(reason) => {
                            return Ok(ProcessOutcome::Failed(self.fail(order, &reason).await?));
                        }
                    }
                }
            }
        }
    }

    /// Sends each vendor its part of `order`; stops at the first refusal.
    async fn place_at_vendors(&self, order: &Order) -> Result<RoundResult> {
        let mut accepted = Vec::new();
        for (vendor, allocations) in order.allocations_by_vendor() {
            let client = match self.vendors.get(&vendor) {
                Ok(client) => client,
                Err(_) => {
                    self.compensate(order.id, placed_keys(&accepted)).await?;
                    return Err(Error::permanent(
                        format!("vendor {vendor}"),
                        "no client configured",
                    ));
                }
            };
            let key = vendor_key(order, &vendor);
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
            match client.place_order(&request).await? {
                VendorOrderOutcome::Accepted {
                    vendor_order_id,
                    confirmed_at,
                } => accepted.push(VendorPlacement {
                    vendor,
                    vendor_order_id,
                    idempotency_key: key,
                    confirmed_at,
                }),
                VendorOrderOutcome::Refused { short } => {
                    return Ok(RoundResult::Refused {
                        vendor,
                        short,
                        accepted,
                    });
                }
            }
        }
        Ok(RoundResult::AllAccepted(accepted))
    }

    async fn confirm(
        &self,
        order: Order,
        placements: Vec<VendorPlacement>,
    ) -> Result<ProcessOutcome> {
        let transition = Transition {
            order: order.id,
            expected_version: order.version,
            change: StatusChange::Confirm {
                placements: placements.clone(),
            },
            reason: "every vendor accepted".into(),
            at: self.clock.now(),
        };
        match self.store.transition(&transition, &[]).await {
            Ok(order) => {
                self.forget(&order).await;
                Ok(ProcessOutcome::Confirmed(order))
            }
            Err(Error::Conflict { .. }) => {
                let current = self.store.order(order.id).await?;
                if current.status == OrderStatus::Reserved {
                    // Changed under us but still open (another delivery re-routed it);
                    // try the message again later.
                    return Err(Error::transient(
                        "order store",
                        format!("order {} changed while confirming", order.id),
                    ));
                }
                if current.status != OrderStatus::Confirmed {
                    self.compensate(order.id, placed_keys(&placements)).await?;
                }
                Ok(ProcessOutcome::AlreadySettled(current.status))
            }
            Err(other) => Err(other),
        }
    }

    /// Moves the units `vendor` refused to other fresh vendors of the same product.
    /// Returns the re-routed order, or the reason it cannot be done.
    async fn reroute(
        &self,
        order: &Order,
        vendor: &VendorId,
        short: &[VendorShortSku],
    ) -> Result<std::result::Result<Order, String>> {
        let now = self.clock.now();
        let fresh_since = self.staleness.fresh_since(now);
        let vendors: BTreeMap<VendorId, Vendor> = self
            .store
            .vendors()
            .await?
            .into_iter()
            .filter(|candidate| &candidate.id != vendor)
            .map(|candidate| (candidate.id.clone(), candidate))
            .collect();
        let mut current = order.clone();
        let skus: Vec<_> = if short.is_empty() {
            // A refusal without detail: move everything that vendor had.
            current
                .allocations_by_vendor()
                .into_iter()
                .filter(|(v, _)| v == vendor)
                .flat_map(|(_, allocations)| allocations.into_iter().map(|a| a.sku))
                .collect()
        } else {
            short.iter().map(|s| s.sku.clone()).collect()
        };
        let mut taken = Taken::new();
        for sku in skus {
            let Some((line, quantity)) = current.lines.iter().find_map(|line| {
                let units: u32 = line
                    .allocations
                    .iter()
                    .filter(|a| &a.vendor == vendor && a.sku == sku)
                    .map(|a| a.quantity.get())
                    .sum();
                (units > 0).then_some((line.clone(), units))
            }) else {
                continue;
            };
            let rows: Vec<_> = self
                .store
                .stock_for_product(&line.product)
                .await?
                .into_iter()
                .filter(|row| &row.vendor != vendor)
                .collect();
            let quantity = crate::domain::Quantity::try_from(quantity)?;
            let reason = format!(
                "vendor {vendor} is short on {sku} and no other vendor has {quantity} units of {}",
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
                return Ok(Err(reason));
            };
            if plan.short.is_some() {
                return Ok(Err(reason));
            }
            let request = Reroute {
                order: current.id,
                expected_version: current.version,
                vendor: vendor.clone(),
                sku: sku.clone(),
                replacement: plan.line.allocations.clone(),
                reason: format!(
                    "vendor {vendor} is short on {sku}; moved {}",
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
                Err(Error::InsufficientStock { .. }) => return Ok(Err(reason)),
                Err(Error::Conflict { detail }) => {
                    return Err(Error::transient("order store", detail));
                }
                Err(other) => return Err(other),
            }
        }
        if current.version == order.version {
            return Ok(Err(format!("vendor {vendor} refused the order")));
        }
        Ok(Ok(current))
    }

    /// Fails a reserved order with `reason`, releasing its units; if it already left
    /// `reserved`, returns it as it is.
    async fn fail(&self, mut order: Order, reason: &str) -> Result<Order> {
        for _ in 0..5 {
            if !order.status.can_become(OrderStatus::Failed) {
                return Ok(order);
            }
            let transition = Transition {
                order: order.id,
                expected_version: order.version,
                change: StatusChange::Fail,
                reason: reason.to_owned(),
                at: self.clock.now(),
            };
            match self.store.transition(&transition, &[]).await {
                Ok(failed) => {
                    self.forget(&failed).await;
                    return Ok(failed);
                }
                Err(Error::Conflict { .. }) => order = self.store.order(order.id).await?,
                Err(other) => return Err(other),
            }
        }
        Err(Error::transient(
            "order store",
            format!("order {} kept changing while failing it", order.id),
        ))
    }

    /// Cancels our order at each vendor for each key before the caller moves on:
    /// directly, and when that fails, through a durable queue message that is retried
    /// with backoff, so neither a vendor outage nor a crash loses it.
    async fn compensate(&self, order: OrderId, keys: Vec<(VendorId, String)>) -> Result<()> {
        for (vendor, idempotency_key) in keys {
            let direct = match self.vendors.get(&vendor) {
                Ok(client) => client.cancel_order(&idempotency_key).await,
                Err(error) => Err(error),
            };
            if let Err(error) = direct {
                tracing::warn!(%order, %vendor, %error, "cancel at vendor failed; queued for retry");
                let message = Message::json(&OrderMessage::CancelAtVendor {
                    order,
                    vendor,
                    idempotency_key,
                })?;
                self.queue.publish(QueueName::Orders, &message).await?;
            }
        }
        Ok(())
    }
}

/// The key an order's part is placed with at `vendor`: stable for one version of the
/// order, so a redelivered message places it only once, and new after a re-route.
pub fn vendor_key(order: &Order, vendor: &VendorId) -> String {
    format!("{}:{}:v{}", order.id, vendor, order.version)
}

fn placed_keys(placements: &[VendorPlacement]) -> Vec<(VendorId, String)> {
    placements
        .iter()
        .map(|p| (p.vendor.clone(), p.idempotency_key.clone()))
        .collect()
}

fn describe(allocations: &[PlannedAllocation]) -> String {
    let parts: Vec<String> = allocations
        .iter()
        .map(|a| format!("{} x{} to {}", a.sku, a.quantity, a.vendor))
        .collect();
    parts.join(", ")
}
