//! What the network may cost a node: connections, concurrent requests,
//! timeouts and failed logins. Each is a `serve` flag (see
//! `docs/operations.md`); the defaults suit a relay for a few hundred tablets.
//!
//! Open files are the scarcest of these: every connection holds a descriptor,
//! and a process that runs out can accept nothing, not even `/healthz`. The
//! node raises its soft open-file limit to the hard limit at start
//! ([`raise_open_file_limit`]) and caps its connections below what is left
//! once [`RESERVED_FILES`] are set aside for the store and the runtime
//! ([`NetLimits::fit_to_open_files`]).

use std::time::Duration;

/// Descriptors kept out of the connection budget: the store's files, the
/// runtime, the tokens file, the few connections refused with a 503.
pub const RESERVED_FILES: u64 = 64;

/// Network limits of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLimits {
    /// Open TCP connections (HTTP and sync). Beyond it a new connection gets
    /// `503` (only `/healthz` is answered) and is closed.
    pub max_connections: usize,
    /// Open TCP connections from one network (an IPv4 address or an IPv6
    /// /64); beyond it a new one is refused at once.
    pub max_connections_per_address: usize,
    /// HTTP requests handled at once; beyond it `503 busy` (not `/healthz`).
    pub max_concurrent_requests: usize,
    /// A new connection must have sent its first request's headers within this.
    pub header_read_timeout: Duration,
    /// A request's body must have arrived within this (`408 body_timeout`).
    pub body_read_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A sync connection must send `join` within this after the upgrade.
    pub join_timeout: Duration,
    /// A sync frame the peer does not take within this closes the
    /// connection (a peer that stopped reading).
    pub send_timeout: Duration,
    /// A sync connection silent for this long is pinged; one that stays silent
    /// for two more intervals is closed.
    pub ping_interval: Duration,
    /// Failed authentications per source address per minute (bursts of as
    /// many); beyond, `429` with `Retry-After`. 0 = unlimited.
    pub auth_failures_per_minute: u32,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            max_connections: 4096,
            max_connections_per_address: 256,
            max_concurrent_requests: 512,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(30),
            auth_failures_per_minute: 60,
        }
    }
}

impl NetLimits {
    /// These limits with `max_connections` lowered, if need be, to what
    /// `open_files` descriptors allow after [`RESERVED_FILES`] (at least 1).
    pub fn fit_to_open_files(mut self, open_files: u64) -> NetLimits {
        let budget = open_files.saturating_sub(RESERVED_FILES).max(1);
        let budget = usize::try_from(budget).unwrap_or(usize::MAX);
        if self.max_connections > budget {
            tracing::warn!(
                wanted = self.max_connections,
                allowed = budget,
                open_files,
                "the open-file limit caps the connections"
            );
            self.max_connections = budget;
        }
        self
    }

    /// Connections above [`NetLimits::max_connections`] that are still read
    /// (briefly) to answer `/healthz` or a clean `503`; beyond those a new
    /// connection is closed at once.
    pub fn overflow_connections(&self) -> usize {
        (RESERVED_FILES as usize / 2).min(self.max_connections.max(1))
    }
}

/// Raise the soft open-file limit (`RLIMIT_NOFILE`) to the hard limit; returns
/// the soft limit in force afterwards (the old one if raising failed).
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::Resource::NOFILE
                .get()
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_in_the_open_files_left() {
        let n = NetLimits::default();
        assert_eq!(n.fit_to_open_files(256).max_connections, 192);
        assert_eq!(n.fit_to_open_files(1 << 20).max_connections, 4096);
        assert_eq!(n.fit_to_open_files(10).max_connections, 1);
        assert_eq!(n.fit_to_open_files(256).overflow_connections(), 32);
    }
}
