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

use super::api_error::{ApiError, ApiResult, ErrorBody};
use super::api_schemas::Refused;
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

/// Apply a device's queued JSON changes.
#[utoipa::path(post, path = "/api/v1/ptw/sync-offline-data", tag = "classic",
    request_body = SyncRequest,
    responses(
        (status = 200, description = "what became of each change", body = SyncResponse),
        (status = 403, description = "`device_mismatch`: `device_id` is not the token's device; `read_only`; `device_blocked`", body = ErrorBody),
        (status = 413, description = "`too_many_changes`: more than 1000 changes in the batch", body = ErrorBody),
        Refused))]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PullQuery {
    /// The `next_cursor` of the previous page (default 0).
    #[serde(default)]
    since: Option<u64>,
    /// Page size (default 100, clamped to 1..=1000).
    #[serde(default)]
    limit: Option<usize>,
    /// Comma-separated entity types (`permit,closeout`); empty is all.
    #[serde(default)]
    #[param(
        pattern = "^ *(permit|isolation_point|closeout)? *(, *(permit|isolation_point|closeout)? *)*$"
    )]
    types: Option<String>,
}

/// Entity views changed since a cursor.
#[utoipa::path(get, path = "/api/v1/sync/changes", tag = "classic", params(PullQuery),
    responses((status = 200, description = "a page of changes", body = PullPage)))]
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
