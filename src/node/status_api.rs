//! The node's health, metrics and status.
//!
//! | route | |
//! |---|---|
//! | `GET /healthz` | `{"status": "ok"}`, no auth (the process answers; `/readyz` also checks the store, `readiness.rs`) |
//! | `GET /metrics` | Prometheus text, no auth (operators scrape it; it holds counts only, no tenant data) |
//! | `GET /v1/status` | node id, document count, feed head, live connections, the caller's rights (`access`: tenant, device, read-only, roles, person, the permit moves the roles allow), and on a relay over a shared database the relays seen, feed lag and database latency (`cluster`) |

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::api_error::ApiResult;
use super::cluster_view::ClusterView;
use super::extract::Authed;
use super::hub::PeerStatus;
use super::state::Shared;
use super::store_work::blocking;
use crate::identity::{permitted_moves_by, RoleTable};
use crate::model::Access;

/// The status routes (merged into the REST router).
pub(super) fn status_routes() -> Router<Shared> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
}

/// `{"status": "ok"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// The process answers (it does not check the store: `/readyz` does).
#[utoipa::path(get, path = "/healthz", tag = "node", security(()),
    responses((status = 200, description = "the process answers", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Prometheus metrics (counts only, no tenant data; no token needed).
#[utoipa::path(get, path = "/metrics", tag = "node", security(()),
    responses((status = 200, description = "Prometheus text exposition format",
        content_type = "text/plain", body = String)))]
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

/// The node as the caller's tenant sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Status {
    peer_id: String,
    documents: usize,
    feed_head: u64,
    peers: Vec<PeerStatus>,
    access: CallerAccess,
    /// The relays over the same database (a relay over PostgreSQL only).
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterView>,
}

/// What the caller's token may do: the dashboard shows no write buttons to
/// a read-only token, and of a permit's workflow only the moves its roles
/// allow.
#[derive(Serialize, utoipa::ToSchema)]
struct CallerAccess {
    tenant: String,
    device: String,
    read_only: bool,
    /// The token's roles (those its tokens-file entry names; every role of
    /// a device when it names none, and on a node without tokens).
    roles: Vec<String>,
    /// The person the tokens file names for the token, if any.
    person: Option<String>,
    /// For each permit status, the statuses the workflow lets a permit move
    /// to that the token's roles allow (none for a read-only token). The
    /// node refuses the others (422 `rejected`, reason `not_authorized`).
    transitions: BTreeMap<String, Vec<String>>,
}

impl CallerAccess {
    /// `table`: the tenant's role table, when its authority signed one.
    fn of(access: Access, table: Option<&RoleTable>) -> CallerAccess {
        let roles = access.effective_roles();
        let transitions = permitted_moves_by(&roles, table)
            .into_iter()
            .map(|(from, to)| {
                let to = if access.read_only {
                    Vec::new()
                } else {
                    to.iter().map(|t| t.as_str().to_string()).collect()
                };
                (from.as_str().to_string(), to)
            })
            .collect();
        CallerAccess {
            roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
            person: access.person,
            transitions,
            tenant: access.tenant,
            device: access.device,
            read_only: access.read_only,
        }
    }
}

/// The node's status as the tenant sees it: its documents, the feed position
/// of its latest change and its live connections (everything on an open node).
#[utoipa::path(get, path = "/v1/status", tag = "node",
    responses((status = 200, description = "the node's status", body = Status)))]
async fn status(State(state): State<Shared>, Authed(access): Authed) -> ApiResult<Json<Status>> {
    let open = state.auth.is_open();
    let tenant = access.tenant.clone();
    let (documents, feed_head, table) = blocking(&state, move |s| {
        // the tenant's own role table decides which moves to offer
        let table = s
            .store
            .tenant_authority(&tenant)?
            .and_then(|a| a.role_table().map(|t| t.table.clone()));
        if open {
            Ok((
                s.store.feed_since(0, usize::MAX)?.len(),
                s.store.feed_head(),
                table,
            ))
        } else {
            let feed = s.store.tenant_feed_since(&tenant, 0, usize::MAX)?;
            Ok((feed.len(), feed.last().map_or(0, |(seq, _)| *seq), table))
        }
    })
    .await?;
    let peers = state.hub.status((!open).then_some(access.tenant.as_str()));
    Ok(Json(Status {
        peer_id: state.peer_id.clone(),
        documents,
        feed_head,
        peers,
        access: CallerAccess::of(access, table.as_ref()),
        cluster: state.cluster.view(),
    }))
}
