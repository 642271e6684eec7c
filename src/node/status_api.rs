//! The node's health, metrics and status.
//!
//! | route | |
//! |---|---|
//! | `GET /healthz` | `{"status": "ok"}`, no auth (the process answers; `/readyz` also checks the store, `readiness.rs`) |
//! | `GET /metrics` | Prometheus text, no auth (operators scrape it; it holds counts only, no tenant data) |
//! | `GET /v1/status` | node id, document count, feed head, live connections, the caller's rights (`access`: tenant, device, read-only), and on a relay over a shared database the relays seen, feed lag and database latency (`cluster`) |

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::api_error::ApiResult;
use super::cluster_view::ClusterView;
use super::extract::Authed;
use super::hub::PeerStatus;
use super::state::Shared;
use super::store_work::blocking;

/// The status routes (merged into the REST router).
pub(super) fn status_routes() -> Router<Shared> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn metrics(State(state): State<Shared>) -> ApiResult<Response> {
    // one feed entry per document: cheaper than reading every summary
    let documents = blocking(&state, |s| Ok(s.store.feed_since(0, usize::MAX)?.len())).await?;
    let mut text = state.metrics.render(state.hub.len(), documents);
    text.push_str(&state.cluster.metrics_text());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[derive(Serialize)]
struct Status {
    peer_id: String,
    documents: usize,
    feed_head: u64,
    peers: Vec<PeerStatus>,
    access: CallerAccess,
    /// The relays over the same database (a relay over PostgreSQL only).
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterView>,
}

/// What the caller's token may do (the dashboard shows no write buttons to a
/// read-only token).
#[derive(Serialize)]
struct CallerAccess {
    tenant: String,
    device: String,
    read_only: bool,
}

/// The node's status as the tenant sees it: its documents, the feed position
/// of its latest change and its live connections (everything on an open node).
async fn status(State(state): State<Shared>, Authed(access): Authed) -> ApiResult<Json<Status>> {
    let open = state.auth.is_open();
    let tenant = access.tenant.clone();
    let (documents, feed_head) = blocking(&state, move |s| {
        if open {
            Ok((
                s.store.feed_since(0, usize::MAX)?.len(),
                s.store.feed_head(),
            ))
        } else {
            let feed = s.store.tenant_feed_since(&tenant, 0, usize::MAX)?;
            Ok((feed.len(), feed.last().map_or(0, |(seq, _)| *seq)))
        }
    })
    .await?;
    let peers = state.hub.status((!open).then_some(access.tenant.as_str()));
    Ok(Json(Status {
        peer_id: state.peer_id.clone(),
        documents,
        feed_head,
        peers,
        access: CallerAccess {
            tenant: access.tenant,
            device: access.device,
            read_only: access.read_only,
        },
        cluster: state.cluster.view(),
    }))
}
