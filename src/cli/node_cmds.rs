//! The commands that run or talk to a node: `serve`, `status`, `sync`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use permitsync::node::{self, ClientTls, NodeOptions, ServerTls};
use permitsync::wire::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::args::{ServeArgs, StatusArgs, SyncArgs};
use super::commands::{interlocks, open_store, open_store_with, StoreAt};

/// Run `f` to completion on a new runtime.
pub(super) fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    runtime()?.block_on(f)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// What [`check`] loaded for [`serve`].
pub struct Checked {
    server_tls: Option<ServerTls>,
    client_tls: ClientTls,
}

/// Check `serve`'s options without opening the store: the limits fit
/// together, the gas rules parse, and the tokens file, certificates, key and
/// CA load.
pub fn check(require_gas: &[String], args: &ServeArgs) -> Result<Checked> {
    // a blob travels in one frame, with a little framing around it
    const BLOB_FRAME_OVERHEAD: usize = 64 * 1024;
    if args.max_blob_bytes.saturating_add(BLOB_FRAME_OVERHEAD) > args.max_frame_bytes {
        bail!(
            "--max-blob-bytes ({}) must stay {} bytes below --max-frame-bytes ({}): a blob \
             travels to peers in one frame",
            args.max_blob_bytes,
            BLOB_FRAME_OVERHEAD,
            args.max_frame_bytes
        );
    }
    interlocks(require_gas)?;
    if let Some(path) = &args.tokens {
        node::Auth::from_file(path).map_err(|e| anyhow!("{e}"))?;
    }
    if let Some(path) = &args.admin_token_file {
        node::AdminToken::from_file(path)?;
    }
    if let Some(path) = &args.authority_key {
        node::read_authority_key(path)?;
    }
    if let Some(path) = &args.role_table {
        if args.tokens.is_none() {
            bail!("--role-table needs --tokens: only a tenant authority signs role tables");
        }
        node::read_role_table_file(path)?;
    }
    let server_tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ServerTls::from_pem_files(cert, key)?),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let client_tls = ClientTls::new(args.ca_cert.as_deref())?;
    Ok(Checked {
        server_tls,
        client_tls,
    })
}

