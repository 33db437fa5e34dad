//! Request counters and latency histograms, rendered as Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// Counts of requests by route, method and status, and latency per route.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    registry: Mutex<Registry>,
}

/// Escapes a Prometheus label value.
pub(crate) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one request to `route` (the route pattern, never the raw path).
    pub(crate) fn record(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut registry = self.lock();
        *registry
            .requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let histogram = registry.latency.entry(route.to_owned()).or_default();
        let seconds = took.as_secs_f64();
        for (slot, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *slot += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The request metrics in Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        let registry = self.lock();
        out.push_str(
            "# HELP http_requests_total Requests answered, by route, method and status.\n",
        );
        out.push_str("# TYPE http_requests_total counter\n");
        for ((route, method, status), count) in &registry.requests {
            let _ = writeln!(
                out,
                "http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                label(route),
                label(method)
            );
        }
        out.push_str("# HELP http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (route, histogram) in &registry.latency {
            let route = label(route);
            for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_render() {
        let metrics = Metrics::default();
        metrics.record("/api/orders", "POST", 201, Duration::from_millis(3));
        metrics.record("/api/orders", "POST", 409, Duration::from_millis(30));
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains(
            "http_requests_total{route=\"/api/orders\",method=\"POST\",status=\"201\"} 1"
        ));
        assert!(out.contains(
            "http_request_duration_seconds_bucket{route=\"/api/orders\",le=\"0.005\"} 1"
        ));
        assert!(
            out.contains(
                "http_request_duration_seconds_bucket{route=\"/api/orders\",le=\"+Inf\"} 2"
            )
        );
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
