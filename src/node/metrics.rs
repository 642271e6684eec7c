//! Prometheus metrics of a node, kept by the `prometheus-client` crate:
//! counters, gauges and a histogram in a [`Registry`], updated by the sync
//! connections and the REST API and encoded in the Prometheus text
//! exposition format (version 0.0.4) by `GET /metrics`.
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
//!
//! The crate appends `_total` to a counter's name, so counters are
//! registered without it. A family with a label has a fixed set of members
//! ([`LabelledCounters`]), listed in a fixed order and all of them from the
//! start, where the crate's `Family` would list only the members used so far,
//! in the order of a hash map.

use prometheus_client::encoding::{prometheus_text, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the sync duration histogram's buckets.
pub const SYNC_DURATION_BUCKETS: [f64; 10] =
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A node's metrics. Every method is safe to call from any thread; the
/// counters are atomic.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    peers: Gauge,
    documents: Gauge,
    changes_applied: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    messages: LabelledCounters,
    rejected: Counter,
    http_requests: Counter,
    sync_duration: Histogram,
    errors: LabelledCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The kinds of `permitsync_errors_total`: `auth` (refused tokens), `decode`
    /// (malformed frames or bodies), `protocol` (a peer broke the sync protocol
    /// and was disconnected), `storage`, `sync` (other failed sync connections),
    /// `http` (server errors of the REST API), `other`.
    pub const ERROR_KINDS: [&'static str; 7] = [
        "auth", "decode", "protocol", "storage", "sync", "http", "other",
    ];

    /// New metrics, all zero, registered in the order `/metrics` lists them.
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            peers: Gauge::default(),
            documents: Gauge::default(),
            changes_applied: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            messages: LabelledCounters::new("direction", &["in", "out"]),
            rejected: Counter::default(),
            http_requests: Counter::default(),
            sync_duration: Histogram::new(SYNC_DURATION_BUCKETS),
            errors: LabelledCounters::new("kind", &Self::ERROR_KINDS),
        };
        // (the registry appends a full stop to each help text)
        let registry = &mut m.registry;
        registry.register(
            "permitsync_peers_connected",
            "Live sync connections",
            m.peers.clone(),
        );
        registry.register(
            "permitsync_documents",
            "Entities (documents) in the store",
            m.documents.clone(),
        );
        registry.register(
            "permitsync_changes_applied",
            "Changes new to the store, from peers or the REST API",
            m.changes_applied.clone(),
        );
        registry.register(
            "permitsync_bytes_in",
            "Bytes of sync frames received",
            m.bytes_in.clone(),
        );
        registry.register(
            "permitsync_bytes_out",
            "Bytes of sync frames sent",
            m.bytes_out.clone(),
        );
        registry.register(
            "permitsync_sync_messages",
            "Sync messages exchanged, by direction",
            m.messages.clone(),
        );
        registry.register(
            "permitsync_rejected_operations",
            "Operations received from peers that the policy view rejected",
            m.rejected.clone(),
        );
        registry.register(
            "permitsync_http_requests",
            "HTTP requests served",
            m.http_requests.clone(),
        );
        registry.register(
            "permitsync_sync_duration_seconds",
            "Duration of syncs",
            m.sync_duration.clone(),
        );
        registry.register("permitsync_errors", "Errors, by kind", m.errors.clone());
        m
    }

    /// Count `n` changes that were new to the store.
    pub fn add_changes_applied(&self, n: u64) {
        self.changes_applied.inc_by(n);
    }

    /// Count bytes received from peers.
    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.inc_by(n);
    }

    /// Count bytes sent to peers.
    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.inc_by(n);
    }

    /// Count one sync message received.
    pub fn message_in(&self) {
        self.messages.inc("in");
    }

    /// Count one sync message sent.
    pub fn message_out(&self) {
        self.messages.inc("out");
    }

    /// Count `n` operations of peers that the view rejected.
    pub fn add_rejected(&self, n: u64) {
        self.rejected.inc_by(n);
    }

    /// Count one HTTP request.
    pub fn http_request(&self) {
        self.http_requests.inc();
    }

    /// Record how long a sync (a session, or a document's sync round) took.
    /// Negative and non-finite values are ignored.
    pub fn observe_sync_duration(&self, secs: f64) {
        if !secs.is_finite() || secs < 0.0 {
            return;
        }
        self.sync_duration.observe(secs);
    }

    /// Count one error of `kind` (one of [`Metrics::ERROR_KINDS`]; anything
    /// else counts as `other`).
    pub fn error(&self, kind: &'static str) {
        if !self.errors.inc(kind) {
            self.errors.inc("other");
        }
    }

    /// Changes applied so far.
    pub fn changes_applied(&self) -> u64 {
        self.changes_applied.get()
    }

    /// HTTP requests so far.
    pub fn http_requests(&self) -> u64 {
        self.http_requests.get()
    }

    /// Errors of `kind` so far.
    pub fn errors(&self, kind: &str) -> u64 {
        self.errors.get(kind)
    }

    /// The Prometheus text exposition (format 0.0.4), with the gauges given:
    /// `peers` live connections and `documents` entities in the store.
    pub fn render(&self, peers: usize, documents: usize) -> String {
        self.peers.set(i64::try_from(peers).unwrap_or(i64::MAX));
        self.documents
            .set(i64::try_from(documents).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(2048);
        // Writing to a String does not fail, nor does encoding these metrics.
        if let Err(e) = prometheus_text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }
}

/// A counter per value of one label, every value known up front: a family
/// that lists all its members, in the order given, even those still at zero.
#[derive(Clone, Debug)]
struct LabelledCounters {
    label: &'static str,
    members: Vec<(&'static str, Counter)>,
}

impl LabelledCounters {
    fn new(label: &'static str, values: &[&'static str]) -> Self {
        LabelledCounters {
            label,
            members: values.iter().map(|v| (*v, Counter::default())).collect(),
        }
    }

    fn counter(&self, value: &str) -> Option<&Counter> {
        self.members
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, c)| c)
    }

    /// Counts one for `value`; false if it is not a member.
    fn inc(&self, value: &str) -> bool {
        self.counter(value).map(Counter::inc).is_some()
    }

    fn get(&self, value: &str) -> u64 {
        self.counter(value).map_or(0, Counter::get)
    }
}

impl EncodeMetric for LabelledCounters {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (value, counter) in &self.members {
            counter.encode(encoder.encode_family(&[(self.label, *value)])?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
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
