//! The options of `permitsync serve`.

use std::path::PathBuf;

use clap::ValueEnum;
use permitsync::store::CostLimits;
use serde::Serialize;

/// How `serve` writes its log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line (for journald, Loki, Elasticsearch...).
    Json,
}

/// `serve` options. Each is also an environment variable
/// (`PERMITSYNC_` and the option's name in capitals, `-` as `_`) and a key of
/// the `--config` file (the option's name); the command line wins over the
/// environment, which wins over the file.
#[derive(Debug, Clone, clap::Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServeArgs {
    /// A TOML file of serve options (keys are the long option names, e.g.
    /// `max-document-bytes = 1000`; also `data`, `device` and `require-gas`).
    #[arg(long, env = "PERMITSYNC_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Check the options (config file, certificates, tokens file) and print
    /// the effective configuration with where each value comes from, without
    /// opening the store; then exit.
    #[arg(long)]
    #[serde(skip)]
    pub check_config: bool,
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(
        long,
        env = "PERMITSYNC_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// Keep the relay's store in this PostgreSQL database instead of the
    /// sled store of --data (which is then not used), e.g.
    /// postgres://permitsync:SECRET@db.example:5432/permitsync. See docs/cluster.md.
    #[arg(
        long,
        env = "PERMITSYNC_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "without_password"
    )]
    pub database_url: Option<String>,
    /// With --database-url: how often the relay reads the database's feed
    /// for what other relays over it wrote, in milliseconds, besides being
    /// woken by their notifications (which CockroachDB and YugabyteDB lack).
    #[arg(long, env = "PERMITSYNC_CLUSTER_POLL_MS", default_value_t = 1000, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub cluster_poll_ms: u64,
    /// Tokens file (JSON: token -> tenant, device, mode). Without it, every client
    /// has full access to the default tenant.
    #[arg(long, env = "PERMITSYNC_TOKENS", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<PathBuf>,
    /// A file holding the admin token (one line, at least 16 characters) that
    /// `POST /v1/admin/backup` needs (`permitsync backup --node URL`). Without
    /// it the admin routes answer 403.
    #[arg(long, env = "PERMITSYNC_ADMIN_TOKEN_FILE", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
    /// The tenant authority's key file (`permitsync authority init`), so that
    /// several relays share one authority; without it a node with a tokens
    /// file makes its own, kept in its store.
    #[arg(long, env = "PERMITSYNC_AUTHORITY_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority_key: Option<PathBuf>,
    /// The tenants' own role tables (JSON: {"<tenant>": {"<operation>":
    /// ["role", ...]}}): which roles an operation needs, where a tenant
    /// differs from the default table. Signed by this relay as the tenants'
    /// authority and sent to their devices; needs --tokens. Reread on SIGHUP.
    #[arg(long, env = "PERMITSYNC_ROLE_TABLE", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_table: Option<PathBuf>,
    /// Another node's sync URL to dial (repeatable; separate URLs with spaces
    /// in the variable), e.g. wss://relay.example/v1/sync?token=SECRET.
    /// The relays of one cluster go in one value, separated by commas: one
    /// connection to one of them, failing over to the next.
    #[arg(
        long,
        env = "PERMITSYNC_CONNECT",
        value_delimiter = ' ',
        value_name = "URL"
    )]
    pub connect: Vec<String>,
    /// Also trust this CA (PEM) for wss:// URLs, besides the system's roots.
    #[arg(long, env = "PERMITSYNC_CA_CERT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Serve HTTPS and WSS with this certificate chain (PEM, the node's
    /// certificate first); needs --tls-key.
    #[arg(
        long,
        env = "PERMITSYNC_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "PERMITSYNC_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Log lines on stderr as text or as JSON (one object a line). Colour only
    /// when stderr is a terminal and NO_COLOR is unset.
    #[arg(long, env = "PERMITSYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Largest WebSocket frame accepted from a peer, in bytes.
    #[arg(long, env = "PERMITSYNC_MAX_FRAME_BYTES", default_value_t = 8 * 1024 * 1024, value_name = "BYTES")]
    pub max_frame_bytes: usize,
    /// Most new changes one sync message may bring.
    #[arg(
        long,
        env = "PERMITSYNC_MAX_CHANGES_PER_MESSAGE",
        default_value_t = 100_000,
        value_name = "N"
    )]
    pub max_changes_per_message: usize,
    /// Largest stored size of one document, in bytes.
    #[arg(long, env = "PERMITSYNC_MAX_DOCUMENT_BYTES", default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub max_document_bytes: usize,
    /// Most operations one Automerge change may hold (foreign data is
    /// measured before it is decoded; see docs/storage.md "Cost limits").
    #[arg(long, env = "PERMITSYNC_MAX_OPS_PER_CHANGE", default_value_t = CostLimits::default().max_ops_per_change, value_name = "N")]
    pub max_ops_per_change: u64,
    /// Most operations one sync message, write or bundle document may bring.
    #[arg(long, env = "PERMITSYNC_MAX_OPS_PER_MESSAGE", default_value_t = CostLimits::default().max_ops_per_message, value_name = "N")]
    pub max_ops_per_message: u64,
    /// Most characters of text (and list items) one sync message or write may
    /// insert.
    #[arg(long, env = "PERMITSYNC_MAX_TEXT_CHARS", default_value_t = CostLimits::default().max_text_chars, value_name = "N")]
    pub max_text_chars: u64,
    /// Most bytes of values one sync message or write may bring, after
    /// decompression.
    #[arg(long, env = "PERMITSYNC_MAX_VALUE_BYTES", default_value_t = CostLimits::default().max_value_bytes, value_name = "BYTES")]
    pub max_value_bytes: u64,
    /// Most operations one document may hold.
    #[arg(long, env = "PERMITSYNC_MAX_DOCUMENT_OPS", default_value_t = CostLimits::default().max_document_ops, value_name = "N")]
    pub max_document_ops: u64,
    /// Largest photo (blob) accepted, by upload or from a peer, in bytes
    /// (keep it below --max-frame-bytes: a blob travels in one frame).
    #[arg(long, env = "PERMITSYNC_MAX_BLOB_BYTES", default_value_t = permitsync::store::DEFAULT_MAX_BLOB_BYTES, value_name = "BYTES")]
    pub max_blob_bytes: usize,
    /// Live sync connections per token.
    #[arg(
        long,
        env = "PERMITSYNC_MAX_CONNECTIONS_PER_TOKEN",
        default_value_t = 16,
        value_name = "N"
    )]
    pub max_connections_per_token: usize,
    /// Requests per token per second (REST calls and sync connections; bursts
    /// up to twice that; 0 = unlimited).
    #[arg(
        long,
        env = "PERMITSYNC_MAX_REQUESTS_PER_SECOND",
        default_value_t = 200,
        value_name = "N"
    )]
    pub max_requests_per_second: u32,
    /// Open connections (HTTP and sync) at once; beyond it a new connection
    /// gets 503 (only /healthz is answered). Lowered to fit the open-file limit.
    #[arg(
        long,
        env = "PERMITSYNC_MAX_CONNECTIONS",
        default_value_t = 4096,
        value_name = "N"
    )]
    pub max_connections: usize,
    /// Open TCP connections from one network (an IPv4 address or an IPv6
    /// /64); beyond it a new connection gets 503 at once. Keep it above what
    /// a site's tablets behind one NAT open together.
    #[arg(long, env = "PERMITSYNC_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections_per_address: usize,
    /// HTTP requests handled at once; beyond it 503 `busy` (not /healthz).
    #[arg(
        long,
        env = "PERMITSYNC_MAX_CONCURRENT_REQUESTS",
        default_value_t = 512,
        value_name = "N"
    )]
    pub max_concurrent_requests: usize,
    /// A new connection must finish its TLS handshake (with --tls-cert) and
    /// send its first request's headers within this.
    #[arg(long, env = "PERMITSYNC_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,
    /// A request body must arrive within this (408 `body_timeout`).
    #[arg(long, env = "PERMITSYNC_BODY_READ_TIMEOUT_SECS", default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_secs: u64,
    /// A kept-alive connection with no request for this long is closed.
    #[arg(long, env = "PERMITSYNC_IDLE_TIMEOUT_SECS", default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_secs: u64,
    /// A sync connection must send `join` within this after the upgrade.
    #[arg(long, env = "PERMITSYNC_JOIN_TIMEOUT_SECS", default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub join_timeout_secs: u64,
    /// A sync frame the peer does not take within this closes the connection
    /// (a peer that stopped reading must not hold its task and memory).
    #[arg(long, env = "PERMITSYNC_SEND_TIMEOUT_SECS", default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub send_timeout_secs: u64,
    /// A silent sync connection is pinged after this; after two unanswered
    /// pings it is closed.
    #[arg(long, env = "PERMITSYNC_PING_INTERVAL_SECS", default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub ping_interval_secs: u64,
    /// Failed authentications per source address per minute (bursts of as
    /// many); beyond, 429 `auth_throttled` with Retry-After. 0 = unlimited.
    #[arg(
        long,
        env = "PERMITSYNC_MAX_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 60,
        value_name = "N"
    )]
    pub max_auth_failures_per_minute: u32,
}

