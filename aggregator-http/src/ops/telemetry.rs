//! [`Telemetry`]: one process's figures, rendered in the Prometheus text format.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use aggregator_core::service::telemetry as core_telemetry;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Requests answered, by `route`, `method` and `status`.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Time to answer, by `route`.
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";

/// The HTTP methods counted under their own name; any other is counted as `other`, so
/// a client cannot grow the `method` label without bound.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The `method` label for `method`: itself when it is a standard method, else `other`.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("other")
}

fn builder() -> PrometheusBuilder {
    // Cannot fail: both bucket lists are constant and not empty.
    PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(core_telemetry::BATCH_SIZE.to_owned()),
                &core_telemetry::BATCH_SIZE_BUCKETS,
            )
        })
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

/// The process-wide recorder that the core services record into (worker outcomes,
/// batch sizes, relay, sweeper, syncs), installed on first use. When the embedding
/// program installed another recorder first, the core's figures go there and this one
/// stays empty.
fn process_wide() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => core_telemetry::describe(),
            Err(_) => tracing::warn!(
                "another metrics recorder is installed; the services' figures go to it, not to /metrics"
            ),
        }
        handle
    })
}

/// How often histogram samples are folded into their buckets when nobody scrapes
/// (each sample waits in a buffer until then, so without it an unscraped process grows).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The per-instance recorders the upkeep thread keeps folding, while they live.
static KEPT_UP: Mutex<Vec<Weak<PrometheusRecorder>>> = Mutex::new(Vec::new());

/// Folds buffered histogram samples of the process-wide recorder and of every live
/// instance's, and forgets the instances that are gone; answers how many live.
fn upkeep_all() -> usize {
    process_wide().run_upkeep();
    let mut kept = KEPT_UP.lock().unwrap_or_else(PoisonError::into_inner);
    kept.retain(|recorder| match recorder.upgrade() {
        Some(recorder) => {
            recorder.handle().run_upkeep();
            true
        }
        None => false,
    });
    kept.len()
}

/// Registers `recorder` for upkeep, starting the one upkeep thread on first use.
fn keep_up(recorder: &Arc<PrometheusRecorder>) {
    static THREAD: OnceLock<()> = OnceLock::new();
    KEPT_UP
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Arc::downgrade(recorder));
    THREAD.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep_all();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "no metrics upkeep thread; histograms are folded only when scraped");
        }
    });
}

/// The key of series `name` with `labels`.
fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(label, value)| Label::new(*label, value.clone()))
        .collect();
    Key::from_parts(name, labels)
}

/// One process's (or one API's) figures: its HTTP requests and the gauges read from the
/// system at scrape time, kept apart from other instances in the same process (tests
/// run several), plus the process-wide figures of the core services. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    own: Arc<PrometheusRecorder>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Empty figures of its own; installs the process-wide recorder if none is yet.
    pub fn new() -> Self {
        process_wide();
        let own = builder().build_recorder();
        own.describe_counter(
            KeyName::from_const_str(HTTP_REQUESTS),
            None,
            SharedString::const_str("Requests answered, by route, method and status."),
        );
        own.describe_histogram(
            KeyName::from_const_str(HTTP_REQUEST_DURATION),
            Some(Unit::Seconds),
            SharedString::const_str("Time to answer, by route."),
        );
        let own = Arc::new(own);
        keep_up(&own);
        Self { own }
    }

    /// Counts one answered request to `route` (the route pattern, never the raw path).
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let labels = vec![
            Label::new("route", route.to_owned()),
            Label::new("method", method_label(method)),
            Label::new("status", status.to_string()),
        ];
        self.own
            .register_counter(&Key::from_parts(HTTP_REQUESTS, labels), &METADATA)
            .increment(1);
        let labels = vec![Label::new("route", route.to_owned())];
        self.own
            .register_histogram(&Key::from_parts(HTTP_REQUEST_DURATION, labels), &METADATA)
            .record(took.as_secs_f64());
    }

    /// Gives gauge `name` its help text.
    pub(crate) fn describe_gauge(
        &self,
        name: &'static str,
        unit: Option<Unit>,
        help: &'static str,
    ) {
        self.own.describe_gauge(
            KeyName::from_const_str(name),
            unit,
            SharedString::const_str(help),
        );
    }

    /// Gives counter `name` its help text.
    pub(crate) fn describe_counter(&self, name: &'static str, help: &'static str) {
        self.own.describe_counter(
            KeyName::from_const_str(name),
            None,
            SharedString::const_str(help),
        );
    }

    /// Sets gauge `name` with `labels` to `value`.
    pub(crate) fn gauge(&self, name: &'static str, labels: &[(&'static str, String)], value: f64) {
        self.own
            .register_gauge(&key(name, labels), &METADATA)
            .set(value);
    }

    /// Sets counter `name` with `labels` to `total` (for totals kept elsewhere).
    pub(crate) fn counter_total(
        &self,
        name: &'static str,
        labels: &[(&'static str, String)],
        total: u64,
    ) {
        self.own
            .register_counter(&key(name, labels), &METADATA)
            .absolute(total);
    }

    /// Every figure in the Prometheus text format (version 0.0.4): this instance's,
    /// then the process-wide ones.
    pub fn render(&self) -> String {
        let mut out = self.own.handle().render();
        out.push_str(&process_wide().render());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_ones_are_other() {
        assert_eq!(method_label("POST"), "POST");
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(method_label("post"), "other");
    }

    #[test]
    fn upkeep_folds_samples_and_forgets_dropped_instances() {
        let kept = Telemetry::new();
        let dropped = Telemetry::new();
        for _ in 0..1_000 {
            kept.request("/x", "GET", 200, Duration::from_millis(3));
        }
        let gone = Arc::downgrade(&dropped.own);
        drop(dropped);
        upkeep_all();
        let kept_up = KEPT_UP.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            kept_up.iter().all(|recorder| !recorder.ptr_eq(&gone)),
            "a dropped instance is forgotten"
        );
        assert!(
            kept_up
                .iter()
                .any(|recorder| recorder.ptr_eq(&Arc::downgrade(&kept.own))),
            "a live one is kept"
        );
        drop(kept_up);
        let text = kept.render();
        assert!(
            text.contains("http_request_duration_seconds_count{route=\"/x\"} 1000"),
            "{text}"
        );
    }
}
