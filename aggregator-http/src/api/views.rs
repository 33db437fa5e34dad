//! What the API answers (camelCase JSON), built from the core's types.

use aggregator_core::domain::{
    Allocation, Hold, Money, Order, OrderEvent, OrderLine, ShippingAddress, Vendor, VendorPlacement,
};
use aggregator_core::service::{ProductAvailability, VendorAvailability};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// An amount of money.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoneyView {
    /// In minor units (cents).
    pub minor_units: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// As a decimal string, e.g. `"999.99"`.
    pub amount: String,
}

impl From<Money> for MoneyView {
    fn from(money: Money) -> Self {
        let minor = money.minor_units();
        Self {
            minor_units: minor,
            currency: money.currency().as_str().to_owned(),
            amount: format!("{}.{:02}", minor / 100, minor % 100),
        }
    }
}

/// Units of a line taken from one vendor SKU.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationView {
    /// The vendor.
    pub vendor: String,
    /// Its SKU.
    pub sku: String,
    /// Units.
    pub quantity: u32,
    /// The catalog price per unit when placed.
    pub unit_price: MoneyView,
}

impl From<&Allocation> for AllocationView {
    fn from(a: &Allocation) -> Self {
        Self {
            vendor: a.vendor.to_string(),
            sku: a.sku.to_string(),
            quantity: a.quantity.get(),
            unit_price: a.unit_price.into(),
        }
    }
}

/// One line of an order or hold.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    /// The item as asked (SKU or product id).
    pub item: String,
    /// The canonical product.
    pub product_id: String,
    /// Units.
    pub quantity: u32,
    /// Where the units come from.
    pub allocations: Vec<AllocationView>,
}

impl From<&OrderLine> for LineView {
    fn from(line: &OrderLine) -> Self {
        Self {
            item: line.item.clone(),
            product_id: line.product.to_string(),
            quantity: line.quantity.get(),
            allocations: line.allocations.iter().map(AllocationView::from).collect(),
        }
    }
}

/// A shipping address.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressView {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// State or region.
    pub state: Option<String>,
    /// Postal code.
    pub zip_code: String,
    /// Country.
    pub country: String,
}

impl From<&ShippingAddress> for AddressView {
    fn from(a: &ShippingAddress) -> Self {
        Self {
            street: a.street.clone(),
            city: a.city.clone(),
            state: a.state.clone(),
            zip_code: a.zip_code.clone(),
            country: a.country.clone(),
        }
    }
}

/// A vendor's acceptance of its part.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementView {
    /// The vendor.
    pub vendor: String,
    /// The vendor's order id.
    pub vendor_order_id: String,
    /// The vendor's clock at confirmation.
    pub confirmed_at: String,
}

impl From<&VendorPlacement> for PlacementView {
    fn from(p: &VendorPlacement) -> Self {
        Self {
            vendor: p.vendor.to_string(),
            vendor_order_id: p.vendor_order_id.clone(),
            confirmed_at: rfc3339(p.confirmed_at),
        }
    }
}

/// One change of an order's status.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// The status before (none for the first).
    pub from: Option<String>,
    /// The status after.
    pub to: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: String,
    /// The order's version after it (as in the event stream and webhooks).
    pub version: i64,
}

impl From<&OrderEvent> for EventView {
    fn from(e: &OrderEvent) -> Self {
        Self {
            from: e.from.map(|s| s.as_str().to_owned()),
            to: e.to.as_str().to_owned(),
            reason: e.reason.clone(),
            at: rfc3339(e.at),
            version: e.version,
        }
    }
}

