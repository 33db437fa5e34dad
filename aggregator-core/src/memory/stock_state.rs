//! The data behind [`super::InMemoryStockStore`] and the rules it applies, all under one
//! lock so that every operation is atomic.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use time::{Duration, OffsetDateTime};

use super::event_log::EventLogState;
use crate::domain::{
    CustomerId, Demand, EventCursor, HealthPolicy, Hold, HoldId, HoldStatus, IdempotencyKey,
    LockedRow, LockedRows, MessageId, Order, OrderId, OrderLine, OutboxMessage,
    PendingConfirmation, ProductId, RerouteDecision, Reservation, ReservationOwner,
    SnapshotOutcome, SnapshotRow, StatusChange, StockLedger, Transition, Vendor, VendorHealth,
    VendorId, VendorKey, VendorSku, VendorStock,
};
use crate::error::{Error, Result};
use crate::traits::{
    CancellationBacklog, ExpiredBatch, HoldConversion, HoldPlacement, IdempotencyRecord,
    OrderPlacement, OrderQuery, OutboxBacklog, Page, Placed, PlannedLine, Reroute,
};

type StockKey = (VendorId, VendorSku);

#[derive(Debug)]
struct OutboxEntry {
    message: OutboxMessage,
    leased_until: Option<OffsetDateTime>,
}

impl OutboxEntry {
    /// Leases the message until `now + lease` and hands out a copy, if it is claimable
    /// at `now` (never leased, or its lease ran out).
    fn lease(&mut self, now: OffsetDateTime, lease: Duration) -> Option<OutboxMessage> {
        if self.leased_until.is_some_and(|until| until > now) {
            return None;
        }
        self.leased_until = Some(now + lease);
        Some(self.message.clone())
    }
}

/// A cancellation at a vendor that the vendor has not confirmed yet.
#[derive(Debug, Clone, Copy)]
struct PendingCancellation {
    order: OrderId,
    killed_at: OffsetDateTime,
    queued_at: OffsetDateTime,
}

#[derive(Debug, Default)]
pub(super) struct StockState {
    vendors: BTreeMap<VendorId, Vendor>,
    stock: HashMap<StockKey, StockLedger>,
    by_sku: HashMap<VendorSku, BTreeSet<VendorId>>,
    by_vendor: HashMap<VendorId, BTreeSet<VendorSku>>,
    by_product: BTreeMap<ProductId, BTreeSet<StockKey>>,
    orders: BTreeMap<OrderId, Order>,
    /// The number the last new order got (0 before the first; the first gets 1).
    last_order_number: u64,
    holds: HashMap<HoldId, Hold>,
    deadlines: BTreeSet<(OffsetDateTime, ReservationOwner)>,
    idempotency: HashMap<(CustomerId, IdempotencyKey), (String, OrderId)>,
    outbox: BTreeMap<MessageId, OutboxEntry>,
    /// The stock rows holding units for each dead vendor key.
    cancelling: HashMap<(VendorId, String), Vec<StockKey>>,
    /// Every dead vendor key whose cancellation no vendor has confirmed yet.
    pending_cancellations: BTreeMap<(VendorId, String), PendingCancellation>,
    /// Every order's status changes, logged with them.
    pub(super) event_log: EventLogState,
    /// How far the webhook dispatcher has read `event_log`.
    webhook_cursor: Option<EventCursor>,
}

impl StockState {
    pub(super) fn upsert_vendor(&mut self, vendor: &Vendor) {
        match self.vendors.get_mut(&vendor.id) {
            Some(existing) => {
                existing.name.clone_from(&vendor.name);
                existing.base_url.clone_from(&vendor.base_url);
                existing.priority = vendor.priority;
            }
            None => {
                self.vendors.insert(vendor.id.clone(), vendor.clone());
            }
        }
    }

    pub(super) fn vendors(&self) -> Vec<Vendor> {
        self.vendors.values().cloned().collect()
    }

    fn vendor_mut(&mut self, vendor: &VendorId) -> Result<&mut Vendor> {
        self.vendors
            .get_mut(vendor)
            .ok_or_else(|| Error::not_found("vendor", vendor))
    }

