//! The HTTP vendor client and its configuration.

mod client;
mod config;
mod registry;
mod wire;

pub use client::HttpVendorClient;
pub use config::{HttpVendorConfig, VendorEndpoint, parse_vendor_list};
pub use registry::{vendor_clients, vendor_clients_sharing};
pub use wire::{WireFault, stock_page};
