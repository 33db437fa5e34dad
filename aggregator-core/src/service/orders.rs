//! Placing, reading and cancelling orders, and explicit stock holds.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::Duration;

use super::cached_catalog::CachedCatalog;
use super::config::OrderConfig;
use super::planning::{ItemRequest, check_items, plan_request};
use super::recent_reads::RecentReads;
use crate::clock::Clock;
use crate::domain::{
    CustomerId, Hold, HoldId, IdempotencyKey, Message, Order, OrderDetails, OrderId, OrderMessage,
    OrderStatus, OutboxMessage, QueueName, StatusChange, Transition,
};
use crate::error::{Error, Result};
use crate::traits::{
    CatalogReads, HoldConversion, HoldPlacement, HoldStore, IdempotencyRecord, OrderListing,
    OrderPlacement, OrderQuery, OrderStore, Page, Placed,
};

/// A request to place an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequest {
    /// Customer, contact, shipping and payment.
    pub details: OrderDetails,
    /// What to buy.
    pub items: Vec<ItemRequest>,
}

/// Whose orders and holds a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (operators).
    All,
    /// Only this customer's; anything else looks like it does not exist.
    Customer(CustomerId),
}

impl Scope {
    fn allows(&self, customer: &CustomerId) -> bool {
        match self {
            Self::All => true,
            Self::Customer(own) => own == customer,
        }
    }
}

/// How many times a status change that lost a version race is read and tried again.
const TRANSITION_ATTEMPTS: u32 = 5;

/// Orders and holds on top of the store's [`OrderStore`] and [`HoldStore`] roles.
#[derive(Debug, Clone)]
pub struct OrderService {
    orders: Arc<dyn OrderStore>,
    listing: Arc<dyn OrderListing>,
    holds: Arc<dyn HoldStore>,
    stock: Arc<dyn CatalogReads>,
    clock: Arc<dyn Clock>,
    config: OrderConfig,
    cached: Option<Arc<CachedCatalog>>,
    recent: Option<Arc<RecentReads>>,
}