    pub(super) fn apply_snapshot(
        &mut self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
        margin: Duration,
    ) -> Result<SnapshotOutcome> {
        if !self.vendors.contains_key(vendor) {
            return Err(Error::not_found("vendor", vendor));
        }
        let mut seen = HashSet::with_capacity(rows.len());
        for row in rows {
            row.validate()?;
            if !seen.insert(&row.sku) {
                return Err(Error::invalid(
                    format!("stock[{}]", row.sku),
                    "listed twice in one snapshot page",
                ));
            }
        }
        let mut outcome = SnapshotOutcome::default();
        for row in rows {
            let key = (vendor.clone(), row.sku.clone());
            match self.stock.get_mut(&key) {
                Some(ledger) => {
                    let old_product = ledger.stock().product.clone();
                    if ledger.apply_report(row, margin) {
                        outcome.applied += 1;
                        if old_product != row.product {
                            if let Some(keys) = self.by_product.get_mut(&old_product) {
                                keys.remove(&key);
                                if keys.is_empty() {
                                    self.by_product.remove(&old_product);
                                }
                            }
                            self.by_product
                                .entry(row.product.clone())
                                .or_default()
                                .insert(key);
                        }
                    } else {
                        outcome.ignored_older += 1;
                    }
                }
                None => {
                    self.stock
                        .insert(key.clone(), StockLedger::from_report(vendor.clone(), row));
                    self.by_sku
                        .entry(row.sku.clone())
                        .or_default()
                        .insert(vendor.clone());
                    self.by_vendor
                        .entry(vendor.clone())
                        .or_default()
                        .insert(row.sku.clone());
                    self.by_product
                        .entry(row.product.clone())
                        .or_default()
                        .insert(key);
                    outcome.applied += 1;
                }
            }
        }
        Ok(outcome)
    }

    pub(super) fn complete_snapshot(
        &mut self,
        vendor: &VendorId,
        listed: &[VendorSku],
        as_of: OffsetDateTime,
        at: OffsetDateTime,
        margin: Duration,
    ) -> Result<Vendor> {
        self.vendor_mut(vendor)?;
        let listed: HashSet<&VendorSku> = listed.iter().collect();
        if let Some(skus) = self.by_vendor.get(vendor) {
            for sku in skus.iter().filter(|sku| !listed.contains(sku)) {
                if let Some(ledger) = self.stock.get_mut(&(vendor.clone(), sku.clone())) {
                    ledger.report_missing(as_of, margin);
                }
            }
        }
        let record = self.vendor_mut(vendor)?;
        record.health = VendorHealth::Healthy;
        record.consecutive_failures = 0;
        record.last_error = None;
        record.last_good_sync = Some(record.last_good_sync.map_or(at, |last| last.max(at)));
        Ok(record.clone())
    }

    pub(super) fn record_sync_failure(
        &mut self,
        vendor: &VendorId,
        reason: &str,
        policy: HealthPolicy,
    ) -> Result<Vendor> {
        let record = self.vendor_mut(vendor)?;
        record.consecutive_failures = record.consecutive_failures.saturating_add(1);
        record.health = policy.health_after(record.consecutive_failures);
        record.last_error = Some(reason.to_owned());
        Ok(record.clone())
    }

    pub(super) fn stock_for_product(&self, product: &ProductId) -> Vec<VendorStock> {
        self.by_product
            .get(product)
            .into_iter()
            .flatten()
            .filter_map(|key| self.stock.get(key))
            .map(|ledger| ledger.stock().clone())
            .collect()
    }

    pub(super) fn stock_for_sku(&self, sku: &VendorSku) -> Vec<VendorStock> {
        self.by_sku
            .get(sku)
            .into_iter()
            .flatten()
            .filter_map(|vendor| self.stock.get(&(vendor.clone(), sku.clone())))
            .map(|ledger| ledger.stock().clone())
            .collect()
    }