/// `permitsync serve`: run a node until SIGINT or SIGTERM.
pub fn serve(
    data: &Path,
    device: Option<String>,
    require_gas: &[String],
    args: ServeArgs,
    checked: Checked,
) -> Result<()> {
    let at = match &args.database_url {
        Some(url) => StoreAt::Postgres(url),
        None => StoreAt::Sled(data),
    };
    let store = open_store_with(at, device, require_gas, args.cost_limits())?;
    // every connection holds a descriptor: take what the hard limit allows,
    // and keep the connections within it
    let open_files = node::raise_open_file_limit();
    let secs = Duration::from_secs;
    let net = node::NetLimits {
        max_connections: args.max_connections,
        max_connections_per_address: args.max_connections_per_address,
        max_concurrent_requests: args.max_concurrent_requests,
        header_read_timeout: secs(args.header_read_timeout_secs),
        body_read_timeout: secs(args.body_read_timeout_secs),
        idle_timeout: secs(args.idle_timeout_secs),
        join_timeout: secs(args.join_timeout_secs),
        send_timeout: secs(args.send_timeout_secs),
        ping_interval: secs(args.ping_interval_secs),
        auth_failures_per_minute: args.max_auth_failures_per_minute,
    }
    .fit_to_open_files(open_files);
    let opts = NodeOptions {
        tokens: args.tokens.clone(),
        admin_token_file: args.admin_token_file.clone(),
        authority_key: args.authority_key.clone(),
        role_table: args.role_table.clone(),
        limits: Limits {
            max_frame_bytes: args.max_frame_bytes,
        },
        peer_id: None,
        quotas: node::Quotas {
            receive: permitsync::store::ReceiveLimits {
                max_changes: args.max_changes_per_message,
                max_document_bytes: args.max_document_bytes,
                max_blob_bytes: args.max_blob_bytes,
            },
            max_connections_per_token: args.max_connections_per_token,
            requests_per_second: args.max_requests_per_second,
            net,
        },
    };
    let state = node::build_state(store, &opts)?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| anyhow!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if checked.server_tls.is_some() {
            "https"
        } else {
            "http"
        };
        // SIGHUP reloads the tokens from now on (before anyone is told the address)
        let _watch = node::watch_tokens(state.clone())?;
        // and the TLS certificate and key (new handshakes get the new pair)
        #[cfg(unix)]
        let _tls_watch = match &checked.server_tls {
            Some(tls) => Some(tls.reload_on_sighup()?),
            None => None,
        };
        // and the role tables (signed again where they changed)
        let _roles = match &args.role_table {
            Some(path) => Some(node::watch_role_tables(state.clone(), path.clone())?),
            None => None,
        };
        {
            // tests and scripts wait for this line
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {scheme}://{addr}")?;
            out.flush()?;
        }
        tracing::info!(%addr, scheme, store = %at, peers = args.connect.len(),
            open_files, max_connections = net.max_connections, "node started");
        let run = node::RunOptions {
            connect: args.connect,
            client_tls: Some(checked.client_tls),
            server_tls: checked.server_tls,
            cluster_poll: Duration::from_millis(args.cluster_poll_ms),
        };
        node::run_with(listener, state, run, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `permitsync status`: GET /v1/status of a running node.
pub fn status(args: StatusArgs, json: bool) -> Result<()> {
    let tls = ClientTls::new(args.ca_cert.as_deref())?;
    let body = runtime()?.block_on(http_get(
        &args.url,
        "/v1/status",
        args.token.as_deref(),
        &tls,
    ))?;
    let value: serde_json::Value =
        serde_json::from_str(&body).context("the node's status is not JSON")?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{value}")?;
        return Ok(());
    }
    writeln!(
        out,
        "node {}  documents {}  feed {}",
        value["peer_id"].as_str().unwrap_or("?"),
        value["documents"],
        value["feed_head"]
    )?;
    let peers = value["peers"].as_array().cloned().unwrap_or_default();
    if peers.is_empty() {
        writeln!(out, "no peers connected")?;
    }
    for p in peers {
        writeln!(out, "{}", peer_line(&p))?;
    }
    Ok(())
}

/// One connected peer of `status`, with its last sync as a UTC time.
fn peer_line(p: &serde_json::Value) -> String {
    format!(
        "{:<8} {:<24} device {:<16} pending {:>5} sent {:>5} received {:>5} conflicts {:>3} last sync {}",
        p["direction"].as_str().unwrap_or("?"),
        p["peer_id"].as_str().unwrap_or("?"),
        p["device"].as_str().unwrap_or("?"),
        p["pending"],
        p["sent"],
        p["received"],
        p["conflicts"],
        p["last_sync_ms"]
            .as_i64()
            .map(super::timestamp::rfc3339_ms)
            .unwrap_or_else(|| "never".into())
    )
}

/// A minimal HTTP/1.1 GET over http:// or https:// (trusting what `tls` trusts).
async fn http_get(base: &str, path: &str, token: Option<&str>, tls: &ClientTls) -> Result<String> {
    let (mut stream, host) = super::node_http::connect(base, tls).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    // a TLS server may close without close_notify: keep what arrived
    if let Err(e) = stream.read_to_end(&mut raw).await {
        if raw.is_empty() {
            return Err(e.into());
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status != "200" {
        bail!("the node answered {status}: {}", body.trim());
    }
    // chunked bodies: keep only the JSON between the first `{` and the last `}`
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map(|e| e + 1).unwrap_or(body.len());
    Ok(body[start..end].to_string())
}

/// `permitsync sync URL`: one round with a node, then exit.
pub fn sync_once(
    data: &Path,
    device: Option<String>,
    require_gas: &[String],
    args: SyncArgs,
    json: bool,
) -> Result<()> {
    let tls = ClientTls::new(args.ca_cert.as_deref())?;
    let store = open_store(data, device, require_gas)?;
    let state = node::build_state(store, &NodeOptions::default())?;
    let urls: Vec<String> = args
        .url
        .iter()
        .flat_map(|u| node::cluster_urls(u))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(args.timeout);
    let mut failures = Vec::new();
    let mut synced = None;
    let rt = runtime()?;
    // one attempt per relay, in order, within the one timeout
    for url in &urls {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let state = state.clone();
        let attempt = rt.block_on(async {
            tokio::time::timeout(left, node::connect_with(state, url, true, &tls)).await
        });
        match attempt {
            Ok(Ok(ended)) if ended.was_idle => {
                synced = Some(url.clone());
                break;
            }
            Ok(Ok(ended)) => failures.push(format!(
                "sync with {} ended before completing: {}",
                node::redact(url),
                ended.reason
            )),
            Ok(Err(e)) => failures.push(e),
            Err(_) => {
                failures.push(format!("not in sync after {} s", args.timeout));
                break;
            }
        }
        if urls.len() > 1 {
            tracing::warn!(error = %failures.last().map_or("", String::as_str),
                "trying the next relay");
        }
    }
    let Some(url) = synced else {
        bail!("{}", failures.join("; "));
    };
    let summary = serde_json::json!({
        "url": node::redact(&url),
        "status": "in_sync",
        "documents": state.store.summaries()?.len(),
        "feed_head": state.store.feed_head(),
    });
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{summary}")?;
    } else {
        writeln!(
            out,
            "in sync with {} ({} documents here)",
            node::redact(&url),
            summary["documents"]
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::peer_line;

    #[test]
    fn a_peer_line_shows_the_last_sync_as_a_utc_time() {
        let p = serde_json::json!({"direction": "in", "peer_id": "p1", "device": "tablet-1",
            "pending": 0, "sent": 3, "received": 2, "conflicts": 0,
            "last_sync_ms": 1_796_603_044_629_i64});
        let line = peer_line(&p);
        assert!(
            line.ends_with("last sync 2026-12-07T00:24:04.629Z"),
            "{line}"
        );
        let never = peer_line(&serde_json::json!({"last_sync_ms": null}));
        assert!(never.ends_with("last sync never"), "{never}");
    }
}
