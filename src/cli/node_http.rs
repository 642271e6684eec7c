//! The CLI's connection to a node's HTTP API (`status`, `backup --node`):
//! a base URL of `http://` or `https://`, dialed trusting what the client's
//! TLS settings trust.

use anyhow::{anyhow, bail, Result};
use permitsync::node::{ClientTls, MaybeTls};

/// Open a connection to the node at `base`; also returns the `Host` to
/// send (the URL's host and port).
pub(super) async fn connect<'a>(base: &'a str, tls: &ClientTls) -> Result<(MaybeTls, &'a str)> {
    let (secure, rest) = match (base.strip_prefix("http://"), base.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => bail!("the node URL must start with http:// or https:// (got {base})"),
    };
    let host = rest.trim_end_matches('/');
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (
            name,
            port.parse::<u16>()
                .map_err(|_| anyhow!("bad port in the node URL {base}"))?,
        ),
        _ => (host, if secure { 443 } else { 80 }),
    };
    let stream = tls
        .open(name, port, secure)
        .await
        .map_err(|e| anyhow!("cannot reach the node at {base}: {e}"))?;
    Ok((stream, host))
}
