use mock_vendors::{MockVendor, MockVendorConfig};

/// Two mock vendors with the seed's products on free ports.
pub(crate) async fn seed_vendors() -> (MockVendor, MockVendor) {
    let a = MockVendor::spawn_local(MockVendorConfig::new("VendorA"))
        .await
        .expect("VendorA");
    let b = MockVendor::spawn_local(MockVendorConfig::new("VendorB"))
        .await
        .expect("VendorB");
    (a, b)
}

/// The `AGGREGATOR_VENDORS` value for these vendors.
pub(crate) fn vendor_list(vendors: &[&MockVendor]) -> String {
    vendors
        .iter()
        .map(|v| format!("{}={}", v.id(), v.base_url()))
        .collect::<Vec<_>>()
        .join(",")
}