impl ServeArgs {
    /// The cost limits these flags ask for.
    pub fn cost_limits(&self) -> CostLimits {
        CostLimits {
            max_ops_per_change: self.max_ops_per_change,
            max_ops_per_message: self.max_ops_per_message,
            max_text_chars: self.max_text_chars,
            max_value_bytes: self.max_value_bytes,
            max_document_ops: self.max_document_ops,
        }
    }
}

/// A database URL as `--check-config` shows it: the password masked.
fn without_password<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_str(&mask_password(url)),
        None => s.serialize_none(),
    }
}

/// `postgres://user:SECRET@host/db` as `postgres://user:***@host/db`, and
/// `password=SECRET` of the `key=value` form as `password=***`.
fn mask_password(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                return format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &rest[..colon],
                    &rest[at..]
                );
            }
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_string(),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn a_database_password_is_masked() {
        assert_eq!(
            mask_password("postgres://relay:s3cr@t@db:5432/permits?sslmode=disable"),
            "postgres://relay:***@db:5432/permits?sslmode=disable"
        );
        assert_eq!(
            mask_password("postgres://relay@db/permits"),
            "postgres://relay@db/permits"
        );
        assert_eq!(
            mask_password("host=db user=relay password=s3cret dbname=permits"),
            "host=db user=relay password=*** dbname=permits"
        );
    }
}
