//! Every route of a node, merged in this one place; the handlers live in one
//! file per concept and import only downward (extractors, store work, state).
//!
//! | routes | file |
//! |---|---|
//! | `GET /healthz`, `GET /metrics`, `GET /v1/status` | `status_api.rs` |
//! | `GET /readyz` (a store read and a flush) | `readiness.rs` |
//! | `/v1/entities...` (list, read, create, patch, gas readings), `GET /v1/conflicts` | `entity_api.rs` |
//! | `GET /v1/entities?q=...` (the listing: search, filters, pages), `GET /v1/alarms` | `entity_listing.rs` |
//! | `POST /v1/entities/{id}/resolve`, `GET /v1/entities/{id}/history` | `operator_api.rs` |
//! | `/v1/blobs/{sha256}`, `POST /v1/entities/{id}/photos` | `blob_api.rs` |
//! | `GET /v1/devices`, `DELETE /v1/devices/{id}`, `POST /v1/devices/{id}/enable` | `device_api.rs` |
//! | `POST /api/v1/ptw/sync-offline-data`, `GET /api/v1/sync/changes` (the classic API) | `classic_api.rs` |
//! | `GET /v1/events` (Server-Sent Events) | `events.rs` |
//! | `GET /v1/sync` (the WebSocket) | `ws.rs` |
//! | `/`, `/dashboard/...` | `dashboard/` |
//!
//! | `POST /v1/admin/backup` (the admin token) | `admin_api.rs` |
//! | `GET /v1/openapi.json` (the API's OpenAPI document, generated from the handlers) | `api_doc.rs` |
//!
//! What each route takes and answers is in that generated document (its
//! handlers' `#[utoipa::path]`), and `docs/api.md` says how to read and test
//! it. In short: every `/v1` route needs a bearer token unless the node is
//! open (no tokens file); each sees only the tenant's entities; writes need a
//! read-write token, are durable when answered, and are announced to live
//! sync connections.
//!
//! The REST router has JSON fallbacks for unknown routes (404 `not_found`) and
//! methods (405 `method_not_allowed`); merge routers without fallbacks into it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use super::admin_api::admin_routes;
use super::api_doc::api_doc_routes;
use super::api_error::ApiError;
use super::blob_api::blob_routes;
use super::classic_api::classic_routes;
use super::dashboard::dashboard_router;
use super::device_api::device_routes;
use super::entity_api::entity_routes;
use super::entity_listing::listing_routes;
use super::events::events_router;
use super::http_guards::{guard, Guards};
use super::operator_api::operator_routes;
use super::permit_index::PermitIndex;
use super::readiness::readiness_router;
use super::state::{NodeState, Shared};
use super::status_api::status_routes;
use super::ws::sync_endpoint;

/// The node's HTTP application: the REST API, the sync WebSocket, live
/// events (`/v1/events`), `/readyz` and the dashboard (`/`), behind the
/// request guards (concurrent requests, body read timeout).
pub fn app(state: Arc<NodeState>) -> Router {
    let guards = Guards::new(&state.quotas.net);
    Router::new()
        .route("/v1/sync", get(sync_endpoint))
        .with_state(state.clone())
        .merge(events_router(state.clone()))
        .merge(dashboard_router())
        .merge(readiness_router(state.clone()))
        .merge(rest_router(state))
        .layer(middleware::from_fn_with_state(guards, guard))
}

/// The REST API of a node over `state`: JSON over HTTP, every request counted.
pub fn rest_router(state: Arc<NodeState>) -> Router {
    Router::new()
        .merge(status_routes())
        .merge(api_doc_routes())
        .merge(admin_routes())
        .merge(entity_routes())
        .merge(listing_routes())
        .merge(classic_routes())
        .merge(operator_routes())
        .merge(blob_routes())
        .merge(device_routes())
        // what the listing read of documents, for as long as this router lives
        .layer(Extension(PermitIndex::default()))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(State(state): State<Shared>, req: Request, next: Next) -> Response {
    state.metrics.http_request();
    let response = next.run(req).await;
    if response.status().is_server_error() {
        state.metrics.error("http");
    }
    response
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
