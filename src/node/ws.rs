//! WebSocket transports: the server side (axum, `GET /v1/sync`) and the
//! client side (tokio-tungstenite, for dialing other nodes).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as TMessage;

use super::api_error::{ApiError, ErrorBody};
use super::connection::{drive, DriveOptions, Transport};
use super::gate::{authenticate, PeerIp};
use super::hub::Direction;
use super::listener::Held;
use super::state::NodeState;
use crate::sync::{Role, Session, SessionConfig};
use crate::wire::PeerId;

/// `GET /v1/sync`: authenticate (bearer header or `?token=`), take one of the
/// token's connection slots (held from the upgrade until the connection ends,
/// `join` or not), then speak the automerge-repo protocol as the server side.
/// A peer must `join` within the join timeout; a silent one is pinged and,
/// if it stays silent, closed.
#[utoipa::path(get, path = "/v1/sync", tag = "sync",
    responses(
        (status = 101, description = "switched to the WebSocket: the automerge-repo sync protocol (`docs/protocol.md`)"),
        (status = 400, description = "not a WebSocket upgrade request", content_type = "text/plain", body = String),
        (status = 426, description = "the connection cannot be upgraded", content_type = "text/plain", body = String),
        (status = 429, description = "`too_many_connections`: the token holds its most sync connections; `rate_limited`; `auth_throttled`", body = ErrorBody)))]
pub async fn sync_endpoint(
    State(state): State<Arc<NodeState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    PeerIp(peer): PeerIp,
    Held(held): Held,
    ws: WebSocketUpgrade,
) -> Response {
    let access = match authenticate(&state, &headers, query.as_deref(), peer) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    // per token: a node without tokens has no way to tell its clients apart
    let max = if state.auth.is_open() {
        usize::MAX
    } else {
        state.quotas.max_connections_per_token
    };
    let slot = match state.hub.slots().take(&access, max) {
        Ok(slot) => slot,
        Err(live) => {
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                format!("this token already has {live} sync connections (the limit is {max})"),
            )
            .retry_after(1)
            .into_response();
        }
    };
    let net = state.quotas.net;
    // the transport admits frames up to twice the limit so that the decoder,
    // not a silent close, answers an oversized frame with an `error` message
    let max = state.limits.max_frame_bytes.saturating_mul(2);
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            // both live as long as the connection: its token slot and its
            // place in the node's connection budget
            let _slot = slot;
            let _held = held;
            let session = Session::new(
                SessionConfig {
                    local_peer: PeerId::new(state.peer_id.clone()),
                    role: Role::Server,
                    access: access.clone(),
                    limits: state.limits,
                    feed_page: 1000,
                },
                state.store_for(&access),
            )
            .with_receive_limits(state.quotas.receive);
            let ended = drive(
                state.clone(),
                session,
                AxumSocket::new(socket, net.ping_interval),
                access,
                DriveOptions {
                    direction: Direction::Inbound,
                    url: None,
                    stop_when_idle: false,
                    join_timeout: Some(net.join_timeout),
                    send_timeout: Some(net.send_timeout),
                },
            )
            .await;
            tracing::debug!(reason = %ended.reason, "sync connection ended");
        })
        .into_response()
}

/// Pings a silent peer may leave unanswered before it is taken for dead.
const MAX_UNANSWERED_PINGS: u32 = 2;

/// The server side of a WebSocket. A peer silent for a ping interval is
/// pinged; after [`MAX_UNANSWERED_PINGS`] pings with no frame back (a pong
/// counts), [`Transport::recv`] fails and the connection ends.
pub struct AxumSocket {
    socket: WebSocket,
    ping_every: Duration,
    unanswered: u32,
}

impl AxumSocket {
    /// `socket`, pinged after `ping_every` of silence.
    pub fn new(socket: WebSocket, ping_every: Duration) -> Self {
        AxumSocket {
            socket,
            ping_every: ping_every.max(Duration::from_millis(100)),
            unanswered: 0,
        }
    }
}

impl Transport for AxumSocket {
    async fn recv(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            let next = match tokio::time::timeout(self.ping_every, self.socket.recv()).await {
                Ok(next) => next?,
                Err(_) if self.unanswered >= MAX_UNANSWERED_PINGS => {
                    return Some(Err(format!(
                        "no answer to {MAX_UNANSWERED_PINGS} pings; the peer is gone"
                    )));
                }
                Err(_) => {
                    self.unanswered += 1;
                    let ping = AxMessage::Ping(axum::body::Bytes::from_static(b"permitsync"));
                    if let Err(e) = self.socket.send(ping).await {
                        return Some(Err(e.to_string()));
                    }
                    continue;
                }
            };
            self.unanswered = 0;
            return match next {
                Ok(AxMessage::Binary(b)) => Some(Ok(b.to_vec())),
                Ok(AxMessage::Text(t)) => Some(Ok(t.as_bytes().to_vec())),
                Ok(AxMessage::Close(_)) => None,
                Ok(AxMessage::Ping(_) | AxMessage::Pong(_)) => continue,
                Err(e) => Some(Err(e.to_string())),
            };
        }
    }

    async fn send(&mut self, frame: Vec<u8>) -> Result<(), String> {
        self.socket
            .send(AxMessage::Binary(frame.into()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn close(&mut self) {
        let _ = self.socket.send(AxMessage::Close(None)).await;
    }
}

/// The client side of a WebSocket (over TCP, or TLS for `wss://`).
pub struct ClientSocket(pub tokio_tungstenite::WebSocketStream<super::tls::MaybeTls>);

impl Transport for ClientSocket {
    async fn recv(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            return match self.0.next().await? {
                Ok(TMessage::Binary(b)) => Some(Ok(b.to_vec())),
                Ok(TMessage::Text(t)) => Some(Ok(t.as_bytes().to_vec())),
                Ok(TMessage::Close(_)) => None,
                Ok(TMessage::Ping(_) | TMessage::Pong(_) | TMessage::Frame(_)) => continue,
                Err(e) => Some(Err(e.to_string())),
            };
        }
    }

    async fn send(&mut self, frame: Vec<u8>) -> Result<(), String> {
        self.0
            .send(TMessage::Binary(frame.into()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn close(&mut self) {
        let _ = self.0.close(None).await;
    }
}
