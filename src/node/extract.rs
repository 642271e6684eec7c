//! Reading a request: who sent it (the [`Authed`] and [`Writer`] extractors,
//! which pass every request through the [gate](super::gate)), and its path
//! parameters and JSON body, with the API's errors for malformed ones.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::Json;

use super::api_error::{ApiError, ApiResult};
use super::gate::{authenticate, PeerIp};
use super::state::Shared;
use crate::model::{Access, EntityId, EntityType};

/// An authenticated request: its token's access.
pub(super) struct Authed(pub(super) Access);

impl FromRequestParts<Shared> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ApiResult<Self> {
        let PeerIp(peer) = match PeerIp::from_request_parts(parts, state).await {
            Ok(p) => p,
            Err(never) => match never {},
        };
        let access = authenticate(state, &parts.headers, parts.uri.query(), peer)?;
        if !state.auth.is_open() {
            // in memory, and at most a small unflushed write per device per minute
            state.devices.seen(&access, state.clock.now_ms());
        }
        Ok(Authed(access))
    }
}

/// An authenticated request whose token may write.
pub(super) struct Writer(pub(super) Access);

impl FromRequestParts<Shared> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ApiResult<Self> {
        let Authed(access) = Authed::from_request_parts(parts, state).await?;
        if access.read_only {
            return Err(ApiError::read_only());
        }
        Ok(Writer(access))
    }
}

/// At most this much of a user-supplied string is quoted back in an error.
pub(super) const MAX_QUOTED: usize = 64;

/// The entity id of the path, or 400 `invalid_input`.
pub(super) fn parse_id(raw: Result<Path<String>, PathRejection>) -> ApiResult<EntityId> {
    let Path(raw) = raw?;
    raw.parse().map_err(|_| {
        let quoted: String = raw.chars().take(MAX_QUOTED).collect();
        ApiError::invalid_input(format!("malformed entity id {quoted:?} (expected a UUID)"))
    })
}

/// An optional `type=` filter (empty means none), or 400 `invalid_input`.
pub(super) fn parse_type(raw: Option<&str>) -> ApiResult<Option<EntityType>> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<EntityType>()
            .map(Some)
            .map_err(|e| ApiError::invalid_input(e.to_string())),
    }
}

/// The JSON body, or 400 `bad_json` (415 without a JSON content type).
pub(super) fn body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    body.map(|Json(b)| b).map_err(ApiError::from)
}