impl OrderService {
    /// A service keeping orders in `orders` and holds in `holds`, planning from the
    /// rows `stock` reads; refuses an unusable `config`. (One store usually plays all
    /// three roles.)
    pub fn new(
        orders: Arc<dyn OrderStore>,
        holds: Arc<dyn HoldStore>,
        stock: Arc<dyn CatalogReads>,
        clock: Arc<dyn Clock>,
        config: OrderConfig,
    ) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            listing: orders.clone(),
            orders,
            holds,
            stock,
            clock,
            config,
            cached: None,
            recent: None,
        })
    }

    /// Plans placements from catalog reads remembered for `ttl` first (see
    /// [`RecentReads`]): a plan that comes out short, or that the store refuses, is
    /// made again from the store before the customer hears "short". Saves the store
    /// reads of most placements under load; a zero `ttl` turns it off.
    pub fn with_recent_reads(mut self, ttl: std::time::Duration) -> Self {
        self.recent = (!ttl.is_zero()).then(|| Arc::new(RecentReads::new(self.stock.clone(), ttl)));
        self
    }

    /// Answers [`OrderService::list`] from `listing` (a read replica, say) instead of
    /// the order store; single orders and every change still go to the order store.
    pub fn with_listing(mut self, listing: Arc<dyn OrderListing>) -> Self {
        self.listing = listing;
        self
    }

    /// Also forgets the cached availability of whatever each change touches.
    pub fn with_cache(mut self, cached: Arc<CachedCatalog>) -> Self {
        self.cached = Some(cached);
        self
    }

    async fn forget(&self, lines: &[crate::domain::OrderLine]) {
        if let Some(cached) = &self.cached {
            cached.invalidate_lines(lines).await;
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &OrderConfig {
        &self.config
    }

    /// Places an order: checks it, plans each line across fresh vendors, and has the
    /// store reserve everything, write the order and queue it for the worker in one
    /// step. Short stock is `InsufficientStock` naming each short line. With `key`, a
    /// retry of the same request returns the first answer and another request with the
    /// same key is `IdempotencyMismatch`.
    ///
    /// A key the store already holds is answered from the store whatever the catalog
    /// says now: a price that moved, a vendor gone stale or stock sold out never turn a
    /// retry of a placed order into a refusal. (The store answers a replay before it
    /// reserves anything; a request whose planning refuses it is looked up by its key
    /// before the refusal is answered, so a retry costs no extra read when nothing
    /// changed.)
    pub async fn place(
        &self,
        request: &OrderRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<Placed> {
        let idempotency = match key {
            Some(key) => Some(IdempotencyRecord {
                key,
                fingerprint: fingerprint(request)?,
            }),
            None => None,
        };
        let outcome = self.place_new(request, idempotency.clone()).await;
        let (Err(refusal), Some(record)) = (&outcome, &idempotency) else {
            return outcome;
        };
        if matches!(refusal, Error::IdempotencyMismatch { .. }) {
            return outcome;
        }
        match self
            .orders
            .placed_under_key(&request.details.customer, record)
            .await
        {
            Ok(Some(replay)) => Ok(replay),
            Err(mismatch @ Error::IdempotencyMismatch { .. }) => Err(mismatch),
            // Nothing under the key (or the store cannot say): the refusal stands.
            Ok(None) | Err(_) => outcome,
        }
    }

    /// Checks, plans and places `request` as a new order (the store still answers a
    /// replay of `idempotency` if the plan reaches it).
    async fn place_new(
        &self,
        request: &OrderRequest,
        idempotency: Option<IdempotencyRecord>,
    ) -> Result<Placed> {
        request.details.validate()?;
        let quantities = check_items(
            &request.items,
            self.config.max_lines,
            self.config.quantity_limit,
        )?;
        let id = OrderId::new();
        let mut last_error = None;
        // The first plan may come from recent reads; it does not count as an attempt,
        // and anything it says against the customer is checked with fresh reads. Not
        // when the customer quoted a price: the store prices lines from its rows, so a
        // quote must be checked against current prices, never remembered ones.
        let quoted = request.items.iter().any(|item| item.unit_price.is_some());
        let mut recent = if quoted { None } else { self.recent.clone() };
        let mut attempts = 0;
        while attempts < self.config.placement_attempts {
            let remembered = recent.take();
            let from_recent = remembered.is_some();
            let renewing = self.recent.as_ref().map(|recent| recent.renewing());
            let reads: &dyn CatalogReads = match (&remembered, &renewing) {
                (Some(remembered), _) => remembered.as_ref(),
                // Fresh figures, which also replace the old ones the next plan would use.
                (None, Some(renewing)) => {
                    attempts += 1;
                    renewing
                }
                (None, None) => {
                    attempts += 1;
                    self.stock.as_ref()
                }
            };
            let now = self.clock.now();
            let fresh_since = self.config.staleness.fresh_since(now);
            let plan = match plan_request(reads, &request.items, &quantities, fresh_since).await {
                Ok(plan) => plan,
                Err(Error::PriceMismatch { .. } | Error::Invalid { .. }) if from_recent => continue,
                Err(other) => return Err(other),
            };
            if !plan.short.is_empty() && idempotency.is_none() {
                if from_recent {
                    continue;
                }
                return Err(Error::InsufficientStock { short: plan.short });
            }
            let placement = OrderPlacement {
                id,
                details: request.details.clone(),
                lines: plan.lines,
                at: now,
                reserved_until: now + self.config.reservation_ttl,
                fresh_since,
                idempotency: idempotency.clone(),
                outbox: vec![process_message(id, now)?],
            };
            match self.orders.place_order(placement).await {
                Ok(placed) => {
                    if !placed.replayed {
                        self.forget(&placed.order.lines).await;
                    }
                    return Ok(placed);
                }
                Err(Error::InsufficientStock { short }) => {
                    if !plan.short.is_empty() && !from_recent {
                        // The read already said so; its figures cover every vendor.
                        return Err(Error::InsufficientStock { short: plan.short });
                    }
                    // Lost a race for the units we planned on (or planned from old
                    // figures); plan again from the store.
                    last_error = Some(Error::InsufficientStock { short });
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or_else(|| Error::conflict("placement was not attempted")))
    }

    /// One order, if `scope` may see it.
    pub async fn get(&self, id: OrderId, scope: &Scope) -> Result<Order> {
        let order = self.orders.order(id).await?;
        if !scope.allows(&order.details.customer) {
            return Err(Error::not_found("order", id));
        }
        Ok(order)
    }

    /// Orders matching `query`, newest first. A customer scope overrides the query's
    /// customer filter.
    pub async fn list(&self, query: &OrderQuery, scope: &Scope) -> Result<Page<Order>> {
        let mut query = query.clone();
        if let Scope::Customer(customer) = scope {
            query.customer = Some(customer.clone());
        }
        self.listing.orders(&query).await
    }

    /// Cancels an order for `reason`. A pending or reserved order releases its units;
    /// every vendor order it may have caused (a reserved order's keys of its current
    /// version, a confirmed order's placements) is cancelled through the queue, written
    /// with the change. Cancelling a
    /// cancelled order returns it unchanged; a failed or expired one is `Conflict`.
    pub async fn cancel(&self, id: OrderId, reason: &str, scope: &Scope) -> Result<Order> {
        let reason = if reason.trim().is_empty() {
            "cancelled by the client"
        } else {
            reason
        };
        crate::domain::check_free_text("reason", reason, 500, true)?;
        for _ in 0..TRANSITION_ATTEMPTS {
            let order = self.get(id, scope).await?;
            if order.status == OrderStatus::Cancelled {
                return Ok(order);
            }
            let now = self.clock.now();
            let transition = Transition {
                order: id,
                expected_version: order.version,
                change: StatusChange::Cancel,
                reason: reason.to_owned(),
                at: now,
            };
            if !order.status.can_become(OrderStatus::Cancelled) {
                return Err(Error::conflict(format!(
                    "order {id} is {} and can no longer be cancelled",
                    order.status.as_str()
                )));
            }
            match self.orders.transition(&transition, &[]).await {
                Ok(cancelled) => {
                    self.forget(&cancelled.lines).await;
                    return Ok(cancelled);
                }
                Err(Error::Conflict { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(Error::transient(
            "order store",
            format!("order {id} kept changing while cancelling; try again"),
        ))
    }

    /// Holds units for `customer` for `ttl` (at most the configured maximum); all lines
    /// or none.
    pub async fn create_hold(
        &self,
        customer: CustomerId,
        items: &[crate::service::ItemRequest],
        ttl: Duration,
    ) -> Result<Hold> {
        self.check_ttl(ttl)?;
        let quantities = check_items(items, self.config.max_lines, self.config.quantity_limit)?;
        let id = HoldId::new();
        let mut last_error = None;
        for _ in 0..self.config.placement_attempts {
            let now = self.clock.now();
            let fresh_since = self.config.staleness.fresh_since(now);
            let plan = plan_request(self.stock.as_ref(), items, &quantities, fresh_since).await?;
            if !plan.short.is_empty() {
                return Err(Error::InsufficientStock { short: plan.short });
            }
            let placement = HoldPlacement {
                id,
                customer: customer.clone(),
                lines: plan.lines,
                at: now,
                expires_at: now + ttl.min(self.config.max_hold_lifetime),
                fresh_since,
                limits: self.config.hold_limits,
            };
            match self.holds.place_hold(placement).await {
                Ok(hold) => {
                    self.forget(&hold.lines).await;
                    return Ok(hold);
                }
                Err(error @ Error::InsufficientStock { .. }) => last_error = Some(error),
                Err(other) => return Err(other),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::conflict("hold was not attempted")))
    }

    /// One hold, if `scope` may see it.
    pub async fn hold(&self, id: HoldId, scope: &Scope) -> Result<Hold> {
        let hold = self.holds.hold(id).await?;
        if !scope.allows(&hold.customer) {
            return Err(Error::not_found("hold", id));
        }
        Ok(hold)
    }

    /// Makes an active hold last `ttl` from now (at most the configured maximum per
    /// extension, and never past the hold's total lifetime from its creation).
    pub async fn extend_hold(&self, id: HoldId, ttl: Duration, scope: &Scope) -> Result<Hold> {
        self.check_ttl(ttl)?;
        let hold = self.hold(id, scope).await?;
        let now = self.clock.now();
        let end_of_life = hold.created_at + self.config.max_hold_lifetime;
        if now + ttl > end_of_life {
            return Err(Error::invalid(
                "ttl",
                format!(
                    "a hold lasts at most {} seconds from its creation; this one can be \
                     extended by at most {} more seconds",
                    self.config.max_hold_lifetime.whole_seconds(),
                    (end_of_life - now).whole_seconds().max(0)
                ),
            ));
        }
        self.holds.extend_hold(id, now + ttl, now).await
    }

    /// Gives a hold's units back (idempotent).
    pub async fn release_hold(&self, id: HoldId, scope: &Scope) -> Result<Hold> {
        self.hold(id, scope).await?;
        let released = self.holds.release_hold(id, self.clock.now()).await?;
        self.forget(&released.lines).await;
        Ok(released)
    }

    /// Turns an active hold into an order that takes over its units and is queued for
    /// the worker. Asking again for a hold already turned into an order returns that
    /// order (marked as a replay).
    pub async fn order_from_hold(&self, id: HoldId, details: OrderDetails) -> Result<Placed> {
        details.validate()?;
        let scope = Scope::Customer(details.customer.clone());
        let hold = self.hold(id, &scope).await?;
        if let Some(order) = hold.order {
            return Ok(Placed {
                order: self.orders.order(order).await?,
                replayed: true,
            });
        }
        let now = self.clock.now();
        let order = OrderId::new();
        self.holds
            .convert_hold(HoldConversion {
                hold: id,
                order,
                details,
                at: now,
                reserved_until: now + self.config.reservation_ttl,
                outbox: vec![process_message(order, now)?],
            })
            .await
    }

    fn check_ttl(&self, ttl: Duration) -> Result<()> {
        if ttl <= Duration::ZERO {
            return Err(Error::invalid("ttl", "must be positive"));
        }
        if ttl > self.config.max_hold_ttl {
            return Err(Error::invalid(
                "ttl",
                format!(
                    "must be at most {} seconds",
                    self.config.max_hold_ttl.whole_seconds()
                ),
            ));
        }
        Ok(())
    }
}

/// A digest of the request, stable across processes and versions (SHA-256 of its JSON).
fn fingerprint(request: &OrderRequest) -> Result<String> {
    let bytes = serde_json::to_vec(request)
        .map_err(|e| Error::invalid("request", format!("cannot encode: {e}")))?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The outbox message asking the worker to forward `order` to its vendors.
pub(crate) fn process_message(order: OrderId, now: time::OffsetDateTime) -> Result<OutboxMessage> {
    Ok(OutboxMessage {
        queue: QueueName::Orders,
        message: Message::json(&OrderMessage::ProcessOrder { order })?,
        created_at: now,
    })
}