/// An order.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// Its id (UUID v7).
    pub id: String,
    /// Its number for people, `ORD-` and at least six digits (`ORD-001042`); given when
    /// the order is stored, so every order answered has one.
    pub order_number: Option<String>,
    /// `pending`, `reserved`, `confirmed`, `failed`, `cancelled` or `expired`.
    pub status: String,
    /// The customer.
    pub customer_id: String,
    /// The customer's e-mail.
    pub customer_email: Option<String>,
    /// Where to ship.
    pub shipping_address: Option<AddressView>,
    /// How the customer pays.
    pub payment_method: Option<String>,
    /// Free text.
    pub notes: Option<String>,
    /// The lines.
    pub items: Vec<LineView>,
    /// The sum of every allocation's units times its unit price.
    pub total: Option<MoneyView>,
    /// Until when its units are held unconfirmed.
    pub reserved_until: String,
    /// Why it failed, if it did.
    pub failure_reason: Option<String>,
    /// Vendors' acceptances.
    pub vendor_placements: Vec<PlacementView>,
    /// The hold it came from, if any.
    pub from_hold: Option<String>,
    /// Its history.
    pub events: Vec<EventView>,
    /// Changes so far (optimistic-locking version).
    pub version: i64,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

fn total(lines: &[OrderLine]) -> Option<MoneyView> {
    let mut sum: Option<Money> = None;
    for allocation in lines.iter().flat_map(|l| &l.allocations) {
        let part = allocation
            .unit_price
            .times(allocation.quantity.get())
            .ok()?;
        sum = Some(match sum {
            Some(s) => s.plus(part).ok()?,
            None => part,
        });
    }
    sum.map(MoneyView::from)
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id.to_string(),
            order_number: o.order_number(),
            status: o.status.as_str().to_owned(),
            customer_id: o.details.customer.to_string(),
            customer_email: o.details.email.as_ref().map(|e| e.as_str().to_owned()),
            shipping_address: o.details.shipping_address.as_ref().map(AddressView::from),
            payment_method: o.details.payment_method.clone(),
            notes: o.details.notes.clone(),
            items: o.lines.iter().map(LineView::from).collect(),
            total: total(&o.lines),
            reserved_until: rfc3339(o.reserved_until),
            failure_reason: o.failure_reason.clone(),
            vendor_placements: o
                .vendor_placements
                .iter()
                .map(PlacementView::from)
                .collect(),
            from_hold: o.from_hold.map(|h| h.to_string()),
            events: o.events.iter().map(EventView::from).collect(),
            version: o.version,
            created_at: rfc3339(o.created_at),
            updated_at: rfc3339(o.updated_at),
        }
    }
}

/// Every success answer of the API: `{ "success": true, "data": { ... } }`, the envelope
/// clients of the original system read.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Answer<T: ToSchema> {
    /// Always `true`.
    pub success: bool,
    /// What was asked for.
    pub data: T,
}

impl<T: ToSchema> Answer<T> {
    /// `data` in the envelope.
    pub fn new(data: T) -> Self {
        Self {
            success: true,
            data,
        }
    }
}

/// The answer to placing an order: the envelope, with the order's id also at the top
/// level (clients of the original system read `orderId` there).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacedView {
    /// Always `true`.
    pub success: bool,
    /// The order's id.
    pub order_id: String,
    /// The order, and whether this answers an earlier request again.
    pub data: PlacedData,
}

/// What placing an order answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacedData {
    /// The order.
    pub order: OrderView,
    /// True when an earlier request with the same Idempotency-Key is being answered.
    pub replayed: bool,
}

impl PlacedView {
    /// The answer to a placement: `201` for a new order, `200` for a replay.
    pub(crate) fn answer(
        placed: &aggregator_core::traits::Placed,
    ) -> (axum::http::StatusCode, axum::Json<Self>) {
        let status = if placed.replayed {
            axum::http::StatusCode::OK
        } else {
            axum::http::StatusCode::CREATED
        };
        let view = Self {
            success: true,
            order_id: placed.order.id.to_string(),
            data: PlacedData {
                order: OrderView::from(&placed.order),
                replayed: placed.replayed,
            },
        };
        (status, axum::Json(view))
    }
}

/// One order, or one order after a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderData {
    /// The order.
    pub order: OrderView,
}

/// Where a page sits in a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// This page (from 1).
    pub page: u64,
    /// Items per page.
    pub limit: u32,
    /// Items in all.
    pub total: u64,
    /// Pages in all.
    pub pages: u64,
}

impl Pagination {
    pub(crate) fn new(page: u64, limit: u32, total: u64) -> Self {
        Self {
            page,
            limit,
            total,
            pages: total.div_ceil(u64::from(limit.max(1))),
        }
    }
}

