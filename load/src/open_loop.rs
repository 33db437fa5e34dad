//! Open-loop arrivals: requests are due at fixed times (`rate` a second) whatever the
//! answers do, and each latency counts from when its request was due, not from when a
//! connection got round to sending it, so a slow system cannot hide its queueing
//! (no coordinated omission).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::{Instant, sleep_until};

use crate::http::Connection;

/// Builds request number `n`.
pub(crate) type RequestMaker = Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>;

/// What one step at one offered rate measured.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// Requests a second offered.
    pub(crate) offered: f64,
    /// Requests sent.
    pub(crate) sent: u64,
    /// 2xx answers.
    pub(crate) ok: u64,
    /// 409 answers (short stock and other conflicts: refused, never oversold).
    pub(crate) refused: u64,
    /// 503 `overloaded` answers: refused for load by admission, to be tried again later
    /// (other 503s, timeouts and dependencies down, count as `other`).
    pub(crate) shed: u64,
    /// Other statuses.
    pub(crate) other: u64,
    /// Requests that got no answer (connection errors).
    pub(crate) errors: u64,
    /// Requests never sent because the step ran far past its time.
    pub(crate) dropped: u64,
    /// Seconds from the first due time to the last answer.
    pub(crate) elapsed: f64,
    /// Latencies in microseconds, from due time to answer, of every answer but the
    /// refusals for load.
    pub(crate) latency: Histogram<u64>,
    /// Latencies of the refusals for load, from due time to answer.
    pub(crate) shed_latency: Histogram<u64>,
    /// The CPU each part of the system used during the step, where it was measured.
    pub(crate) cpu: Option<crate::cpu::CpuUse>,
}

impl Step {
    /// 2xx answers a second.
    pub(crate) fn throughput(&self) -> f64 {
        if self.elapsed > 0.0 {
            self.ok as f64 / self.elapsed
        } else {
            0.0
        }
    }

    /// The latency at `quantile` (0..1), in milliseconds.
    pub(crate) fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The latency of the 503 answers at `quantile` (0..1), in milliseconds (0 when
    /// there were none).
    pub(crate) fn shed_ms(&self, quantile: f64) -> f64 {
        self.shed_latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Offers `rate` requests a second for `duration` over `connections` kept-alive
/// connections to `addr`. Stops taking new requests once the step has run three times
/// its duration (the rest count as dropped).
pub(crate) async fn run_step(
    addr: SocketAddr,
    rate: f64,
    duration: Duration,
    connections: usize,
    make: RequestMaker,
) -> Step {
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let start = Instant::now() + Duration::from_millis(20);
    let give_up = start + duration * 3;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let next = next.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::new(addr);
            let mut part = Part::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                if Instant::now() > give_up {
                    part.dropped += 1;
                    continue;
                }
                sleep_until(due).await;
                let request = make(n);
                let answer = connection.send(&request).await;
                let waited = Instant::now().saturating_duration_since(due);
                part.last = part.last.max(Instant::now());
                match answer {
                    Ok(response) => {
                        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
                        part.sent += 1;
                        if response.overloaded {
                            part.shed += 1;
                            let _ = part.shed_latency.record(micros.max(1));
                            continue;
                        }
                        let _ = part.latency.record(micros.max(1));
                        match response.status {
                            200..=299 => part.ok += 1,
                            409 => part.refused += 1,
                            _ => part.other += 1,
                        }
                    }
                    Err(_) => {
                        part.sent += 1;
                        part.errors += 1;
                    }
                }
            }
            part
        }));
    }
    let mut step = Step {
        offered: rate,
        sent: 0,
        ok: 0,
        refused: 0,
        shed: 0,
        other: 0,
        errors: 0,
        dropped: 0,
        elapsed: 0.0,
        latency: histogram(),
        shed_latency: histogram(),
        cpu: None,
    };
    let mut last = start;
    for task in tasks {
        let Ok(part) = task.await else {
            continue;
        };
        step.sent += part.sent;
        step.ok += part.ok;
        step.refused += part.refused;
        step.shed += part.shed;
        step.other += part.other;
        step.errors += part.errors;
        step.dropped += part.dropped;
        let _ = step.latency.add(&part.latency);
        let _ = step.shed_latency.add(&part.shed_latency);
        last = last.max(part.last);
    }
    step.elapsed = last.saturating_duration_since(start).as_secs_f64();
    step
}

/// One connection's share of a step.
struct Part {
    sent: u64,
    ok: u64,
    refused: u64,
    shed: u64,
    other: u64,
    errors: u64,
    dropped: u64,
    last: Instant,
    latency: Histogram<u64>,
    shed_latency: Histogram<u64>,
}

impl Part {
    fn new() -> Self {
        Self {
            sent: 0,
            ok: 0,
            refused: 0,
            shed: 0,
            other: 0,
            errors: 0,
            dropped: 0,
            last: Instant::now(),
            latency: histogram(),
            shed_latency: histogram(),
        }
    }
}

/// Microseconds from 1 µs to 10 minutes, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server answering one request every `pause` on each connection.
    async fn slow_server(pause: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    loop {
                        let mut chunk = [0u8; 1024];
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&chunk[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            tokio::time::sleep(pause).await;
                            let reply = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok";
                            if socket.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_slow_server_shows_its_queue_in_the_latencies() {
        let addr = slow_server(Duration::from_millis(50)).await;
        let make: RequestMaker = Arc::new(|_| crate::http::get("/"));
        // 10 requests due within 0.25 s, one connection, 50 ms each: the last one is
        // answered about 0.3 s after it was due (not 50 ms after it was sent), and
        // open-loop latency says so.
        let step = run_step(addr, 40.0, Duration::from_millis(250), 1, make).await;
        assert_eq!((step.ok, step.dropped, step.errors), (10, 0, 0));
        assert!(step.ms(1.0) >= 200.0, "max latency {} ms", step.ms(1.0));
        assert!(
            step.ms(0.0) >= 50.0,
            "even the first waits the service time"
        );
        assert!(step.throughput() <= 25.0, "{} a second", step.throughput());
    }
}
