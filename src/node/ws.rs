//! WebSocket transports: the server side (axum, `GET /v1/sync`) and the
//! client side (tokio-tungstenite, for dialing other nodes).

use std::sync::Arc;

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as TMessage;

use super::api_error::ApiError;
use super::auth::access_from_parts;
use super::connection::{drive, DriveOptions, Transport};
use super::hub::Direction;
use super::rest::check_rate;
use super::state::NodeState;
use crate::sync::{Role, Session, SessionConfig};
use crate::wire::PeerId;

/// `GET /v1/sync`: authenticate (bearer header or `?token=`), then speak the
/// automerge-repo protocol as the server side.
pub async fn sync_endpoint(
    State(state): State<Arc<NodeState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let token = access_from_parts(&headers, query.as_deref());
    let access = match state.auth.check(token.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            state.metrics.error("auth");
            return ApiError::from(e).into_response();
        }
    };
    if let Err(e) = check_rate(&state, &access) {
        return e.into_response();
    }
    // per token: a node without tokens has no way to tell its clients apart
    let live = state.hub.connections_of(&access.tenant, &access.device);
    if !state.auth.is_open() && live >= state.quotas.max_connections_per_token {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!(
                "this token already has {live} sync connections (the limit is {})",
                state.quotas.max_connections_per_token
            ),
        )
        .into_response();
    }
    // the transport admits frames up to twice the limit so that the decoder,
    // not a silent close, answers an oversized frame with an `error` message
    let max = state.limits.max_frame_bytes.saturating_mul(2);
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            let session = Session::new(
                SessionConfig {
                    local_peer: PeerId::new(state.peer_id.clone()),
                    role: Role::Server,
                    access: access.clone(),
                    limits: state.limits,
                    feed_page: 1000,
                },
                state.store.clone(),
            )
            .with_receive_limits(state.quotas.receive);
            let ended = drive(
                state.clone(),
                session,
                AxumSocket(socket),
                access,
                DriveOptions {
                    direction: Direction::Inbound,
                    url: None,
                    stop_when_idle: false,
                },
            )
            .await;
            tracing::debug!(reason = %ended.reason, "sync connection ended");
        })
        .into_response()
}

/// The server side of a WebSocket.
pub struct AxumSocket(pub WebSocket);

impl Transport for AxumSocket {
    async fn recv(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            return match self.0.recv().await? {
                Ok(AxMessage::Binary(b)) => Some(Ok(b.to_vec())),
                Ok(AxMessage::Text(t)) => Some(Ok(t.as_bytes().to_vec())),
                Ok(AxMessage::Close(_)) => None,
                Ok(AxMessage::Ping(_) | AxMessage::Pong(_)) => continue,
                Err(e) => Some(Err(e.to_string())),
            };
        }
    }

    async fn send(&mut self, frame: Vec<u8>) -> Result<(), String> {
        self.0
            .send(AxMessage::Binary(frame.into()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn close(&mut self) {
        let _ = self.0.send(AxMessage::Close(None)).await;
    }
}

/// The client side of a WebSocket.
pub struct ClientSocket(
    pub tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

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
