//! What vendors send, read strictly: every field checked, every fault named.

use aggregator_core::domain::{
    Currency, MAX_REPORTED_QUANTITY, Money, ProductId, SnapshotRow, VendorSku,
};
use aggregator_core::traits::{StockPage, VendorInfo, VendorShortSku};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why a vendor's answer was refused: where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFault {
    /// Where: a header's name, `body`, or a path into the body such as `[3].quantity`.
    pub field: String,
    /// What is wrong there.
    pub reason: String,
}

impl WireFault {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for WireFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

/// Parses JSON into `T`, naming the path of the first bad value (`[3].quantity`).
pub(crate) fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireFault> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let field = if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        WireFault::new(field, inner.to_string())
    })
}

pub(crate) fn timestamp(field: &str, text: &str) -> Result<OffsetDateTime, WireFault> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| WireFault::new(field, format!("{text:?} is not an RFC 3339 time: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePrice {
    minor_units: i64,
    currency: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStockRow {
    sku: String,
    product_id: String,
    quantity: i64,
    price: WirePrice,
    as_of: Option<String>,
}

/// The rows of one stock page, checked; `page_as_of` stands in for rows without their
/// own `asOf`.
pub(crate) fn stock_rows(
    body: &[u8],
    page_as_of: OffsetDateTime,
) -> Result<Vec<SnapshotRow>, WireFault> {
    let rows: Vec<WireStockRow> = json(body)?;
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = |field: &str| format!("[{i}].{field}");
            let sku =
                VendorSku::new(&row.sku).map_err(|e| WireFault::new(at("sku"), e.to_string()))?;
            let product = ProductId::new(&row.product_id)
                .map_err(|e| WireFault::new(at("productId"), e.to_string()))?;
            if !(0..=MAX_REPORTED_QUANTITY).contains(&row.quantity) {
                return Err(WireFault::new(
                    at("quantity"),
                    format!(
                        "{} for {sku} is outside 0..={MAX_REPORTED_QUANTITY}",
                        row.quantity
                    ),
                ));
            }
            let currency = Currency::new(&row.price.currency)
                .map_err(|e| WireFault::new(at("price.currency"), e.to_string()))?;
            let price = Money::new(row.price.minor_units, currency)
                .map_err(|e| WireFault::new(at("price.minorUnits"), e.to_string()))?;
            let as_of = match &row.as_of {
                Some(text) => timestamp(&at("asOf"), text)?,
                None => page_as_of,
            };
            Ok(SnapshotRow {
                sku,
                product,
                quantity: row.quantity,
                price,
                as_of,
            })
        })
        .collect()
}

