//! Live events for browsers: `GET /v1/events`, a Server-Sent Events stream
//! that tells a tenant's clients (the dashboard) that something they show has
//! changed, so they refresh it instead of polling.
//!
//! The [`Hub`](super::Hub) publishes a [`NodeEvent`] on the node's
//! [`EventBus`](super::EventBus) (a tokio broadcast channel, `event_bus.rs`) whenever a document changes (a REST
//! write, or changes a peer sent over sync, inbound or dialed) and whenever a
//! sync connection opens or closes. Each stream filters those by its caller's
//! tenant and sends:
//!
//! | event | data |
//! |---|---|
//! | `ready` | `{"tenant", "device"}`, once, first: the stream is live (refetch what may have been missed) |
//! | `change` | the entity's summary (as in `GET /v1/entities`): `id`, `type`, `status`, `title`, `permit_id`, `deleted`, `conflicts`, `rejected`, `feed_seq`, ... |
//! | `device` | `{"device", "connected"}`: a sync connection of one of the tenant's devices opened or closed |
//! | `resync` | `{"missed": n}`: the stream fell behind and dropped events; refetch everything |
//!
//! Auth is that of the other `/v1` routes; browsers pass `?token=` because
//! `EventSource` cannot set headers. A token may hold at most
//! [`Quotas::max_connections_per_token`](super::Quotas) streams (429
//! `too_many_streams` beyond). Streams end when the node shuts down, so they
//! never hold up a graceful shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast;

use super::api_error::{ApiError, ErrorBody};
use super::event_bus::NodeEvent;
use super::extract::Authed;
use super::state::NodeState;
use crate::model::{Access, EntityId};
use crate::store::Summary;

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a browser waits before it reconnects a dropped stream.
const RETRY: Duration = Duration::from_secs(2);

/// One open stream, counted against its token until dropped.
struct StreamSlot {
    state: Arc<NodeState>,
    key: (String, String),
}

impl StreamSlot {
    /// Take a slot for `access`, unless it already holds `max` streams.
    fn take(state: &Arc<NodeState>, access: &Access, max: usize) -> Option<StreamSlot> {
        let key = (access.tenant.clone(), access.device.clone());
        let mut counts = state.hub.events().counts();
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            state: state.clone(),
            key,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self.state.hub.events().counts();
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// The route `GET /v1/events` over `state`.
pub fn events_router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/v1/events", get(events))
        .with_state(state)
}

/// Live events of the tenant (Server-Sent Events: `change`, `peer`, ...;
/// see `docs/operations.md`). Browsers pass `?token=`.
#[utoipa::path(get, path = "/v1/events", tag = "node",
    responses(
        (status = 200, description = "an endless `text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 429, description = "`too_many_streams`: the token holds its most event streams; `rate_limited`; `auth_throttled`", body = ErrorBody),
        (status = 503, description = "`shutting_down`; `busy`", body = ErrorBody)))]
async fn events(
    State(state): State<Arc<NodeState>>,
    Authed(access): Authed,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let max = state.quotas.max_connections_per_token;
    let slot = StreamSlot::take(&state, &access, max).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("this token already has {max} open event streams; close one"),
        )
    })?;
    let rx = state.hub.events().subscribe().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the node is shutting down",
        )
    })?;
    tracing::debug!(tenant = %access.tenant, device = %access.device, "event stream opened");
    let feed = Feed {
        state,
        access,
        rx,
        started: false,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One client's stream: the bus, filtered by the client's tenant.
struct Feed {
    state: Arc<NodeState>,
    access: Access,
    rx: broadcast::Receiver<NodeEvent>,
    started: bool,
    _slot: StreamSlot,
}

impl Feed {
    /// The next event for this client; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        if !self.started {
            self.started = true;
            let data = json!({"tenant": self.access.tenant, "device": self.access.device});
            return Some(
                Event::default()
                    .event("ready")
                    .retry(RETRY)
                    .data(data.to_string()),
            );
        }
        loop {
            match self.rx.recv().await {
                Ok(NodeEvent::DocChanged { tenant, id })
                    if tenant.as_ref().is_none_or(|t| *t == self.access.tenant) =>
                {
                    if let Some(summary) = self.visible_summary(id).await {
                        return Some(json_event("change", &summary));
                    }
                }
                Ok(NodeEvent::DocChanged { .. }) => {}
                Ok(NodeEvent::Peer {
                    tenant,
                    device,
                    connected,
                }) if tenant == self.access.tenant => {
                    let data = json!({"device": device, "connected": connected});
                    return Some(json_event("device", &data));
                }
                Ok(NodeEvent::Peer { .. }) => {}
                Ok(NodeEvent::Revoked { tenant, device })
                    if tenant == self.access.tenant && device == self.access.device =>
                {
                    tracing::debug!(%tenant, %device, "event stream of a revoked device ended");
                    return None;
                }
                Ok(NodeEvent::Revoked { .. }) => {}
                Ok(NodeEvent::Shutdown) | Err(broadcast::error::RecvError::Closed) => return None,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(tenant = %self.access.tenant, missed,
                        "event stream lagged; telling the client to resync");
                    return Some(json_event("resync", &json!({ "missed": missed })));
                }
            }
        }
    }

    /// The summary of `id` if this client's tenant may see it.
    async fn visible_summary(&self, id: EntityId) -> Option<Summary> {
        let state = self.state.clone();
        let access = self.access.clone();
        let found = tokio::task::spawn_blocking(move || -> crate::error::Result<_> {
            let store = state.store_for(&access);
            if !store.visible_to(id, &access.tenant)? {
                return Ok(None);
            }
            store.summary(id)
        })
        .await;
        match found {
            Ok(Ok(summary)) => summary,
            Ok(Err(e)) => {
                tracing::warn!(%id, error = %e, "event stream: cannot read a summary");
                None
            }
            Err(e) => {
                tracing::warn!(%id, error = %e, "event stream: summary task failed");
                None
            }
        }
    }
}

/// An SSE event named `name` whose data is `value` as JSON.
fn json_event(name: &str, value: &impl serde::Serialize) -> Event {
    let data = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    Event::default().event(name).data(data)
}
