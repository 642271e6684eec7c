//! Prometheus metrics. (stub)

/// Metrics.
#[derive(Default)]
pub struct Metrics;
