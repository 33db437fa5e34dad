//! What clients send, as the seed defined it (camelCase JSON).

use serde::Deserialize;
use utoipa::ToSchema;

/// The seed's one-line order: `POST /order`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimpleOrderBody {
    /// A canonical product id (`LAPTOP-001`) or a vendor SKU (`LAPTOP-a-001`).
    #[schema(example = "LAPTOP-001")]
    pub product_id: String,
    /// Units, from 1 to the per-line limit (1,000 by default).
    #[schema(minimum = 1, example = 1)]
    pub quantity: i64,
    /// The customer; with a client API key it must be the key's customer (or left out).
    #[schema(example = "test")]
    pub customer_id: Option<String>,
}

/// One item of `POST /api/orders`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderItemBody {
    /// A vendor SKU (`LAPTOP-a-001`, pinned to that vendor) or a canonical product id
    /// (`LAPTOP-001`, the allocator picks vendors).
    #[schema(example = "LAPTOP-a-001")]
    pub sku: String,
    /// Units, from 1 to the per-line limit (1,000 by default).
    #[schema(minimum = 1, example = 1)]
    pub quantity: i64,
    /// The price per unit the client expects. Prices always come from the catalog: if
    /// this is sent and matches no current catalog price of the item, the order is
    /// refused with `422 price-mismatch` before anything is reserved.
    #[schema(example = 999.99)]
    pub unit_price: Option<f64>,
}

/// A shipping address.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressBody {
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

/// The seed's full order: `POST /api/orders`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderBody {
    /// The customer; with a client API key it must be the key's customer (or left out).
    #[schema(example = "test-customer")]
    pub customer_id: Option<String>,
    /// The customer's e-mail.
    #[schema(example = "test@example.com")]
    pub customer_email: Option<String>,
    /// What to buy: 1 to 50 items.
    pub items: Vec<OrderItemBody>,
    /// Where to ship.
    pub shipping_address: Option<AddressBody>,
    /// How the customer pays, e.g. `credit_card`.
    pub payment_method: Option<String>,
    /// Free text, up to 2,000 characters.
    pub notes: Option<String>,
}

/// `POST /api/orders/{id}/cancel`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelBody {
    /// Why (kept in the order's history).
    pub reason: Option<String>,
}

/// One item of a hold.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldItemBody {
    /// A vendor SKU or a canonical product id.
    pub sku: String,
    /// Units.
    #[schema(minimum = 1)]
    pub quantity: i64,
}

/// `POST /api/holds`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldBody {
    /// The customer; with a client API key it must be the key's customer (or left out).
    pub customer_id: Option<String>,
    /// What to hold.
    pub items: Vec<HoldItemBody>,
    /// How long to hold, in seconds (1 to the configured maximum, 30 minutes by default).
    #[schema(minimum = 1, example = 600)]
    pub ttl_seconds: i64,
}

/// `POST /api/holds/{id}/extend`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtendBody {
    /// The new time to live from now, in seconds.
    #[schema(minimum = 1, example = 600)]
    pub ttl_seconds: i64,
}

/// `POST /api/holds/{id}/order`: the order's details (the items are the hold's).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldOrderBody {
    /// The customer's e-mail.
    pub customer_email: Option<String>,
    /// Where to ship.
    pub shipping_address: Option<AddressBody>,
    /// How the customer pays.
    pub payment_method: Option<String>,
    /// Free text.
    pub notes: Option<String>,
}

/// `POST /api/ops/stock-sync`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StockSyncBody {
    /// One vendor to sync; every vendor when left out.
    pub vendor: Option<String>,
}

/// `POST /api/ops/dlq/{queue}/replay`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayBody {
    /// One dead letter (by message id) to replay; all when left out.
    pub message_id: Option<String>,
}
