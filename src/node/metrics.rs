//! Prometheus metrics of a node: atomic counters, updated by the sync
//! connections and the REST API, rendered in the Prometheus text exposition
//! format (version 0.0.4) by `GET /metrics`.
//!
//! | metric | type |
//! |---|---|
//! | `permitsync_peers_connected` | gauge (live sync connections) |
//! | `permitsync_documents` | gauge (entities in the store) |
//! | `permitsync_changes_applied_total` | counter (new changes stored, from peers or the API) |
//! | `permitsync_bytes_in_total`, `permitsync_bytes_out_total` | counters (sync frames) |
//! | `permitsync_sync_messages_total{direction="in"\|"out"}` | counter |
//! | `permitsync_rejected_operations_total` | counter (operations of peers the view rejected) |
//! | `permitsync_http_requests_total` | counter |
//! | `permitsync_sync_duration_seconds` | histogram |
//! | `permitsync_errors_total{kind}` | counter, `kind` one of [`Metrics::ERROR_KINDS`] |

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the sync duration histogram's buckets.
pub const SYNC_DURATION_BUCKETS: [f64; 10] =
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A node's metrics. Every method is lock-free and safe to call from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    changes_applied: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    rejected: AtomicU64,
    http_requests: AtomicU64,
    /// Per bucket (not cumulative); the last slot counts observations above every bound.
    sync_buckets: [AtomicU64; SYNC_DURATION_BUCKETS.len() + 1],
    sync_count: AtomicU64,
    /// Sum of observed durations, in microseconds.
    sync_sum_micros: AtomicU64,
    errors: [AtomicU64; Metrics::ERROR_KINDS.len()],
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl Metrics {
    /// The kinds of `permitsync_errors_total`: `auth` (refused tokens), `decode`
    /// (malformed frames or bodies), `protocol` (a peer broke the sync protocol
    /// and was disconnected), `storage`, `sync` (other failed sync connections),
    /// `http` (server errors of the REST API), `other`.
    pub const ERROR_KINDS: [&'static str; 7] = [
        "auth", "decode", "protocol", "storage", "sync", "http", "other",
    ];

    /// New, empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count `n` changes that were new to the store.
    pub fn add_changes_applied(&self, n: u64) {
        add(&self.changes_applied, n);
    }

    /// Count bytes received from peers.
    pub fn add_bytes_in(&self, n: u64) {
        add(&self.bytes_in, n);
    }

    /// Count bytes sent to peers.
    pub fn add_bytes_out(&self, n: u64) {
        add(&self.bytes_out, n);
    }

    /// Count one sync message received.
    pub fn message_in(&self) {
        add(&self.messages_in, 1);
    }

    /// Count one sync message sent.
    pub fn message_out(&self) {
        add(&self.messages_out, 1);
    }

    /// Count `n` operations of peers that the view rejected.
    pub fn add_rejected(&self, n: u64) {
        add(&self.rejected, n);
    }

    /// Count one HTTP request.
    pub fn http_request(&self) {
        add(&self.http_requests, 1);
    }

    /// Record how long a sync (a session, or a document's sync round) took.
    /// Negative and non-finite values are ignored.
    pub fn observe_sync_duration(&self, secs: f64) {
        if !secs.is_finite() || secs < 0.0 {
            return;
        }
        let slot = SYNC_DURATION_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(SYNC_DURATION_BUCKETS.len());
        add(&self.sync_buckets[slot], 1);
        add(&self.sync_count, 1);
        // saturating float -> int conversion
        add(&self.sync_sum_micros, (secs * 1e6).round() as u64);
    }

    /// Count one error of `kind` (one of [`Metrics::ERROR_KINDS`]; anything
    /// else counts as `other`).
    pub fn error(&self, kind: &'static str) {
        let i = Self::ERROR_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(Self::ERROR_KINDS.len() - 1);
        add(&self.errors[i], 1);
    }

    /// Changes applied so far.
    pub fn changes_applied(&self) -> u64 {
        get(&self.changes_applied)
    }

    /// HTTP requests so far.
    pub fn http_requests(&self) -> u64 {
        get(&self.http_requests)
    }

    /// Errors of `kind` so far.
    pub fn errors(&self, kind: &str) -> u64 {
        Self::ERROR_KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| get(&self.errors[i]))
    }

    /// The Prometheus text exposition (format 0.0.4), with the gauges given:
    /// `peers` live connections and `documents` entities in the store.
    pub fn render(&self, peers: usize, documents: usize) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "permitsync_peers_connected",
            "gauge",
            "Live sync connections.",
            &[("", peers.to_string())],
        );
        metric(
            "permitsync_documents",
            "gauge",
            "Entities (documents) in the store.",
            &[("", documents.to_string())],
        );
        let counter = |c: &AtomicU64| get(c).to_string();
        metric(
            "permitsync_changes_applied_total",
            "counter",
            "Changes new to the store, from peers or the REST API.",
            &[("", counter(&self.changes_applied))],
        );
        metric(
            "permitsync_bytes_in_total",
            "counter",
            "Bytes of sync frames received.",
            &[("", counter(&self.bytes_in))],
        );
        metric(
            "permitsync_bytes_out_total",
            "counter",
            "Bytes of sync frames sent.",
            &[("", counter(&self.bytes_out))],
        );
        metric(
            "permitsync_sync_messages_total",
            "counter",
            "Sync messages exchanged, by direction.",
            &[
                ("{direction=\"in\"}", counter(&self.messages_in)),
                ("{direction=\"out\"}", counter(&self.messages_out)),
            ],
        );
        metric(
            "permitsync_rejected_operations_total",
            "counter",
            "Operations received from peers that the policy view rejected.",
            &[("", counter(&self.rejected))],
        );
        metric(
            "permitsync_http_requests_total",
            "counter",
            "HTTP requests served.",
            &[("", counter(&self.http_requests))],
        );
        let mut samples: Vec<(String, String)> = Vec::new();
        let mut cumulative = 0u64;
        for (i, bound) in SYNC_DURATION_BUCKETS.iter().enumerate() {
            cumulative += get(&self.sync_buckets[i]);
            samples.push((format!("_bucket{{le=\"{bound}\"}}"), cumulative.to_string()));
        }
        cumulative += get(&self.sync_buckets[SYNC_DURATION_BUCKETS.len()]);
        samples.push(("_bucket{le=\"+Inf\"}".into(), cumulative.to_string()));
        let sum = get(&self.sync_sum_micros) as f64 / 1e6;
        samples.push(("_sum".into(), format!("{sum}")));
        samples.push(("_count".into(), cumulative.to_string()));
        let borrowed: Vec<(&str, String)> = samples
            .iter()
            .map(|(l, v)| (l.as_str(), v.clone()))
            .collect();
        metric(
            "permitsync_sync_duration_seconds",
            "histogram",
            "Duration of syncs.",
            &borrowed,
        );
        let labels: Vec<String> = Self::ERROR_KINDS
            .iter()
            .map(|k| format!("{{kind=\"{k}\"}}"))
            .collect();
        let errors: Vec<(&str, String)> = labels
            .iter()
            .zip(&self.errors)
            .map(|(l, c)| (l.as_str(), counter(c)))
            .collect();
        metric(
            "permitsync_errors_total",
            "counter",
            "Errors, by kind.",
            &errors,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_in_text_format() {
        let m = Metrics::default();
        m.add_changes_applied(3);
        m.add_bytes_in(100);
        m.add_bytes_out(50);
        m.message_in();
        m.message_out();
        m.message_out();
        m.add_rejected(1);
        m.http_request();
        m.observe_sync_duration(0.002);
        m.observe_sync_duration(20.0);
        m.error("storage");
        m.error("protocol");
        m.error("not-a-kind");
        let text = m.render(2, 7);
        for line in [
            "# TYPE permitsync_peers_connected gauge",
            "permitsync_peers_connected 2",
            "permitsync_documents 7",
            "permitsync_changes_applied_total 3",
            "permitsync_bytes_in_total 100",
            "permitsync_bytes_out_total 50",
            "permitsync_sync_messages_total{direction=\"in\"} 1",
            "permitsync_sync_messages_total{direction=\"out\"} 2",
            "permitsync_rejected_operations_total 1",
            "permitsync_http_requests_total 1",
            "# TYPE permitsync_sync_duration_seconds histogram",
            "permitsync_sync_duration_seconds_bucket{le=\"0.001\"} 0",
            "permitsync_sync_duration_seconds_bucket{le=\"0.005\"} 1",
            "permitsync_sync_duration_seconds_bucket{le=\"10\"} 1",
            "permitsync_sync_duration_seconds_bucket{le=\"+Inf\"} 2",
            "permitsync_sync_duration_seconds_sum 20.002",
            "permitsync_sync_duration_seconds_count 2",
            "permitsync_errors_total{kind=\"storage\"} 1",
            "permitsync_errors_total{kind=\"protocol\"} 1",
            "permitsync_errors_total{kind=\"other\"} 1",
            "permitsync_errors_total{kind=\"auth\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(m.errors("storage"), 1);
    }

    /// The whole exposition for one state of the metrics: every name, type,
    /// HELP text, label and the order, as `/metrics` served them when they
    /// were written by hand (the durations are exact in binary, so the sum
    /// prints the same whether it is kept in microseconds or as a float).
    #[test]
    fn the_exposition_is_pinned() {
        let m = Metrics::default();
        m.add_changes_applied(3);
        m.add_bytes_in(100);
        m.add_bytes_out(50);
        m.message_in();
        m.message_out();
        m.message_out();
        m.add_rejected(1);
        m.http_request();
        m.observe_sync_duration(0.0625);
        m.observe_sync_duration(0.5);
        m.observe_sync_duration(16.0);
        m.error("storage");
        m.error("auth");
        m.error("auth");
        assert_eq!(m.render(2, 7), PINNED);
    }

    const PINNED: &str = "\
# HELP permitsync_peers_connected Live sync connections.
# TYPE permitsync_peers_connected gauge
permitsync_peers_connected 2
# HELP permitsync_documents Entities (documents) in the store.
# TYPE permitsync_documents gauge
permitsync_documents 7
# HELP permitsync_changes_applied_total Changes new to the store, from peers or the REST API.
# TYPE permitsync_changes_applied_total counter
permitsync_changes_applied_total 3
# HELP permitsync_bytes_in_total Bytes of sync frames received.
# TYPE permitsync_bytes_in_total counter
permitsync_bytes_in_total 100
# HELP permitsync_bytes_out_total Bytes of sync frames sent.
# TYPE permitsync_bytes_out_total counter
permitsync_bytes_out_total 50
# HELP permitsync_sync_messages_total Sync messages exchanged, by direction.
# TYPE permitsync_sync_messages_total counter
permitsync_sync_messages_total{direction=\"in\"} 1
permitsync_sync_messages_total{direction=\"out\"} 2
# HELP permitsync_rejected_operations_total Operations received from peers that the policy view rejected.
# TYPE permitsync_rejected_operations_total counter
permitsync_rejected_operations_total 1
# HELP permitsync_http_requests_total HTTP requests served.
# TYPE permitsync_http_requests_total counter
permitsync_http_requests_total 1
# HELP permitsync_sync_duration_seconds Duration of syncs.
# TYPE permitsync_sync_duration_seconds histogram
permitsync_sync_duration_seconds_bucket{le=\"0.001\"} 0
permitsync_sync_duration_seconds_bucket{le=\"0.005\"} 0
permitsync_sync_duration_seconds_bucket{le=\"0.01\"} 0
permitsync_sync_duration_seconds_bucket{le=\"0.05\"} 0
permitsync_sync_duration_seconds_bucket{le=\"0.1\"} 1
permitsync_sync_duration_seconds_bucket{le=\"0.25\"} 1
permitsync_sync_duration_seconds_bucket{le=\"0.5\"} 2
permitsync_sync_duration_seconds_bucket{le=\"1\"} 2
permitsync_sync_duration_seconds_bucket{le=\"2.5\"} 2
permitsync_sync_duration_seconds_bucket{le=\"10\"} 2
permitsync_sync_duration_seconds_bucket{le=\"+Inf\"} 3
permitsync_sync_duration_seconds_sum 16.5625
permitsync_sync_duration_seconds_count 3
# HELP permitsync_errors_total Errors, by kind.
# TYPE permitsync_errors_total counter
permitsync_errors_total{kind=\"auth\"} 2
permitsync_errors_total{kind=\"decode\"} 0
permitsync_errors_total{kind=\"protocol\"} 0
permitsync_errors_total{kind=\"storage\"} 1
permitsync_errors_total{kind=\"sync\"} 0
permitsync_errors_total{kind=\"http\"} 0
permitsync_errors_total{kind=\"other\"} 0
";

    #[test]
    fn bad_durations_are_ignored() {
        let m = Metrics::default();
        m.observe_sync_duration(f64::NAN);
        m.observe_sync_duration(-1.0);
        assert!(m
            .render(0, 0)
            .contains("permitsync_sync_duration_seconds_count 0"));
    }
}
