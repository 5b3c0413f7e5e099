//! Prometheus text for `GET /metrics`: runs by status (from the catalog at scrape time),
//! bytes served, and a request latency histogram (time to the response head, so for a
//! download the time to first byte).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    bytes_served: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    latency_micros: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

impl Metrics {
    pub fn served(&self, bytes: u64) {
        self.bytes_served.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn request(&self, took: Duration, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        // Cumulative buckets are summed at render time; each request counts once here.
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition, with the runs by status given by the caller.
    pub fn render(&self, runs: &[(String, u64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP ferry_snapshots Snapshots requested through the service, by status.\n# TYPE ferry_snapshots gauge");
        for status in ["pending", "in_progress", "completed", "failed", "deleted"] {
            let n = runs.iter().find(|(s, _)| s == status).map(|(_, n)| *n).unwrap_or(0);
            let _ = writeln!(out, "ferry_snapshots{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP ferry_bytes_served_total Bytes of snapshot files sent to clients.\n# TYPE ferry_bytes_served_total counter"
        );
        let _ = writeln!(out, "ferry_bytes_served_total {}", self.bytes_served.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP ferry_http_server_errors_total Responses with a 5xx status.\n# TYPE ferry_http_server_errors_total counter"
        );
        let _ = writeln!(out, "ferry_http_server_errors_total {}", self.errors.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP ferry_http_request_duration_seconds Time to the response head.\n# TYPE ferry_http_request_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "ferry_http_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.requests.load(Ordering::Relaxed);
        let _ = writeln!(out, "ferry_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "ferry_http_request_duration_seconds_sum {}", self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "ferry_http_request_duration_seconds_count {count}");
        out
    }
}
