//! `/metrics`: Prometheus text.

use std::fmt::Write as _;

use aggregator_core::domain::{OrderStatus, QueueName, VendorHealth};
use aggregator_core::traits::OrderQuery;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::api::metrics::label;
use crate::api::state::ApiState;

/// The most dead letters counted per queue.
const DEAD_LETTER_COUNT_CAP: usize = 1_000;

/// Requests by route and status, latency, orders by status, vendor health, cache hits
/// and misses, dead letters. Figures that cannot be read right now are left out.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let inner = &state.inner;
    let mut out = String::new();
    inner.metrics.render(&mut out);

    out.push_str("# HELP aggregator_orders Orders by status.\n# TYPE aggregator_orders gauge\n");
    for status in OrderStatus::ALL {
        let query = OrderQuery {
            customer: None,
            status: Some(status),
            offset: 0,
            limit: 1,
        };
        if let Ok(page) = inner.store.orders(&query).await {
            let _ = writeln!(
                out,
                "aggregator_orders{{status=\"{}\"}} {}",
                status.as_str(),
                page.total
            );
            if status == OrderStatus::Reserved {
                let _ = writeln!(
                    out,
                    "# HELP aggregator_reservations Orders holding units, waiting for vendors.\n# TYPE aggregator_reservations gauge\naggregator_reservations {}",
                    page.total
                );
            }
        }
    }

    if let Ok(vendors) = inner.store.vendors().await {
        out.push_str("# HELP aggregator_vendor_health 0 healthy, 1 degraded, 2 down.\n# TYPE aggregator_vendor_health gauge\n");
        for vendor in &vendors {
            let value = match vendor.health {
                VendorHealth::Healthy => 0,
                VendorHealth::Degraded => 1,
                VendorHealth::Down => 2,
            };
            let _ = writeln!(
                out,
                "aggregator_vendor_health{{vendor=\"{}\"}} {value}",
                label(vendor.id.as_str())
            );
        }
        out.push_str("# HELP aggregator_vendor_consecutive_failures Failed syncs since the last good one.\n# TYPE aggregator_vendor_consecutive_failures gauge\n");
        for vendor in &vendors {
            let _ = writeln!(
                out,
                "aggregator_vendor_consecutive_failures{{vendor=\"{}\"}} {}",
                label(vendor.id.as_str()),
                vendor.consecutive_failures
            );
        }
    }

    out.push_str("# HELP aggregator_dead_letters Messages in a dead-letter queue (counted up to 1000).\n# TYPE aggregator_dead_letters gauge\n");
    for queue in QueueName::ALL {
        if let Ok(letters) = inner.queue.dead_letters(queue, DEAD_LETTER_COUNT_CAP).await {
            let _ = writeln!(
                out,
                "aggregator_dead_letters{{queue=\"{}\"}} {}",
                queue.dead_letter_name(),
                letters.len()
            );
        }
    }

    let stats = inner.catalog.stats();
    out.push_str("# HELP aggregator_cache_reads Availability reads by outcome.\n# TYPE aggregator_cache_reads counter\n");
    let _ = writeln!(
        out,
        "aggregator_cache_reads{{outcome=\"hit\"}} {}",
        stats.hits
    );
    let _ = writeln!(
        out,
        "aggregator_cache_reads{{outcome=\"miss\"}} {}",
        stats.misses
    );
    let _ = writeln!(
        out,
        "aggregator_cache_reads{{outcome=\"error\"}} {}",
        stats.errors
    );

    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
