//! The one way into a node: every REST request, event stream and sync upgrade
//! is authenticated here, in this order:
//!
//! 1. the token (header or `?token=`) against the current tokens (reloaded on
//!    `SIGHUP` and when the file changes); a failure counts against the source
//!    address ([`AuthThrottle`](super::auth_throttle::AuthThrottle)): `401`,
//!    or `429 auth_throttled` with `Retry-After` once the address is over its
//!    budget;
//! 2. the device's block (`DELETE /v1/devices/{id}`): `403 device_blocked`;
//! 3. the token's request rate: `429 rate_limited`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};

use super::api_error::{ApiError, ApiResult};
use super::auth::access_from_parts;
use super::state::NodeState;
use crate::model::Access;

/// The source address of a request (absent when the app is called without
/// the node's listener, as in-process tests do).
pub(super) struct PeerIp(pub(super) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Authenticate a request or upgrade: its access, or the error to answer.
pub(super) fn authenticate(
    state: &NodeState,
    headers: &HeaderMap,
    query: Option<&str>,
    peer: Option<IpAddr>,
) -> Result<Access, ApiError> {
    let token = access_from_parts(headers, query);
    let access = match state.auth.check(token.as_deref()) {
        Ok(access) => access,
        Err(e) => {
            state.metrics.error("auth");
            if let Some(ip) = peer {
                let budget = state.quotas.net.auth_failures_per_minute;
                if let Err(wait) = state.rate.auth_failures.failed(ip, budget) {
                    tracing::debug!(%ip, "failed authentications throttled");
                    return Err(throttled(wait.as_secs().saturating_add(1)));
                }
            }
            return Err(e.into());
        }
    };
    if !state.auth.is_open() && state.devices.is_blocked(&access.tenant, &access.device) {
        return Err(blocked());
    }
    check_rate(state, &access)?;
    Ok(access)
}

/// Requests per token per second: over the limit, 429 `rate_limited`.
fn check_rate(state: &NodeState, access: &Access) -> ApiResult<()> {
    let key = format!("{}/{}", access.tenant, access.device);
    if state
        .rate
        .allow(&key, state.quotas.requests_per_second, state.clock.now_ms())
    {
        return Ok(());
    }
    state.metrics.error("other");
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "more than {} requests per second for this token; slow down",
            state.quotas.requests_per_second
        ),
    )
    .retry_after(1))
}

fn throttled(secs: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "auth_throttled",
        "too many failed authentications from this address; wait before trying again",
    )
    .retry_after(secs)
}

/// `403 device_blocked`.
pub(super) fn blocked() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "device_blocked",
        "this device was removed by an operator: its tokens are refused until it is \
         re-enabled (POST /v1/devices/{id}/enable)",
    )
}
