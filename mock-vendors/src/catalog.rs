//! The generated catalog a mock vendor sells from.

use crate::rng::SeededRng;

/// The seed's canonical products: name, number and price in cents (the seed's examples
/// quote 999.99 for a laptop and 599.99 for a smartphone). Every mock vendor carries all
/// of them under its own SKUs (`LAPTOP-a-001` at the vendor tagged `a`) at these prices,
/// so allocation and re-routing always have a choice between vendors.
const SEED_PRODUCTS: [(&str, u32, i64); 10] = [
    ("LAPTOP", 1, 99_999),
    ("SMARTPHONE", 2, 59_999),
    ("TABLET", 3, 44_999),
    ("HEADPHONES", 4, 19_999),
    ("MONITOR", 5, 29_999),
    ("KEYBOARD", 6, 7_999),
    ("MOUSE", 7, 2_999),
    ("CAMERA", 8, 54_999),
    ("SPEAKER", 9, 12_999),
    ("WATCH", 10, 24_999),
];

/// How many products the default catalog has (the seed's ten).
pub const SEED_PRODUCT_COUNT: usize = SEED_PRODUCTS.len();

/// The currency every mock price is in.
pub const CURRENCY: &str = "USD";

/// One SKU a mock vendor sells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogItem {
    /// The vendor's SKU, e.g. `LAPTOP-a-001`.
    pub sku: String,
    /// The canonical product it rolls up to, e.g. `LAPTOP-001`.
    pub product: String,
    /// Units on hand (never negative).
    pub quantity: i64,
    /// Price per unit in cents.
    pub price_minor: i64,
}

/// A catalog of `size` SKUs for the vendor whose SKUs carry `tag`: the seed's products
/// first, then generated `ITEM-nnnnnn` products, every quantity `stock_scale` times what
/// the seed draws. The same `seed` gives the same quantities and prices.
pub(crate) fn generate(tag: &str, size: usize, seed: u64, stock_scale: u32) -> Vec<CatalogItem> {
    let scale = i64::from(stock_scale);
    let mut rng = SeededRng::new(seed);
    let mut items = Vec::with_capacity(size);
    for (name, number, price) in SEED_PRODUCTS.iter().take(size) {
        items.push(CatalogItem {
            sku: format!("{name}-{tag}-{number:03}"),
            product: format!("{name}-{number:03}"),
            quantity: rng.between(5, 60) * scale,
            price_minor: *price,
        });
    }
    for number in SEED_PRODUCT_COUNT + 1..=size {
        items.push(CatalogItem {
            sku: format!("ITEM-{tag}-{number:06}"),
            product: format!("ITEM-{number:06}"),
            quantity: rng.between(0, 500) * scale,
            price_minor: vary(&mut rng, rng_price(number)),
        });
    }
    items
}

/// A base price for a generated product, from 1.00 to 500.00.
fn rng_price(number: usize) -> i64 {
    let spread = i64::try_from(number % 500).unwrap_or(0);
    100 + spread * 99
}

/// `base` moved by up to 5% either way, so vendors differ in price.
fn vary(rng: &mut SeededRng, base: i64) -> i64 {
    let swing = base / 20;
    (base + rng.between(-swing, swing)).max(1)
}

/// The SKU tag of a vendor id: its last character in lower case when that is a letter
/// (`VendorA` -> `a`), otherwise the whole id in lower case.
pub(crate) fn tag_for(vendor_id: &str) -> String {
    match vendor_id.chars().last() {
        Some(last) if last.is_ascii_alphabetic() => last.to_ascii_lowercase().to_string(),
        _ => vendor_id.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_products_come_first_with_vendor_skus() {
        let items = generate("a", 12, 1, 1);
        assert_eq!(items.len(), 12);
        assert_eq!(items[0].sku, "LAPTOP-a-001");
        assert_eq!(items[0].product, "LAPTOP-001");
        assert_eq!(items[1].sku, "SMARTPHONE-a-002");
        assert_eq!(items[10].sku, "ITEM-a-000011");
        assert_eq!(items[10].product, "ITEM-000011");
        assert!(items.iter().all(|i| i.quantity >= 0 && i.price_minor > 0));
        assert_eq!(items[0].price_minor, 99_999, "the seed's laptop price");
        assert_eq!(items[1].price_minor, 59_999, "the seed's smartphone price");
        assert_eq!(generate("a", 12, 1, 1), items, "same seed, same catalog");
        assert_ne!(
            generate("a", 12, 2, 1),
            items,
            "another seed, other figures"
        );
        assert_eq!(generate("b", 3, 1, 1).len(), 3);
    }

    #[test]
    fn a_stock_scale_multiplies_every_quantity_and_nothing_else() {
        let plain = generate("a", 40, 7, 1);
        let scaled = generate("a", 40, 7, 25);
        assert_eq!(plain.len(), scaled.len());
        for (one, many) in plain.iter().zip(&scaled) {
            assert_eq!(many.quantity, one.quantity * 25, "{}", one.sku);
            assert_eq!(
                (&many.sku, &many.product, many.price_minor),
                (&one.sku, &one.product, one.price_minor)
            );
        }
        assert!(
            plain.iter().any(|i| i.quantity > 0),
            "the check above compared real stock"
        );
    }

    #[test]
    fn tags_follow_the_vendor_id() {
        assert_eq!(tag_for("VendorA"), "a");
        assert_eq!(tag_for("VendorB"), "b");
        assert_eq!(tag_for("Shop7"), "shop7");
    }
}
