//! Rows as PostgreSQL returns them, and their conversion into domain values.

use aggregator_core::Result;
use aggregator_core::domain::{
    Currency, CustomerId, Hold, HoldId, HoldStatus, Money, Order, OrderDetails, OrderEvent,
    OrderId, OrderLine, OrderStatus, ProductId, Vendor, VendorHealth, VendorId, VendorPlacement,
    VendorSku, VendorStock,
};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::corrupt;

/// A `vendors` row.
#[derive(Debug)]
pub(crate) struct VendorRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) base_url: String,
    pub(crate) priority: i32,
    pub(crate) health: String,
    pub(crate) last_good_sync: Option<OffsetDateTime>,
    pub(crate) consecutive_failures: i32,
    pub(crate) last_error: Option<String>,
}

impl VendorRow {
    pub(crate) fn into_vendor(self) -> Result<Vendor> {
        Ok(Vendor {
            id: VendorId::new(self.id).map_err(|e| corrupt("vendor id", e))?,
            name: self.name,
            base_url: self.base_url,
            priority: u16::try_from(self.priority).map_err(|e| corrupt("vendor priority", e))?,
            health: VendorHealth::parse(&self.health).map_err(|e| corrupt("vendor health", e))?,
            last_good_sync: self.last_good_sync,
            consecutive_failures: u32::try_from(self.consecutive_failures)
                .map_err(|e| corrupt("failure count", e))?,
            last_error: self.last_error,
        })
    }
}

/// A `vendor_stock` row.
#[derive(Debug)]
pub(crate) struct StockRow {
    pub(crate) vendor_id: String,
    pub(crate) sku: String,
    pub(crate) product_id: String,
    pub(crate) reported: i64,
    pub(crate) reserved: i64,
    pub(crate) confirmed_not_yet_reported: i64,
    pub(crate) as_of: OffsetDateTime,
    pub(crate) price_minor: i64,
    pub(crate) currency: String,
    pub(crate) version: i64,
}

impl StockRow {
    pub(crate) fn into_stock(self) -> Result<VendorStock> {
        Ok(VendorStock {
            vendor: VendorId::new(self.vendor_id).map_err(|e| corrupt("vendor id", e))?,
            sku: VendorSku::new(self.sku).map_err(|e| corrupt("sku", e))?,
            product: ProductId::new(self.product_id).map_err(|e| corrupt("product id", e))?,
            reported: self.reported,
            reserved: self.reserved,
            confirmed_not_yet_reported: self.confirmed_not_yet_reported,
            as_of: self.as_of,
            price: money(self.price_minor, &self.currency)?,
            version: self.version,
        })
    }
}

/// `value` as JSON text, for a `jsonb` column written through a `text[]` parameter.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> crate::tx::TxResult<String> {
    serde_json::to_string(value).map_err(|e| {
        aggregator_core::Error::permanent("postgres", format!("cannot encode an order: {e}")).into()
    })
}

pub(crate) fn money(minor: i64, currency: &str) -> Result<Money> {
    let currency = Currency::new(currency).map_err(|e| corrupt("currency", e))?;
    Money::new(minor, currency).map_err(|e| corrupt("price", e))
}

/// An `orders` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OrderRow {
    pub(crate) id: Uuid,
    pub(crate) number: i64,
    pub(crate) status: String,
    pub(crate) version: i64,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) reserved_until: OffsetDateTime,
    pub(crate) failure_reason: Option<String>,
    pub(crate) from_hold: Option<Uuid>,
    pub(crate) details: Json<OrderDetails>,
    pub(crate) lines: Json<Vec<OrderLine>>,
    pub(crate) vendor_placements: Json<Vec<VendorPlacement>>,
    pub(crate) events: Json<Vec<OrderEvent>>,
}

impl OrderRow {
    pub(crate) fn into_order(self) -> Result<Order> {
        Ok(Order {
            id: OrderId::from_uuid(self.id),
            number: Some(u64::try_from(self.number).map_err(|e| corrupt("order number", e))?),
            details: self.details.0,
            lines: self.lines.0,
            status: OrderStatus::parse(&self.status).map_err(|e| corrupt("order status", e))?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            reserved_until: self.reserved_until,
            failure_reason: self.failure_reason,
            vendor_placements: self.vendor_placements.0,
            from_hold: self.from_hold.map(HoldId::from_uuid),
            events: self.events.0,
        })
    }
}

/// A `holds` row.
#[derive(Debug)]
pub(crate) struct HoldRow {
    pub(crate) id: Uuid,
    pub(crate) customer_id: String,
    pub(crate) status: String,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) order_id: Option<Uuid>,
    pub(crate) lines: Json<Vec<OrderLine>>,
}

impl HoldRow {
    pub(crate) fn into_hold(self) -> Result<Hold> {
        Ok(Hold {
            id: HoldId::from_uuid(self.id),
            customer: CustomerId::new(self.customer_id).map_err(|e| corrupt("customer id", e))?,
            lines: self.lines.0,
            status: HoldStatus::parse(&self.status).map_err(|e| corrupt("hold status", e))?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            order: self.order_id.map(OrderId::from_uuid),
        })
    }
}