/// A page of orders.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    /// The orders, newest first.
    pub orders: Vec<OrderView>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// A hold.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldView {
    /// Its id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// `active`, `released`, `expired` or `converted`.
    pub status: String,
    /// What is held.
    pub items: Vec<LineView>,
    /// Created.
    pub created_at: String,
    /// When it runs out unless extended.
    pub expires_at: String,
    /// The order it became, if converted.
    pub order_id: Option<String>,
}

/// One hold.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldData {
    /// The hold.
    pub hold: HoldView,
}

impl From<&Hold> for HoldData {
    fn from(h: &Hold) -> Self {
        Self {
            hold: HoldView::from(h),
        }
    }
}

impl From<&Hold> for HoldView {
    fn from(h: &Hold) -> Self {
        Self {
            id: h.id.to_string(),
            customer_id: h.customer.to_string(),
            status: h.status.as_str().to_owned(),
            items: h.lines.iter().map(LineView::from).collect(),
            created_at: rfc3339(h.created_at),
            expires_at: rfc3339(h.expires_at),
            order_id: h.order.map(|o| o.to_string()),
        }
    }
}

/// One vendor's figures for a product.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorStockView {
    /// The vendor.
    pub vendor: String,
    /// Its SKU.
    pub sku: String,
    /// Units that can be sold (`reported - reserved - confirmedNotYetReported`, may be
    /// negative).
    pub sellable: i64,
    /// Units the vendor last reported.
    pub reported: i64,
    /// Units we hold for orders and holds.
    pub reserved: i64,
    /// Units confirmed to us that the vendor's report does not include yet.
    pub confirmed_not_yet_reported: i64,
    /// Price per unit.
    pub price: MoneyView,
    /// The vendor's time of its report.
    pub as_of: String,
    /// Whether this vendor's data is fresh enough to count.
    pub fresh: bool,
    /// The vendor's health.
    pub health: String,
}

impl From<&VendorAvailability> for VendorStockView {
    fn from(v: &VendorAvailability) -> Self {
        Self {
            vendor: v.vendor.to_string(),
            sku: v.sku.to_string(),
            sellable: v.sellable,
            reported: v.reported,
            reserved: v.reserved,
            confirmed_not_yet_reported: v.confirmed_not_yet_reported,
            price: v.price.into(),
            as_of: rfc3339(v.as_of),
            fresh: v.fresh,
            health: v.health.as_str().to_owned(),
        }
    }
}

/// A product's aggregated availability.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    /// The canonical product id.
    pub product_id: String,
    /// Units that can be sold now (fresh vendors only).
    pub available: u64,
    /// Every vendor's figures, counted or not.
    pub vendors: Vec<VendorStockView>,
}

impl From<&ProductAvailability> for ProductView {
    fn from(p: &ProductAvailability) -> Self {
        Self {
            product_id: p.product.to_string(),
            available: p.available,
            vendors: p.vendors.iter().map(VendorStockView::from).collect(),
        }
    }
}

/// One product.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductData {
    /// The product.
    pub product: ProductView,
}

/// A page of products.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductPage {
    /// The products, by id.
    pub products: Vec<ProductView>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// A vendor and its health.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorView {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Allocation preference (lower first).
    pub priority: u16,
    /// `healthy`, `degraded` or `down`.
    pub health: String,
    /// Our clock's time of its last good sync.
    pub last_good_sync: Option<String>,
    /// Failed syncs since the last good one.
    pub consecutive_failures: u32,
    /// Why the last sync failed.
    pub last_error: Option<String>,
}

impl From<&Vendor> for VendorView {
    fn from(v: &Vendor) -> Self {
        Self {
            id: v.id.to_string(),
            name: v.name.clone(),
            priority: v.priority,
            health: v.health.as_str().to_owned(),
            last_good_sync: v.last_good_sync.map(rfc3339),
            consecutive_failures: v.consecutive_failures,
            last_error: v.last_error.clone(),
        }
    }
}

/// Every vendor.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorData {
    /// The vendors, by priority.
    pub vendors: Vec<VendorView>,
}
