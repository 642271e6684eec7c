//! Dialing other nodes: one connection per URL, reconnecting with
//! exponential backoff and jitter (1 s doubling to 32 s). `ws://` URLs are
//! plain TCP; `wss://` URLs are TLS, trusting what [`ClientTls`] trusts.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::connection::{drive, DriveOptions, Ended};
use super::hub::Direction;
use super::state::NodeState;
use super::tls::{ClientTls, MaybeTls};
use super::ws::ClientSocket;
use crate::model::Access;
use crate::sync::{backoff, Role, Session, SessionConfig};
use crate::wire::PeerId;

/// The URL without its query (which may hold a token), for logs and status.
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

/// Connect once to `url` and run the sync session until it ends (or, with
/// `stop_when_idle`, until everything is in sync). A `wss://` URL trusts the
/// system's root certificates ([`ClientTls::system`]).
pub async fn connect(
    state: Arc<NodeState>,
    url: &str,
    stop_when_idle: bool,
) -> Result<Ended, String> {
    connect_with(state, url, stop_when_idle, &ClientTls::system()).await
}

/// The TCP (or, for `wss://`, TLS) connection and WebSocket handshake to `url`.
async fn open_socket(
    url: &str,
    tls: &ClientTls,
) -> Result<tokio_tungstenite::WebSocketStream<MaybeTls>, String> {
    let request = url
        .into_client_request()
        .map_err(|e| format!("bad sync URL: {e}"))?;
    let uri = request.uri();
    let secure = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => {
            return Err(format!(
                "bad sync URL: the scheme must be ws:// or wss:// (got {})",
                other.unwrap_or("none")
            ))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| "bad sync URL: no host".to_string())?
        .to_string();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let stream = tls.open(&host, port, secure).await?;
    let (socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
    Ok(socket)
}

/// [`connect`], trusting what `tls` trusts for a `wss://` URL.
pub async fn connect_with(
    state: Arc<NodeState>,
    url: &str,
    stop_when_idle: bool,
    tls: &ClientTls,
) -> Result<Ended, String> {
    let socket = open_socket(url, tls)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", redact(url)))?;
    // the peer we dial may see and send everything of our (default) tenant
    let access = Access::open(redact(url));
    let session = Session::new(
        SessionConfig {
            local_peer: PeerId::new(state.peer_id.clone()),
            role: Role::Client,
            access: access.clone(),
            limits: state.limits,
            feed_page: 1000,
        },
        state.store_for_dialed(),
    )
    .with_receive_limits(state.quotas.receive);
    Ok(drive(
        state,
        session,
        ClientSocket(socket),
        access,
        DriveOptions {
            direction: Direction::Outbound,
            url: Some(redact(url)),
            stop_when_idle,
            join_timeout: None,
            send_timeout: None,
        },
    )
    .await)
}

/// The relay URLs of one cluster, as `--connect` and `sync` take them:
/// separated by commas (spaces around them ignored).
pub fn cluster_urls(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect()
}

/// Keep a connection to one of `urls` (the relays of one cluster, or a
/// single node) open until `shutdown` turns true. When a connection fails
/// or ends, the next URL is dialed at once; once every URL failed in a row,
/// the next attempt waits (exponential backoff with jitter, as for a
/// single URL).
pub async fn dial_forever(
    state: Arc<NodeState>,
    urls: Vec<String>,
    tls: ClientTls,
    mut shutdown: watch::Receiver<bool>,
) {
    if urls.is_empty() {
        return;
    }
    let mut attempt: u32 = 0;
    let mut failed_in_a_row = 0usize;
    let mut at = 0usize;
    loop {
        let url = &urls[at];
        match connect_with(state.clone(), url, false, &tls).await {
            Ok(ended) => {
                tracing::info!(url = %redact(url), reason = %ended.reason, "connection ended");
                if ended.handshake_done {
                    attempt = 0;
                    failed_in_a_row = 0;
                }
            }
            Err(e) => tracing::warn!(error = %e, "dial failed"),
        }
        if *shutdown.borrow() {
            return;
        }
        failed_in_a_row += 1;
        at = (at + 1) % urls.len();
        if urls.len() > 1 && failed_in_a_row < urls.len() {
            tracing::info!(url = %redact(&urls[at]), "failing over to the next relay");
            continue;
        }
        failed_in_a_row = 0;
        let delay = backoff::delay(attempt, rand::random_range(0.5..=1.0));
        attempt = attempt.saturating_add(1);
        tracing::info!(url = %redact(&urls[at]), ?delay, "reconnecting after a delay");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}
