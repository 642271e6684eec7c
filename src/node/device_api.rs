//! The device registry over HTTP: which devices of the tenant authenticated,
//! and removing (blocking) and re-enabling them.
//!
//! | route | |
//! |---|---|
//! | `GET /v1/devices` | the tenant's devices, and its blocked ones (`blocked`) |
//! | `DELETE /v1/devices/{id}` | forget a device, block its tokens (403 `device_blocked`, persisted), close its connections and event streams, and revoke its certificates |
//! | `POST /v1/devices/{id}/enable` | lift a device's block (404 `unknown_device` when it is not blocked) |

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::api_error::{ApiError, ApiResult, ErrorBody};
use super::devices::DeviceInfo;
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

/// The tenant's devices.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DeviceList {
    /// Devices that authenticated (and are not blocked).
    devices: Vec<DeviceInfo>,
    /// Blocked devices' ids.
    blocked: Vec<String>,
}

/// A device removed and blocked.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Removed {
    /// The device's id.
    removed: String,
    /// How many live connections and event streams were closed.
    disconnected: usize,
    /// Always `true`: its tokens are refused until re-enabled.
    blocked: bool,
}

/// A device whose block was lifted.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Enabled {
    /// The device's id.
    enabled: String,
}

/// The device in a route's path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only its description is used
struct DevicePath {
    /// The device's id (from its token).
    id: String,
}

/// The tenant's devices, and its blocked ones.
#[utoipa::path(get, path = "/v1/devices", tag = "devices",
    responses((status = 200, description = "the tenant's devices", body = DeviceList)))]
async fn list_devices(State(state): State<Shared>, Authed(access): Authed) -> Json<DeviceList> {
    let devices = state.devices.list_live(&access.tenant, &state.hub);
    let blocked = state.devices.blocked(&access.tenant);
    Json(DeviceList { devices, blocked })
}

/// Forget a device of the tenant, block its tokens (durably), close its
/// live connections and, on the tenant's authority, revoke its certificates
/// (what it signed no longer counts as verified). `POST
/// /v1/devices/{id}/enable` lifts the block.
#[utoipa::path(delete, path = "/v1/devices/{id}", tag = "devices", params(DevicePath),
    responses(
        (status = 200, description = "removed and blocked; its certificates revoked", body = Removed),
        (status = 404, description = "`unknown_device`: the tenant has no such device", body = ErrorBody)))]
async fn delete_device(
    State(state): State<Shared>,
    Writer(access): Writer,
    device: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Removed>> {
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
    Ok(Json(Removed {
        removed: device,
        disconnected,
        blocked: true,
    }))
}

/// Lift the block of a device of the tenant: its tokens work again.
#[utoipa::path(post, path = "/v1/devices/{id}/enable", tag = "devices", params(DevicePath),
    responses(
        (status = 200, description = "the block is lifted", body = Enabled),
        (status = 404, description = "`unknown_device`: the device is not blocked", body = ErrorBody)))]
async fn enable_device(
    State(state): State<Shared>,
    Writer(access): Writer,
    device: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Enabled>> {
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
    Ok(Json(Enabled { enabled: device }))
}
