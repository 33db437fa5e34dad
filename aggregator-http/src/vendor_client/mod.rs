//! The HTTP vendor client and its configuration.

mod client;
mod config;
mod wire;

pub use client::HttpVendorClient;
pub use config::{HttpVendorConfig, VendorEndpoint, parse_vendor_list};