    pub(super) fn stock_row(&self, vendor: &VendorId, sku: &VendorSku) -> Option<VendorStock> {
        self.stock
            .get(&(vendor.clone(), sku.clone()))
            .map(|ledger| ledger.stock().clone())
    }

    pub(super) fn products(&self, offset: u64, limit: u32) -> Page<ProductId> {
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        Page {
            items: self
                .by_product
                .keys()
                .skip(skip)
                .take(take)
                .cloned()
                .collect(),
            total: self.by_product.len() as u64,
        }
    }

    /// The rows `keys` name as a reservation decides on them (the whole state is under
    /// one lock, so they are locked).
    fn locked_rows<'k>(&self, keys: impl Iterator<Item = &'k StockKey>) -> LockedRows {
        let mut rows = LockedRows::new();
        for key in keys {
            if let Some(ledger) = self.stock.get(key) {
                let stock = ledger.stock();
                rows.insert(
                    key.clone(),
                    LockedRow {
                        product: stock.product.clone(),
                        sellable: stock.sellable(),
                        price: stock.price,
                        last_good_sync: self
                            .vendors
                            .get(&key.0)
                            .and_then(|vendor| vendor.last_good_sync),
                    },
                );
            }
        }
        rows
    }

    /// Reserves every planned allocation or nothing, as the domain decides, and returns
    /// the priced lines.
    fn reserve_lines(
        &mut self,
        lines: &[PlannedLine],
        fresh_since: OffsetDateTime,
    ) -> Result<Vec<OrderLine>> {
        let demand = Demand::of(lines)?;
        let priced = self.locked_rows(demand.rows().map(|(key, _)| key)).decide(
            lines,
            &demand,
            fresh_since,
        )?;
        for planned in lines.iter().flat_map(|line| &line.allocations) {
            let key = (planned.vendor.clone(), planned.sku.clone());
            let ledger = self
                .stock
                .get_mut(&key)
                .ok_or_else(|| Error::not_found("sku", &planned.sku))?;
            if !ledger.try_reserve(planned.quantity) {
                // Decided above under the same lock; reaching this is a bug.
                return Err(Error::conflict("stock changed during reservation"));
            }
        }
        Ok(priced)
    }

    fn release_lines(&mut self, lines: &[OrderLine]) {
        for allocation in lines.iter().flat_map(|line| &line.allocations) {
            if let Some(ledger) = self
                .stock
                .get_mut(&(allocation.vendor.clone(), allocation.sku.clone()))
            {
                ledger.release(allocation.quantity);
            }
        }
    }

    pub(super) fn placed_under_key(
        &self,
        customer: &CustomerId,
        record: &IdempotencyRecord,
    ) -> Result<Option<Placed>> {
        let scope = (customer.clone(), record.key.clone());
        let Some((fingerprint, order_id)) = self.idempotency.get(&scope) else {
            return Ok(None);
        };
        if *fingerprint != record.fingerprint {
            return Err(Error::IdempotencyMismatch {
                key: record.key.to_string(),
            });
        }
        Ok(Some(Placed {
            order: self.order(*order_id)?,
            replayed: true,
        }))
    }

    pub(super) fn place_order(&mut self, placement: OrderPlacement) -> Result<Placed> {
        placement.details.validate()?;
        if let Some(record) = &placement.idempotency
            && let Some(replay) = self.placed_under_key(&placement.details.customer, record)?
        {
            return Ok(replay);
        }
        if self.orders.contains_key(&placement.id) {
            return Err(Error::conflict(format!(
                "order {} already exists",
                placement.id
            )));
        }
        let lines = self.reserve_lines(&placement.lines, placement.fresh_since)?;
        let mut order = Order::new_reserved(
            placement.id,
            placement.details,
            lines,
            placement.at,
            placement.reserved_until,
            None,
            "placed: stock reserved",
        );
        order.number = Some(self.next_order_number());
        if let Some(record) = placement.idempotency {
            self.idempotency.insert(
                (order.details.customer.clone(), record.key),
                (record.fingerprint, order.id),
            );
        }
        self.deadlines
            .insert((order.reserved_until, ReservationOwner::Order(order.id)));
        self.write_outbox(placement.outbox);
        self.put_order(order.clone());
        Ok(Placed {
            order,
            replayed: false,
        })
    }

    fn next_order_number(&mut self) -> u64 {
        self.last_order_number += 1;
        self.last_order_number
    }

    pub(super) fn order(&self, id: OrderId) -> Result<Order> {
        self.orders
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("order", id))
    }

    pub(super) fn orders(&self, query: &OrderQuery) -> Page<Order> {
        let matching = self.orders.values().rev().filter(|order| {
            query
                .customer
                .as_ref()
                .is_none_or(|customer| &order.details.customer == customer)
                && query.status.is_none_or(|status| order.status == status)
        });
        let mut total = 0_u64;
        let mut items = Vec::new();
        let skip = query.offset;
        let take = u64::from(query.limit);
        for order in matching {
            if total >= skip && total < skip.saturating_add(take) {
                items.push(order.clone());
            }
            total += 1;
        }
        Page { items, total }
    }

    pub(super) fn transition(
        &mut self,
        transition: &Transition,
        outbox: &[OutboxMessage],
    ) -> Result<Order> {
        let current = self
            .orders
            .get(&transition.order)
            .ok_or_else(|| Error::not_found("order", transition.order))?;
        let held_before = current.status.holds_stock();
        let deadline = current.reserved_until;
        let before = current.clone();
        let mut next = current.clone();
        let dead = next.apply(transition)?;
        let cancellations = OutboxMessage::vendor_cancellations(next.id, &dead, transition.at)?;
        match &transition.change {
            StatusChange::Confirm { placements } => {
                for allocation in next.lines.iter().flat_map(|line| &line.allocations) {
                    let Some(placement) = placements.iter().find(|p| p.vendor == allocation.vendor)
                    else {
                        continue;
                    };
                    if let Some(ledger) = self
                        .stock
                        .get_mut(&(allocation.vendor.clone(), allocation.sku.clone()))
                    {
                        ledger.confirm(PendingConfirmation {
                            order: next.id,
                            quantity: allocation.quantity,
                            vendor_confirmed_at: placement.confirmed_at,
                        });
                    }
                }
            }
            StatusChange::Fail | StatusChange::Cancel | StatusChange::Expire => {
                if held_before {
                    let lines = next.lines.clone();
                    self.release_lines(&lines);
                }
            }
        }
        if held_before && !next.status.holds_stock() {
            self.deadlines
                .remove(&(deadline, ReservationOwner::Order(next.id)));
        }
        if held_before {
            self.hold_for_cancellation(&before, &dead);
        }
        self.note_pending_cancellations(next.id, &dead, transition.at);
        self.write_outbox(outbox.to_vec());
        self.write_outbox(cancellations);
        self.put_order(next.clone());
        Ok(next)
    }

    /// Keeps the units `order` (as it was) allocated under each dead key counted until
    /// the vendor confirms the key's cancellation.
    fn hold_for_cancellation(&mut self, order: &Order, dead: &[VendorKey]) {
        for key in dead {
            let mut rows = Vec::new();
            for (sku, quantity) in order.units_at(&key.vendor) {
                let row = (key.vendor.clone(), sku);
                if let Some(ledger) = self.stock.get_mut(&row) {
                    ledger.hold_for_cancellation(&key.key, quantity);
                    rows.push(row);
                }
            }
            if !rows.is_empty() {
                self.cancelling
                    .insert((key.vendor.clone(), key.key.clone()), rows);
            }
        }
    }

    /// Keeps each dead key a pending cancellation until its vendor confirms it.
    fn note_pending_cancellations(
        &mut self,
        order: OrderId,
        dead: &[VendorKey],
        at: OffsetDateTime,
    ) {
        for key in dead {
            self.pending_cancellations
                .entry((key.vendor.clone(), key.key.clone()))
                .or_insert(PendingCancellation {
                    order,
                    killed_at: at,
                    queued_at: at,
                });
        }
    }

    pub(super) fn requeue_cancellations(
        &mut self,
        queued_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32> {
        let mut due: Vec<((VendorId, String), PendingCancellation)> = self
            .pending_cancellations
            .iter()
            .filter(|(_, pending)| pending.queued_at <= queued_before)
            .map(|(key, pending)| (key.clone(), *pending))
            .collect();
        due.sort_by_key(|(_, pending)| pending.queued_at);
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let mut messages = Vec::with_capacity(due.len());
        for ((vendor, key), pending) in &due {
            let dead = VendorKey {
                vendor: vendor.clone(),
                key: key.clone(),
            };
            messages.push(OutboxMessage::vendor_cancellation(
                pending.order,
                &dead,
                pending.killed_at,
                now,
            )?);
        }
        for (key, _) in &due {
            if let Some(pending) = self.pending_cancellations.get_mut(key) {
                pending.queued_at = now;
            }
        }
        self.write_outbox(messages);
        Ok(u32::try_from(due.len()).unwrap_or(u32::MAX))
    }

    pub(super) fn cancellation_backlog(&self) -> CancellationBacklog {
        CancellationBacklog {
            pending: self.pending_cancellations.len() as u64,
            oldest_killed_at: self
                .pending_cancellations
                .values()
                .map(|pending| pending.killed_at)
                .min(),
        }
    }

    pub(super) fn vendor_cancellation_done(&mut self, vendor: &VendorId, key: &str) {
        self.pending_cancellations
            .remove(&(vendor.clone(), key.to_owned()));
        let Some(rows) = self.cancelling.remove(&(vendor.clone(), key.to_owned())) else {
            return;
        };
        for row in rows {
            if let Some(ledger) = self.stock.get_mut(&row) {
                ledger.cancellation_done(key);
            }
        }
    }

    pub(super) fn reroute(&mut self, reroute: &Reroute) -> Result<Order> {
        let order = self
            .orders
            .get(&reroute.order)
            .ok_or_else(|| Error::not_found("order", reroute.order))?;
        let keys: Vec<StockKey> = reroute
            .replacement
            .iter()
            .map(|a| (a.vendor.clone(), a.sku.clone()))
            .collect();
        let RerouteDecision {
            order: next,
            dead,
            cancellations,
            left: (left, moving),
            taken: _,
        } = self.locked_rows(keys.iter()).reroute(order, reroute)?;
        // Every check that can fail is done; now move the units (the old version's keys
        // hold theirs until their vendors confirm the cancellations).
        let before = self.orders.get(&reroute.order).cloned();
        if let Some(before) = before {
            self.hold_for_cancellation(&before, &dead);
        }
        self.note_pending_cancellations(next.id, &dead, reroute.at);
        if let Some(ledger) = self.stock.get_mut(&left) {
            ledger.release(moving);
        }
        for allocation in &reroute.replacement {
            if let Some(ledger) = self
                .stock
                .get_mut(&(allocation.vendor.clone(), allocation.sku.clone()))
            {
                ledger.try_reserve(allocation.quantity);
            }
        }
        self.write_outbox(cancellations);
        self.put_order(next.clone());
        Ok(next)
    }

    pub(super) fn place_hold(&mut self, placement: HoldPlacement) -> Result<Hold> {
        if placement.expires_at <= placement.at {
            return Err(Error::invalid("ttl", "must be positive"));
        }
        if self.holds.contains_key(&placement.id) {
            return Err(Error::conflict(format!(
                "hold {} already exists",
                placement.id
            )));
        }
        let (active, units) = self
            .holds
            .values()
            .filter(|hold| hold.customer == placement.customer && hold.status == HoldStatus::Active)
            .fold((0_u64, 0_u64), |(count, units), hold| {
                (count + 1, units + held_units(&hold.lines))
            });
        placement.check_limits(active, units)?;
        let lines = self.reserve_lines(&placement.lines, placement.fresh_since)?;
        let hold = Hold {
            id: placement.id,
            customer: placement.customer,
            lines,
            status: HoldStatus::Active,
            created_at: placement.at,
            expires_at: placement.expires_at,
            order: None,
        };
        self.deadlines
            .insert((hold.expires_at, ReservationOwner::Hold(hold.id)));
        self.holds.insert(hold.id, hold.clone());
        Ok(hold)
    }

    pub(super) fn hold(&self, id: HoldId) -> Result<Hold> {
        self.holds
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("hold", id))
    }

    fn active_hold(&self, id: HoldId, at: OffsetDateTime) -> Result<&Hold> {
        let hold = self
            .holds
            .get(&id)
            .ok_or_else(|| Error::not_found("hold", id))?;
        if hold.status != HoldStatus::Active {
            return Err(Error::conflict(format!(
                "hold {id} is {}",
                hold.status.as_str()
            )));
        }
        if hold.expires_at <= at {
            return Err(Error::conflict(format!("hold {id} has run out")));
        }
        Ok(hold)
    }

    pub(super) fn extend_hold(
        &mut self,
        id: HoldId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Hold> {
        let old = self.active_hold(id, at)?.expires_at;
        if expires_at <= at {
            return Err(Error::invalid("ttl", "must be positive"));
        }
        self.deadlines.remove(&(old, ReservationOwner::Hold(id)));
        self.deadlines
            .insert((expires_at, ReservationOwner::Hold(id)));
        let hold = self
            .holds
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("hold", id))?;
        hold.expires_at = expires_at;
        Ok(hold.clone())
    }

    pub(super) fn release_hold(&mut self, id: HoldId, _at: OffsetDateTime) -> Result<Hold> {
        let hold = self.hold(id)?;
        match hold.status {
            HoldStatus::Released | HoldStatus::Expired => Ok(hold),
            HoldStatus::Converted => Err(Error::conflict(format!(
                "hold {id} was turned into an order; cancel the order instead"
            ))),
            HoldStatus::Active => Ok(self.end_hold(hold, HoldStatus::Released)),
        }
    }

    fn end_hold(&mut self, mut hold: Hold, status: HoldStatus) -> Hold {
        self.release_lines(&hold.lines);
        self.deadlines
            .remove(&(hold.expires_at, ReservationOwner::Hold(hold.id)));
        hold.status = status;
        self.holds.insert(hold.id, hold.clone());
        hold
    }

    pub(super) fn convert_hold(&mut self, conversion: HoldConversion) -> Result<Placed> {
        conversion.details.validate()?;
        let hold = self.active_hold(conversion.hold, conversion.at)?.clone();
        if hold.customer != conversion.details.customer {
            return Err(Error::not_found("hold", hold.id));
        }
        if self.orders.contains_key(&conversion.order) {
            return Err(Error::conflict(format!(
                "order {} already exists",
                conversion.order
            )));
        }
        let mut order = Order::new_reserved(
            conversion.order,
            conversion.details,
            hold.lines.clone(),
            conversion.at,
            conversion.reserved_until,
            Some(hold.id),
            "placed from hold: stock reserved",
        );
        order.number = Some(self.next_order_number());
        self.deadlines
            .remove(&(hold.expires_at, ReservationOwner::Hold(hold.id)));
        self.deadlines
            .insert((order.reserved_until, ReservationOwner::Order(order.id)));
        let mut converted = hold;
        converted.status = HoldStatus::Converted;
        converted.order = Some(order.id);
        self.holds.insert(converted.id, converted);
        self.write_outbox(conversion.outbox);
        self.put_order(order.clone());
        Ok(Placed {
            order,
            replayed: false,
        })
    }

    pub(super) fn expire_overdue(&mut self, now: OffsetDateTime, limit: u32) -> ExpiredBatch {
        let due: Vec<(OffsetDateTime, ReservationOwner)> = self
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .copied()
            .collect();
        let mut batch = ExpiredBatch::default();
        for (_, owner) in due {
            match owner {
                ReservationOwner::Order(id) => {
                    let Some(order) = self.orders.get(&id) else {
                        continue;
                    };
                    let transition = Transition {
                        order: id,
                        expected_version: order.version,
                        change: StatusChange::Expire,
                        reason: "reservation ran out before the vendors confirmed".into(),
                        at: now,
                    };
                    if self.transition(&transition, &[]).is_ok() {
                        batch.orders.push(id);
                    }
                }
                ReservationOwner::Hold(id) => {
                    if let Some(hold) = self.holds.get(&id).cloned() {
                        self.end_hold(hold, HoldStatus::Expired);
                        batch.holds.push(id);
                    }
                }
            }
        }
        batch
    }

    /// Stores `order` (new, or a later version) and logs its new events with it.
    fn put_order(&mut self, order: Order) {
        let before = self.orders.get(&order.id).map_or(0, |held| held.version);
        self.event_log.record(before, &order);
        self.orders.insert(order.id, order);
    }

    pub(super) fn webhook_cursor(&self) -> Option<EventCursor> {
        self.webhook_cursor
    }

    /// Moves the dispatcher's position from `from` to `to` with `deliveries` written to
    /// the outbox, or neither (`Conflict`) if it is no longer at `from`.
    pub(super) fn dispatch_webhooks(
        &mut self,
        from: Option<EventCursor>,
        to: EventCursor,
        deliveries: Vec<OutboxMessage>,
    ) -> Result<()> {
        if self.webhook_cursor != from {
            return Err(Error::conflict(
                "the webhook dispatcher's position moved meanwhile",
            ));
        }
        self.webhook_cursor = Some(to);
        self.write_outbox(deliveries);
        Ok(())
    }

    pub(super) fn write_outbox(&mut self, messages: Vec<OutboxMessage>) {
        for message in messages {
            self.outbox.insert(
                message.message.id,
                OutboxEntry {
                    message,
                    leased_until: None,
                },
            );
        }
    }

    pub(super) fn claim_outbox(
        &mut self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Vec<OutboxMessage> {
        let mut claimed = Vec::new();
        for entry in self.outbox.values_mut() {
            if claimed.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                break;
            }
            claimed.extend(entry.lease(now, lease));
        }
        claimed
    }

    pub(super) fn claim_outbox_ids(
        &mut self,
        ids: &[MessageId],
        now: OffsetDateTime,
        lease: Duration,
    ) -> Vec<OutboxMessage> {
        let mut wanted: Vec<MessageId> = ids.to_vec();
        wanted.sort();
        wanted.dedup();
        wanted
            .into_iter()
            .filter_map(|id| self.outbox.get_mut(&id)?.lease(now, lease))
            .collect()
    }

    pub(super) fn mark_outbox_sent(&mut self, ids: &[MessageId]) {
        for id in ids {
            self.outbox.remove(id);
        }
    }

    pub(super) fn outbox_backlog(&self) -> OutboxBacklog {
        OutboxBacklog {
            messages: u64::try_from(self.outbox.len()).unwrap_or(u64::MAX),
            oldest: self
                .outbox
                .values()
                .map(|entry| entry.message.created_at)
                .min(),
        }
    }

    pub(super) fn active_reservations(&self) -> Vec<Reservation> {
        let from_orders = self
            .orders
            .values()
            .filter(|order| order.status.holds_stock())
            .flat_map(|order| {
                reservations_of(
                    ReservationOwner::Order(order.id),
                    &order.lines,
                    order.reserved_until,
                )
            });
        let from_holds = self
            .holds
            .values()
            .filter(|hold| hold.status == HoldStatus::Active)
            .flat_map(|hold| {
                reservations_of(
                    ReservationOwner::Hold(hold.id),
                    &hold.lines,
                    hold.expires_at,
                )
            });
        from_orders.chain(from_holds).collect()
    }
}

fn held_units(lines: &[OrderLine]) -> u64 {
    lines
        .iter()
        .map(|line| u64::from(line.quantity.get()))
        .sum()
}

fn reservations_of(
    owner: ReservationOwner,
    lines: &[OrderLine],
    expires_at: OffsetDateTime,
) -> impl Iterator<Item = Reservation> + '_ {
    lines.iter().flat_map(move |line| {
        line.allocations.iter().map(move |a| Reservation {
            owner,
            vendor: a.vendor.clone(),
            sku: a.sku.clone(),
            quantity: a.quantity,
            expires_at,
        })
    })
}
