//! How the settings' values are read from text: durations in the unit their flag
//! names, lists, limits, and values that may hold secrets (whose errors never quote
//! them).

use std::path::PathBuf;
use std::time::Duration;

use aggregator_core::RedactedUrl;
use aggregator_core::domain::VendorId;
use aggregator_core::resilience::VendorLimits;
use aggregator_core::traits::RetryPolicy;
use aggregator_http::api::ApiKeys;
use aggregator_http::{VendorEndpoint, parse_vendor_list};
use clap::Command;

use super::Settings;

/// Where log files go: a directory, or none.
pub type LogDir = Option<PathBuf>;

pub(super) fn log_dir(text: &str) -> Result<LogDir, String> {
    match text.trim() {
        "" | "none" => Ok(None),
        dir => Ok(Some(PathBuf::from(dir))),
    }
}

/// A value parser for settings that may hold secrets (URLs with passwords, API keys):
/// its errors name the flag and the variable and never quote the value, which clap's own
/// value errors do. `parse` answers a reason, which must not quote the value either.
#[derive(Clone, Copy)]
pub(super) struct Quiet<T> {
    flag: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> std::fmt::Debug for Quiet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quiet").field("flag", &self.flag).finish()
    }
}

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Quiet<T> {
    type Value = T;

    fn parse_ref(
        &self,
        command: &Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let flag = arg
            .and_then(clap::Arg::get_long)
            .map_or_else(|| self.flag.to_owned(), |long| format!("--{long}"));
        // `parse_with_env` takes the variables off the arguments, so look the name up.
        let env = Settings::table()
            .into_iter()
            .find(|row| row.flag == flag)
            .map(|row| format!(" ({})", row.env))
            .unwrap_or_default();
        let refuse = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid {flag}{env}: {reason}\n"),
            )
            .with_cmd(command)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("is not UTF-8".to_owned()))?;
        (self.parse)(text).map_err(refuse)
    }
}

pub(super) const API_KEYS: Quiet<ApiKeys> = Quiet {
    flag: "--api-keys",
    parse: |text| {
        if text.trim().is_empty() {
            return Ok(ApiKeys::none());
        }
        ApiKeys::parse(text).map_err(|e| e.to_string())
    },
};

pub(super) const SERVICE_URL: Quiet<RedactedUrl> = Quiet {
    flag: "the service URL",
    parse: |text| text.parse(),
};

pub(super) const VENDOR_LIST: Quiet<Vec<VendorEndpoint>> = Quiet {
    flag: "--vendors",
    parse: |text| {
        // The reason may quote an entry; hide any password of its URLs.
        parse_vendor_list(text).map_err(|e| hide_passwords(text, &e.to_string()))
    },
};

/// `reason` with the credentials (`user:password` before an `@`) of every URL in `text`
/// replaced by `***`, well-formed URL or not.
pub(super) fn hide_passwords(text: &str, reason: &str) -> String {
    let mut hidden = reason.to_owned();
    for entry in text.split(',') {
        let url = entry.split_once('=').map_or(entry, |(_, url)| url).trim();
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        if let Some((credentials, _)) = after_scheme.rsplit_once('@')
            && !credentials.is_empty()
        {
            hidden = hidden.replace(credentials, "***");
        }
    }
    hidden
}

/// Limits given to single vendors (`--vendor-limits`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorLimitTable(::std::vec::Vec<(VendorId, u32, Option<u32>)>);

impl VendorLimitTable {
    /// What `vendor` may be asked: its own limits where given, `default` otherwise.
    pub fn for_vendor(&self, vendor: &VendorId, default: VendorLimits) -> VendorLimits {
        match self.0.iter().find(|(id, ..)| id == vendor) {
            Some((_, per_second, in_flight)) => VendorLimits {
                per_second: *per_second,
                in_flight: in_flight.unwrap_or(default.in_flight),
            },
            None => default,
        }
    }
}

pub(super) fn vendor_limits(text: &str) -> Result<VendorLimitTable, String> {
    let mut table: Vec<(VendorId, u32, Option<u32>)> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("{entry:?} is not ID=PER_SECOND or ID=PER_SECOND/IN_FLIGHT");
        let (id, limits) = entry.split_once('=').ok_or_else(bad)?;
        let id = VendorId::new(id.trim()).map_err(|e| format!("{entry:?}: {e}"))?;
        let (per_second, in_flight) = match limits.split_once('/') {
            Some((rate, at_once)) => (rate, Some(at_once)),
            None => (limits, None),
        };
        let per_second =
            u32::try_from(whole(per_second.trim(), 1, 1_000_000)?).map_err(|_| bad())?;
        let in_flight = in_flight
            .map(|n| whole(n.trim(), 1, 100_000).and_then(|n| u32::try_from(n).map_err(|_| bad())))
            .transpose()?;
        if table.iter().any(|(held, ..)| held == &id) {
            return Err(format!("{id} is given twice"));
        }
        table.push((id, per_second, in_flight));
    }
    Ok(VendorLimitTable(table))
}

pub(super) fn retry_delays(text: &str) -> Result<RetryPolicy, String> {
    let delays = text
        .split(',')
        .map(|part| whole(part.trim(), 1, 86_400_000).map(Duration::from_millis))
        .collect::<Result<Vec<_>, _>>()?;
    RetryPolicy::new(delays).map_err(|e| e.to_string())
}

pub(super) fn whole(text: &str, min: u64, max: u64) -> Result<u64, String> {
    text.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{text:?} is not a whole number from {min} to {max}"))
}

pub(super) fn seconds(
    min: u64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    seconds_up_to(min, 86_400)
}

pub(super) fn seconds_up_to(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text| whole(text, min, max).map(Duration::from_secs)
}

pub(super) fn micros(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text| whole(text, min, max).map(Duration::from_micros)
}

pub(super) fn millis(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text| whole(text, min, max).map(Duration::from_millis)
}
