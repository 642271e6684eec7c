//! The classic sync API over HTTP, for offline clients that are not CRDT
//! clients (semantics in [`crate::classic`] and `docs/classic-api.md`).
//!
//! | route | |
//! |---|---|
//! | `POST /api/v1/ptw/sync-offline-data/` | apply a device's queued JSON changes: `{applied, conflicts, rejected, summary}` |
//! | `GET /api/v1/sync/changes?since=&limit=&types=` | entity views changed since a cursor: `{changes, next_cursor, has_more}` |
//!
//! Both need a token like every `/v1` route. With tokens configured, the
//! payload's `device_id` must be the token's device (403 `device_mismatch`).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::api_error::{ApiError, ApiResult};
use super::extract::{body, parse_type, Authed, Writer};
use super::state::Shared;
use super::store_work::{blocking, changed};
use crate::classic::{self, PullPage, SyncRequest, SyncResponse};

/// Largest page of the classic pull.
const MAX_PULL: usize = 1000;
/// Default page of the classic pull.
const DEFAULT_PULL: usize = 100;
/// Most changes one classic batch may carry.
pub const MAX_BATCH: usize = 1000;

/// The classic routes (merged into the REST router).
pub(super) fn classic_routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/ptw/sync-offline-data/", post(sync_offline_data))
        .route("/api/v1/ptw/sync-offline-data", post(sync_offline_data))
        .route("/api/v1/sync/changes", get(pull))
}

async fn sync_offline_data(
    State(state): State<Shared>,
    Writer(access): Writer,
    req: Result<Json<SyncRequest>, JsonRejection>,
) -> ApiResult<Json<SyncResponse>> {
    let req = body(req)?;
    if req.device_id.trim().is_empty() {
        return Err(ApiError::invalid_input("device_id must not be empty"));
    }
    if req.changes.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_changes",
            format!(
                "a batch may carry at most {MAX_BATCH} changes, got {}; send the rest in another",
                req.changes.len()
            ),
        ));
    }
    if !state.auth.is_open() && req.device_id != access.device {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "device_mismatch",
            format!(
                "this token belongs to device {:?}, not {:?}",
                access.device, req.device_id
            ),
        ));
    }
    blocking(&state, move |s| {
        let store = s.store_for(&access).acting_as(&req.device_id);
        let response = classic::sync_offline_data(&store, &access.tenant, &req)?;
        for a in response.applied.iter().filter(|a| a.status == "applied") {
            if let Ok(id) = a.server_id.parse() {
                changed(s, &access, id);
            }
        }
        tracing::info!(
            device = %req.device_id,
            applied = response.summary.applied,
            already = response.summary.already_applied,
            conflicts = response.summary.conflicts,
            rejected = response.summary.rejected,
            "classic batch"
        );
        Ok(Json(response))
    })
    .await
}

#[derive(Deserialize)]
struct PullQuery {
    #[serde(default)]
    since: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    types: Option<String>,
}

async fn pull(
    State(state): State<Shared>,
    Authed(access): Authed,
    q: Result<Query<PullQuery>, QueryRejection>,
) -> ApiResult<Json<PullPage>> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(DEFAULT_PULL).clamp(1, MAX_PULL);
    let mut types = Vec::new();
    for t in q.types.as_deref().unwrap_or("").split(',') {
        if let Some(t) = parse_type(Some(t.trim()))? {
            types.push(t);
        }
    }
    blocking(&state, move |s| {
        let page = classic::changes_since(
            &s.store_for(&access),
            &access.tenant,
            q.since.unwrap_or(0),
            limit,
            &types,
        )?;
        Ok(Json(page))
    })
    .await
}
