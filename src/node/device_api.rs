//! The device registry over HTTP: which devices of the tenant authenticated,
//! and removing (blocking) and re-enabling them.
//!
//! | route | |
//! |---|---|
//! | `GET /v1/devices` | the tenant's devices, and its blocked ones (`blocked`) |
//! | `DELETE /v1/devices/{id}` | forget a device, block its tokens (403 `device_blocked`, persisted) and close its connections and event streams |
//! | `POST /v1/devices/{id}/enable` | lift a device's block (404 `unknown_device` when it is not blocked) |

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;

use super::api_error::{ApiError, ApiResult};
use super::extract::{Authed, Writer, MAX_QUOTED};
use super::state::Shared;
use super::store_work::blocking;

/// The device routes (merged into the REST router).
pub(super) fn device_routes() -> Router<Shared> {
    Router::new()
        .route("/v1/devices", get(list_devices))
        .route("/v1/devices/{id}", delete(delete_device))
        .route("/v1/devices/{id}/enable", post(enable_device))
}

async fn list_devices(
    State(state): State<Shared>,
    Authed(access): Authed,
) -> Json<serde_json::Value> {
    let devices = state.devices.list_live(&access.tenant, &state.hub);
    let blocked = state.devices.blocked(&access.tenant);
    Json(json!({ "devices": devices, "blocked": blocked }))
}

/// Forget a device of the tenant, block its tokens (durably) and close its
/// live connections. `POST /v1/devices/{id}/enable` lifts the block.
async fn delete_device(
    State(state): State<Shared>,
    Writer(access): Writer,
    device: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Path(device) = device?;
    let tenant = access.tenant.clone();
    let dev = device.clone();
    let known = blocking(&state, move |s| {
        if !s.devices.contains(&tenant, &dev) {
            return Ok(false);
        }
        // blocked first (durably), so that it cannot authenticate, reappear
        // in the registry or reconnect while it is being removed
        s.devices.block(&tenant, &dev)?;
        s.devices.try_remove(&tenant, &dev)?;
        // and what it signed no longer counts (a stolen tablet's approvals)
        super::token_watch::revoke_certificates(s, &tenant, &dev);
        Ok(true)
    })
    .await?;
    if !known {
        let quoted: String = device.chars().take(MAX_QUOTED).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_device",
            format!("unknown device {quoted:?}"),
        ));
    }
    let disconnected = state.hub.revoke(&access.tenant, &device, "device removed");
    tracing::info!(tenant = %access.tenant, by = %access.device, %device, disconnected,
        "device removed and blocked");
    Ok(Json(
        json!({ "removed": device, "disconnected": disconnected, "blocked": true }),
    ))
}

/// Lift the block of a device of the tenant: its tokens work again.
async fn enable_device(
    State(state): State<Shared>,
    Writer(access): Writer,
    device: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Path(device) = device?;
    let (tenant, dev) = (access.tenant.clone(), device.clone());
    let was_blocked = blocking(&state, move |s| Ok(s.devices.unblock(&tenant, &dev)?)).await?;
    if !was_blocked {
        let quoted: String = device.chars().take(MAX_QUOTED).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_device",
            format!("device {quoted:?} is not blocked"),
        ));
    }
    tracing::info!(tenant = %access.tenant, by = %access.device, %device, "device re-enabled");
    Ok(Json(json!({ "enabled": device })))
}