/// Reads page `page` of a vendor's stock feed, asked for with `limit` rows, exactly as
/// the HTTP client does: `total_count` and `as_of` are the `X-Total-Count` and
/// `X-As-Of` headers (`None` when missing), `body` the JSON array of rows. Refuses, naming
/// the field, a missing or malformed header, any bad row, more rows than asked for, and
/// a short page before the end of the feed. `page` and `limit` must be at least 1.
pub fn stock_page(
    page: u32,
    limit: u32,
    total_count: Option<&str>,
    as_of: Option<&str>,
    body: &[u8],
) -> Result<StockPage, WireFault> {
    if page == 0 || limit == 0 {
        return Err(WireFault::new(
            "page",
            format!("page {page} of {limit} rows: both start at 1"),
        ));
    }
    let total = total_count.ok_or_else(|| WireFault::new("x-total-count", "header missing"))?;
    let total: u64 = total
        .parse()
        .map_err(|_| WireFault::new("x-total-count", format!("{total:?} is not a count")))?;
    let as_of = as_of.ok_or_else(|| WireFault::new("x-as-of", "header missing"))?;
    let as_of = timestamp("x-as-of", as_of)?;
    let rows = stock_rows(body, as_of)?;
    let asked = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > asked {
        return Err(WireFault::new(
            "body",
            format!("{} rows where at most {limit} were asked for", rows.len()),
        ));
    }
    let read = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    let seen = u64::from(page - 1)
        .saturating_mul(u64::from(limit))
        .saturating_add(read);
    let next_page = if seen < total {
        if rows.len() < asked {
            return Err(WireFault::new(
                "body",
                format!(
                    "a short page ({} rows) before the end of {total} rows",
                    rows.len()
                ),
            ));
        }
        Some(page.checked_add(1).ok_or_else(|| {
            WireFault::new(
                "x-total-count",
                format!("{total} rows need more pages than there are"),
            )
        })?)
    } else {
        None
    };
    // A feed of no rows still has its (empty) first page.
    let last_page = u32::try_from(total.div_ceil(u64::from(limit)).max(1)).ok();
    Ok(StockPage {
        rows,
        as_of,
        next_page,
        last_page,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireInfo {
    name: String,
    sku_count: u64,
}

pub(crate) fn info(body: &[u8]) -> Result<VendorInfo, WireFault> {
    let info: WireInfo = json(body)?;
    if info.name.trim().is_empty() {
        return Err(WireFault::new("name", "is empty"));
    }
    Ok(VendorInfo {
        name: info.name,
        sku_count: info.sku_count,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOrder {
    order_id: String,
    status: String,
    confirmed_at: String,
}

/// An accepted order: the vendor's order id and its clock at confirmation.
pub(crate) fn accepted_order(body: &[u8]) -> Result<(String, OffsetDateTime), WireFault> {
    let order: WireOrder = json(body)?;
    if order.order_id.is_empty() || order.order_id.len() > 200 {
        return Err(WireFault::new("orderId", "must have 1 to 200 characters"));
    }
    if order.status != "confirmed" {
        return Err(WireFault::new(
            "status",
            format!("{:?} where \"confirmed\" was expected", order.status),
        ));
    }
    let confirmed_at = timestamp("confirmedAt", &order.confirmed_at)?;
    Ok((order.order_id, confirmed_at))
}

#[derive(Debug, Deserialize)]
struct WireRefusal {
    error: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    short: Vec<WireShort>,
}

#[derive(Debug, Deserialize)]
struct WireShort {
    sku: String,
    available: i64,
}

/// A vendor's `409` to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Short of stock for these SKUs.
    Short(Vec<VendorShortSku>),
    /// Some other conflict (e.g. the key's order was cancelled), with the vendor's words.
    Other { code: String, detail: String },
}

pub(crate) fn refusal(body: &[u8]) -> Result<Refusal, WireFault> {
    let refusal: WireRefusal = json(body)?;
    if refusal.error != "insufficient_stock" {
        return Ok(Refusal::Other {
            code: refusal.error,
            detail: refusal.detail,
        });
    }
    if refusal.short.is_empty() {
        return Err(WireFault::new(
            "short",
            "a stock refusal must name its SKUs",
        ));
    }
    refusal
        .short
        .into_iter()
        .enumerate()
        .map(|(i, short)| {
            let sku = VendorSku::new(&short.sku)
                .map_err(|e| WireFault::new(format!("short[{i}].sku"), e.to_string()))?;
            let available = u64::try_from(short.available).map_err(|_| {
                WireFault::new(
                    format!("short[{i}].available"),
                    format!("{} is negative", short.available),
                )
            })?;
            Ok(VendorShortSku { sku, available })
        })
        .collect::<Result<_, _>>()
        .map(Refusal::Short)
}

/// The `error` and `detail` of a vendor's error body, or a piece of the raw text.
pub(crate) fn error_summary(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct WireError {
        error: Option<String>,
        detail: Option<String>,
    }
    if let Ok(WireError { error, detail }) = serde_json::from_slice::<WireError>(body) {
        match (error, detail) {
            (Some(error), Some(detail)) => return format!("{error}: {detail}"),
            (Some(text), None) | (None, Some(text)) => return text,
            (None, None) => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AS_OF: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn row(quantity: &str) -> String {
        format!(
            r#"[{{"sku":"LAPTOP-a-001","productId":"LAPTOP-001","quantity":{quantity},"price":{{"minorUnits":100,"currency":"USD"}}}}]"#
        )
    }

    #[test]
    fn a_stock_page_is_read_with_its_headers_and_its_place_in_the_feed() {
        let at = Some("2026-11-25T12:00:00Z");
        let body = row("7");
        let last = stock_page(3, 1, Some("3"), at, body.as_bytes()).expect("the last page");
        assert_eq!((last.next_page, last.last_page), (None, Some(3)));
        assert_eq!(last.as_of, AS_OF);
        let middle = stock_page(2, 1, Some("3"), at, body.as_bytes()).expect("a middle page");
        assert_eq!(middle.next_page, Some(3));
        let empty = stock_page(1, 10, Some("0"), at, b"[]").expect("an empty feed");
        assert_eq!((empty.next_page, empty.last_page), (None, Some(1)));
        for (page, limit, total, as_of, body, field) in [
            (1, 1, None, at, body.as_str(), "x-total-count"),
            (1, 1, Some("-1"), at, body.as_str(), "x-total-count"),
            (1, 1, Some("1"), None, body.as_str(), "x-as-of"),
            (1, 1, Some("1"), Some("yesterday"), body.as_str(), "x-as-of"),
            (1, 2, Some("5"), at, body.as_str(), "body"),
            (1, 1, Some("1"), at, "[{}, {}]", "[0]"),
            (0, 1, Some("1"), at, body.as_str(), "page"),
            (1, 0, Some("1"), at, body.as_str(), "page"),
            (
                u32::MAX,
                1,
                Some("18446744073709551615"),
                at,
                body.as_str(),
                "x-total-count",
            ),
        ] {
            let fault = stock_page(page, limit, total, as_of, body.as_bytes())
                .expect_err(&format!("{page} {limit} {total:?} {as_of:?} {body}"));
            assert_eq!(fault.field, field, "{fault}");
        }
        let two = format!(
            "[{},{}]",
            &body[1..body.len() - 1],
            &body[1..body.len() - 1]
        );
        let fault = stock_page(1, 1, Some("2"), at, two.as_bytes()).expect_err("too many rows");
        assert!(fault.reason.contains("at most 1"), "{fault}");
    }

    #[test]
    fn good_rows_are_read_with_the_page_time() {
        let rows = stock_rows(row("7").as_bytes(), AS_OF).expect("valid");
        assert_eq!(rows[0].quantity, 7);
        assert_eq!(rows[0].as_of, AS_OF);
        assert_eq!(rows[0].product.as_str(), "LAPTOP-001");
    }

    #[test]
    fn every_bad_row_names_its_field() {
        for (body, field) in [
            (row("-1"), "[0].quantity"),
            (row("1000000000000"), "[0].quantity"),
            (row("\"7\""), "[0].quantity"),
            (row("1.5"), "[0].quantity"),
            (r#"[{"sku":"A","productId":"B","price":{"minorUnits":1,"currency":"USD"}}]"#.into(), "[0]"),
            (r#"[{"sku":"A B","productId":"B","quantity":1,"price":{"minorUnits":1,"currency":"USD"}}]"#.into(), "[0].sku"),
            (r#"[{"sku":"A","productId":"","quantity":1,"price":{"minorUnits":1,"currency":"USD"}}]"#.into(), "[0].productId"),
            (r#"[{"sku":"A","productId":"B","quantity":1,"price":{"minorUnits":-1,"currency":"USD"}}]"#.into(), "[0].price.minorUnits"),
            (r#"[{"sku":"A","productId":"B","quantity":1,"price":{"minorUnits":1,"currency":"dollars"}}]"#.into(), "[0].price.currency"),
            (r#"[{"sku":"A","productId":"B","quantity":1,"price":{"minorUnits":1,"currency":"USD"},"asOf":"yesterday"}]"#.into(), "[0].asOf"),
            (r#"{"not":"an array"}"#.into(), "body"),
            (r#"[{"sku":"A""#.into(), "[0]"),
        ] {
            let fault = stock_rows(body.as_bytes(), AS_OF).expect_err(&body);
            assert!(fault.field.starts_with(field), "{body}: {fault}");
        }
    }

    #[test]
    fn order_answers_and_refusals() {
        let (id, at) = accepted_order(
            br#"{"orderId":"VendorA-1","status":"confirmed","confirmedAt":"2026-11-25T12:00:00Z"}"#,
        )
        .expect("valid");
        assert_eq!((id.as_str(), at), ("VendorA-1", AS_OF));
        assert!(
            accepted_order(
                br#"{"orderId":"x","status":"cancelled","confirmedAt":"2026-11-25T12:00:00Z"}"#
            )
            .is_err()
        );
        assert!(accepted_order(br#"{"orderId":"x","status":"confirmed"}"#).is_err());
        let short =
            refusal(br#"{"error":"insufficient_stock","short":[{"sku":"A","available":2}]}"#)
                .expect("valid");
        assert!(matches!(short, Refusal::Short(ref s) if s[0].available == 2));
        assert!(refusal(br#"{"error":"insufficient_stock","short":[]}"#).is_err());
        assert!(
            refusal(br#"{"error":"insufficient_stock","short":[{"sku":"A","available":-2}]}"#)
                .is_err()
        );
        let other = refusal(br#"{"error":"order_cancelled","detail":"gone"}"#).expect("valid");
        assert!(matches!(other, Refusal::Other { ref code, .. } if code == "order_cancelled"));
        assert_eq!(
            error_summary(br#"{"error":"outage","detail":"down"}"#),
            "outage: down"
        );
        assert_eq!(error_summary(b"plain text"), "plain text");
        assert!(info(br#"{"name":"","skuCount":1}"#).is_err());
        assert_eq!(
            info(br#"{"name":"A","skuCount":3}"#).map(|i| i.sku_count),
            Ok(3)
        );
    }
}
