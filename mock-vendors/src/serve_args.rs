//! The command line of the `mock-vendors` binary.

use std::net::IpAddr;

use clap::Parser;

use crate::state::MockVendorConfig;

/// What the binary should serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeArgs {
    /// The address to bind every vendor on.
    pub host: IpAddr,
    /// The vendors and their ports.
    pub vendors: Vec<(MockVendorConfig, u16)>,
}

/// The `mock-vendors` command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mock-vendors",
    version,
    about = "Serves mock vendor APIs. Without --vendor: VendorA on 3001 and VendorB on 3002."
)]
pub struct ServeCli {
    /// Address to bind every vendor on
    #[arg(
        long,
        env = "MOCK_VENDORS_HOST",
        default_value = "127.0.0.1",
        value_name = "ADDR"
    )]
    pub host: IpAddr,
    /// SKUs per vendor, the seed's 10 products first (default 10)
    #[arg(long, env = "MOCK_VENDORS_SKUS", value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub skus: Option<u64>,
    /// Random seed for quantities and prices (default: from each vendor's id)
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Every generated quantity times N, for load runs long enough to sell out the
    /// seed's stock (default 1)
    #[arg(long, env = "MOCK_VENDORS_STOCK_SCALE", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub stock_scale: u32,
    /// A vendor to serve; repeat for more
    #[arg(long = "vendor", value_name = "ID:PORT", value_parser = vendor_spec)]
    pub vendors: Vec<(String, u16)>,
}

fn vendor_spec(spec: &str) -> Result<(String, u16), String> {
    let (id, port) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("{spec:?} must look like VendorA:3001"))?;
    let valid_id = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_id {
        return Err(format!(
            "{spec:?}: the id must be letters, digits, '-', '_' or '.'"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{spec:?}: {port:?} is not a port"))?;
    Ok((id.to_owned(), port))
}

impl ServeCli {
    /// What to serve: the vendors (the two seed vendors when none is named) with their
    /// catalogs. Refuses (a message for the user, exit code 2) an id named twice.
    pub fn serve_args(&self) -> Result<ServeArgs, String> {
        let skus = match self.skus {
            Some(n) => usize::try_from(n).map_err(|_| format!("--skus {n} is too large"))?,
            None => crate::catalog::SEED_PRODUCT_COUNT,
        };
        let named = if self.vendors.is_empty() {
            vec![("VendorA".to_owned(), 3001), ("VendorB".to_owned(), 3002)]
        } else {
            self.vendors.clone()
        };
        let mut ids: Vec<&str> = named.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err("each --vendor id may appear only once".into());
        }
        let vendors = named
            .into_iter()
            .map(|(id, port)| {
                let mut config = MockVendorConfig::new(&id)
                    .with_sku_count(skus)
                    .with_stock_scale(self.stock_scale);
                if let Some(seed) = self.seed {
                    config = config.with_seed(seed);
                }
                (config, port)
            })
            .collect();
        Ok(ServeArgs {
            host: self.host,
            vendors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServeArgs, String> {
        ServeCli::try_parse_from(std::iter::once("mock-vendors").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .serve_args()
    }

    #[test]
    fn defaults_serve_the_seed_vendors() {
        let args = parse(&[]).expect("defaults");
        let served: Vec<(&str, u16)> = args
            .vendors
            .iter()
            .map(|(c, p)| (c.id.as_str(), *p))
            .collect();
        assert_eq!(served, [("VendorA", 3001), ("VendorB", 3002)]);
        assert_eq!(args.vendors[0].0.sku_count, 10);
        assert_eq!(args.vendors[0].0.stock_scale, 1);
    }

    #[test]
    fn flags() {
        let args = parse(&[
            "--vendor",
            "VendorC:4000",
            "--skus=100000",
            "--seed",
            "9",
            "--host",
            "0.0.0.0",
            "--stock-scale",
            "40",
        ])
        .expect("valid");
        assert_eq!(args.vendors.len(), 1);
        assert_eq!(args.vendors[0].0.sku_count, 100_000);
        assert_eq!(args.vendors[0].0.seed, 9);
        assert_eq!(args.host.to_string(), "0.0.0.0");
        assert_eq!(args.vendors[0].0.stock_scale, 40);
    }

    #[test]
    fn bad_arguments_are_named() {
        for (args, needle) in [
            (vec!["--bogus"], "unexpected argument"),
            (vec!["--skus"], "a value is required"),
            (vec!["--skus", "0"], "--skus"),
            (vec!["--skus", "many"], "--skus"),
            (vec!["--seed", "-1"], "-1"),
            (vec!["--seed", "x"], "--seed"),
            (vec!["--stock-scale", "0"], "--stock-scale"),
            (vec!["--stock-scale", "1000001"], "--stock-scale"),
            (vec!["--stock-scale", "-2"], "-2"),
            (vec!["--host", "localhost:1"], "--host"),
            (vec!["--vendor", "VendorA"], "VendorA:3001"),
            (vec!["--vendor", "VendorA:99999"], "not a port"),
            (vec!["--vendor", "Ven dor:3001"], "the id"),
            (vec!["--vendor", "A:1", "--vendor", "A:2"], "only once"),
        ] {
            let error = parse(&args).expect_err("refused");
            assert!(error.contains(needle), "{args:?}: {error}");
        }
    }
}
