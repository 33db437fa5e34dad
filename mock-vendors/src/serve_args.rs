//! The command line of the `mock-vendors` binary.

use std::net::IpAddr;

use crate::state::MockVendorConfig;

/// What the binary should serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeArgs {
    /// The address to bind every vendor on.
    pub host: IpAddr,
    /// The vendors and their ports.
    pub vendors: Vec<(MockVendorConfig, u16)>,
}

/// The binary's usage text.
pub const USAGE: &str = "\
usage: mock-vendors [--host ADDR] [--skus N] [--seed N] [--vendor ID:PORT]...

Serves mock vendor APIs. Without --vendor: VendorA on 3001 and VendorB on 3002.
  --host ADDR      address to bind (default 127.0.0.1; env MOCK_VENDORS_HOST)
  --skus N         SKUs per vendor, the seed's 10 products first (default 10; env MOCK_VENDORS_SKUS)
  --seed N         random seed for quantities and prices (default: from each vendor's id)
  --vendor ID:PORT a vendor to serve; repeat for more";

impl ServeArgs {
    /// Parses the arguments (without the program name); `env` looks up the
    /// `MOCK_VENDORS_*` variables. An error is a message for the user.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut host = env("MOCK_VENDORS_HOST").unwrap_or_else(|| "127.0.0.1".into());
        let mut skus = env("MOCK_VENDORS_SKUS");
        let mut seed = None;
        let mut vendors = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
            };
            match arg.as_str() {
                "--host" => host = value("--host")?,
                "--skus" => skus = Some(value("--skus")?),
                "--seed" => seed = Some(value("--seed")?),
                "--vendor" => vendors.push(value("--vendor")?),
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        let host: IpAddr = host
            .parse()
            .map_err(|_| format!("--host {host:?} is not an IP address"))?;
        let skus = match skus {
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=10_000_000).contains(&n) => n,
                _ => return Err(format!("--skus {text:?} must be from 1 to 10000000")),
            },
            None => crate::catalog::SEED_PRODUCT_COUNT,
        };
        let seed = match seed {
            Some(text) => Some(
                text.parse::<u64>()
                    .map_err(|_| format!("--seed {text:?} is not a whole number"))?,
            ),
            None => None,
        };
        if vendors.is_empty() {
            vendors = vec!["VendorA:3001".into(), "VendorB:3002".into()];
        }
        let vendors = vendors
            .iter()
            .map(|spec| {
                let (id, port) = spec
                    .rsplit_once(':')
                    .ok_or_else(|| format!("--vendor {spec:?} must look like VendorA:3001"))?;
                let valid_id = !id.is_empty()
                    && id.len() <= 64
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !valid_id {
                    return Err(format!(
                        "--vendor {spec:?}: the id must be letters, digits, '-', '_' or '.'"
                    ));
                }
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("--vendor {spec:?}: {port:?} is not a port"))?;
                let mut config = MockVendorConfig::new(id).with_sku_count(skus);
                if let Some(seed) = seed {
                    config = config.with_seed(seed);
                }
                Ok((config, port))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut ids: Vec<&str> = vendors.iter().map(|(c, _)| c.id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err("each --vendor id may appear only once".into());
        }
        Ok(Self { host, vendors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServeArgs, String> {
        ServeArgs::parse(args.iter().map(|s| s.to_string()), |_| None)
    }

    #[test]
    fn defaults_serve_the_seed_vendors() {
        let args = parse(&[]).expect("defaults");
        assert_eq!(args.host.to_string(), "127.0.0.1");
        let served: Vec<(&str, u16)> = args
            .vendors
            .iter()
            .map(|(c, p)| (c.id.as_str(), *p))
            .collect();
        assert_eq!(served, [("VendorA", 3001), ("VendorB", 3002)]);
        assert_eq!(args.vendors[0].0.sku_count, 10);
    }

    #[test]
    fn flags_and_environment() {
        let args = parse(&[
            "--vendor",
            "VendorC:4000",
            "--skus",
            "100000",
            "--seed",
            "9",
        ])
        .expect("valid");
        assert_eq!(args.vendors.len(), 1);
        assert_eq!(args.vendors[0].0.sku_count, 100_000);
        assert_eq!(args.vendors[0].0.seed, 9);
        let from_env = ServeArgs::parse(Vec::new(), |name| {
            (name == "MOCK_VENDORS_HOST").then(|| "0.0.0.0".to_string())
        })
        .expect("valid");
        assert_eq!(from_env.host.to_string(), "0.0.0.0");
    }

    #[test]
    fn bad_arguments_are_named() {
        for (args, needle) in [
            (vec!["--bogus"], "unknown argument"),
            (vec!["--skus"], "needs a value"),
            (vec!["--skus", "0"], "--skus"),
            (vec!["--skus", "many"], "--skus"),
            (vec!["--seed", "-1"], "--seed"),
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
