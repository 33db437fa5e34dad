//! What clients send, as the seed defined it (camelCase JSON).

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

/// Reads a JSON number that is whole (`3` or `3.0`), refusing `1.5`.
fn whole<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::de::Error as _;
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(value) = number.as_i64() {
        return Ok(value);
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && value.abs() < 9.0e18 => Ok(value as i64),
        _ => Err(D::Error::custom(format!("{number} is not a whole number"))),
    }
}

/// The seed's one-line order: `POST /order`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimpleOrderBody {
    /// A canonical product id (`LAPTOP-001`) or a vendor SKU (`LAPTOP-a-001`).
    #[schema(example = "LAPTOP-001", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub product_id: String,
    /// Units, from 1 to the per-line limit (1,000 by default).
    #[schema(minimum = 1, maximum = 1000, example = 1)]
    #[serde(deserialize_with = "whole")]
    pub quantity: i64,
    /// The customer; with a client API key it must be the key's customer (or left out).
    #[schema(
        example = "test",
        pattern = "^[A-Za-z0-9._@:+-]{1,128}$",
        required = true,
        nullable = false
    )]
    pub customer_id: Option<String>,
}

/// One item of `POST /api/orders`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderItemBody {
    /// A vendor SKU (`LAPTOP-a-001`, pinned to that vendor) or a canonical product id
    /// (`LAPTOP-001`, the allocator picks vendors).
    #[schema(example = "LAPTOP-a-001", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// Units, from 1 to the per-line limit (1,000 by default).
    #[schema(minimum = 1, maximum = 1000, example = 1)]
    #[serde(deserialize_with = "whole")]
    pub quantity: i64,
    /// The price per unit the client agreed to pay. When sent, the line is allocated
    /// only to vendors selling the item at exactly this price and charged it; if it
    /// matches no current catalog price of the item, the order is refused with `409
    /// price-mismatch` naming the current prices, before anything is reserved.
    #[schema(example = 999.99, minimum = 0, maximum = 1000000000000.0)]
    pub unit_price: Option<f64>,
}

/// A shipping address.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressBody {
    /// Street and number.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*\\S[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub street: String,
    /// City.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*\\S[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub city: String,
    /// State or region.
    #[schema(max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub state: Option<String>,
    /// Postal code.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*\\S[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub zip_code: String,
    /// Country.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*\\S[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub country: String,
}

/// The seed's full order: `POST /api/orders`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderBody {
    /// The customer; with a client API key it must be the key's customer (or left out).
    #[schema(
        example = "test-customer",
        pattern = "^[A-Za-z0-9._@:+-]{1,128}$",
        required = true,
        nullable = false
    )]
    pub customer_id: Option<String>,
    /// The customer's e-mail.
    #[schema(
        example = "test@example.com",
        pattern = "^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63})+$"
    )]
    pub customer_email: Option<String>,
    /// What to buy: 1 to 100 items.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<OrderItemBody>,
    /// Where to ship.
    pub shipping_address: Option<AddressBody>,
    /// How the customer pays, e.g. `credit_card`.
    #[schema(
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*\\S[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub payment_method: Option<String>,
    /// Free text, up to 2,000 characters.
    #[schema(max_length = 2000, pattern = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$")]
    pub notes: Option<String>,
}

/// `POST /api/orders/{id}/cancel`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelBody {
    /// Why (kept in the order's history).
    #[schema(max_length = 500, pattern = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$")]
    pub reason: Option<String>,
}

/// One item of a hold.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldItemBody {
    /// A vendor SKU or a canonical product id.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// Units.
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(deserialize_with = "whole")]
    pub quantity: i64,
}

/// `POST /api/holds`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldBody {
    /// The customer; with a client API key it must be the key's customer (or left out).
    #[schema(pattern = "^[A-Za-z0-9._@:+-]{1,128}$")]
    pub customer_id: Option<String>,
    /// What to hold.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<HoldItemBody>,
    /// How long to hold, in seconds (1 to the configured maximum, 30 minutes by default).
    #[schema(minimum = 1, maximum = 1800, example = 600)]
    #[serde(deserialize_with = "whole")]
    pub ttl_seconds: i64,
}

/// `POST /api/holds/{id}/extend`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtendBody {
    /// The new time to live from now, in seconds.
    #[schema(minimum = 1, maximum = 1800, example = 600)]
    #[serde(deserialize_with = "whole")]
    pub ttl_seconds: i64,
}

/// `POST /api/holds/{id}/order`: the order's details (the items are the hold's).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldOrderBody {
    /// The customer's e-mail.
    #[schema(pattern = "^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63})+$")]
    pub customer_email: Option<String>,
    /// Where to ship.
    pub shipping_address: Option<AddressBody>,
    /// How the customer pays.
    #[schema(
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*\\S[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub payment_method: Option<String>,
    /// Free text.
    #[schema(max_length = 2000, pattern = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$")]
    pub notes: Option<String>,
}

/// `POST /api/ops/stock-sync`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StockSyncBody {
    /// One vendor to sync; every vendor when left out.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub vendor: Option<String>,
}

/// `POST /api/ops/dlq/{queue}/replay`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayBody {
    /// One dead letter (by message id) to replay; all when left out.
    #[schema(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub message_id: Option<String>,
}
