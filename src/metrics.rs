//! `/metrics`: Prometheus (OpenMetrics text) from the Prometheus project's own client crate.
//!
//! Request counts and latencies and collector runs are counted as they happen; the ledger's
//! size, checkpoint age, blob bytes and coverage are read when scraped (coverage and blob
//! bytes at most once per [`SLOW_GAUGES_EVERY`], since both scan).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How often the scanning gauges (coverage, blob bytes) are recomputed at most.
pub const SLOW_GAUGES_EVERY: Duration = Duration::from_secs(30);

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern (`/v1/entries/{index}`), not the path: bounded cardinality.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code.
    pub status: u16,
}

/// Labels of a route's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route pattern.
    pub route: String,
}

/// Labels of a collector run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// The collector.
    pub collector: String,
    /// `ok`, `partial` or `failed`.
    pub outcome: String,
}

/// Labels of per-collector gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CollectorLabels {
    /// The collector.
    pub collector: String,
}

/// Labels of the coverage gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `fresh`, `stale`, `missing`, `not-applicable`.
    pub status: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Every metric the service exposes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route, method and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP latency by route, seconds.
    pub http_latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Collector runs by outcome.
    pub runs: Family<RunLabels, Counter>,
    /// Unix time of each collector's last successful run.
    pub last_success: Family<CollectorLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Duration of each collector's last run, seconds.
    pub last_duration: Family<CollectorLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Failed runs in a row per collector.
    pub consecutive_failures: Family<CollectorLabels, Gauge>,
    /// Entries in the ledger.
    pub entries: Gauge,
    /// Bytes of content in the blob store.
    pub blob_bytes: Gauge,
    /// Size of the newest checkpoint.
    pub checkpoint_size: Gauge,
    /// Age of the newest checkpoint, seconds.
    pub checkpoint_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// RFC 3161 anchoring attempts that failed.
    pub anchoring_failures: Counter,
    /// Controls by coverage status.
    pub controls: Family<StatusLabels, Gauge>,
    /// Pushed entries.
    pub pushes: Counter,
    slow_at: Mutex<Option<Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics, registered under the `evident_` prefix.
    pub fn new() -> Self {
        let m = Metrics {
            registry: Registry::with_prefix("evident"),
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency_histogram),
            runs: Family::default(),
            last_success: Family::default(),
            last_duration: Family::default(),
            consecutive_failures: Family::default(),
            entries: Gauge::default(),
            blob_bytes: Gauge::default(),
            checkpoint_size: Gauge::default(),
            checkpoint_age: Gauge::default(),
            anchoring_failures: Counter::default(),
            controls: Family::default(),
            pushes: Counter::default(),
            slow_at: Mutex::new(None),
        };
        let mut r = m.registry;
        r.register(
            "http_requests",
            "HTTP requests by route, method and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            m.http_latency.clone(),
        );
        r.register(
            "collector_runs",
            "Collector runs by outcome (ok, partial, failed)",
            m.runs.clone(),
        );
        r.register(
            "collector_last_success_timestamp_seconds",
            "Unix time of the collector's last successful run",
            m.last_success.clone(),
        );
        r.register(
            "collector_last_run_duration_seconds",
            "Duration of the collector's last run",
            m.last_duration.clone(),
        );
        r.register(
            "collector_consecutive_failures",
            "Failed runs in a row",
            m.consecutive_failures.clone(),
        );
        r.register("ledger_entries", "Entries in the ledger", m.entries.clone());
        r.register(
            "blob_bytes",
            "Bytes of evidence content in the blob store",
            m.blob_bytes.clone(),
        );
        r.register(
            "checkpoint_size",
            "Tree size of the newest signed checkpoint",
            m.checkpoint_size.clone(),
        );
        r.register(
            "checkpoint_age_seconds",
            "Age of the newest signed checkpoint",
            m.checkpoint_age.clone(),
        );
        r.register(
            "anchoring_failures",
            "RFC 3161 timestamp requests that failed",
            m.anchoring_failures.clone(),
        );
        r.register(
            "controls",
            "Controls and clauses by coverage status",
            m.controls.clone(),
        );
        r.register(
            "pushed_entries",
            "Entries recorded through POST /v1/evidence",
            m.pushes.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Records a finished collector run.
    pub fn collector_run(&self, collector: &str, outcome: &str, duration: Duration, failures: u32) {
        let c = CollectorLabels {
            collector: collector.to_owned(),
        };
        self.runs
            .get_or_create(&RunLabels {
                collector: collector.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.last_duration
            .get_or_create(&c)
            .set(duration.as_secs_f64());
        self.consecutive_failures
            .get_or_create(&c)
            .set(i64::from(failures));
        if outcome != "failed" {
            self.last_success
                .get_or_create(&c)
                .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
        }
    }

    /// Whether the scanning gauges are due; marks them done when they are.
    pub fn slow_due(&self) -> bool {
        let Ok(mut at) = self.slow_at.lock() else {
            return false;
        };
        if at.is_some_and(|t| t.elapsed() < SLOW_GAUGES_EVERY) {
            return false;
        }
        *at = Some(Instant::now());
        true
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
