//! The operator's routes, for the team running the node rather than a
//! tenant: each needs the admin token (`serve --admin-token-file FILE`), which
//! no tenant's token is. Without that option they answer `403
//! admin_disabled`.
//!
//! | route | |
//! |---|---|
//! | `POST /v1/admin/backup` | a consistent backup of the whole store (every tenant, device, sync state and record), streamed as a file (`permitsync backup --node URL`; `docs/operations.md`, "Backups") |
//!
//! A wrong admin token counts as a failed authentication of its address
//! (`429 auth_throttled` past the budget), like a wrong tenant token.

use std::io::{Seek, SeekFrom};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::stream;
use tokio::io::AsyncReadExt;

use super::api_error::{ApiError, ApiResult, ErrorBody};
use super::auth::access_from_parts;
use super::gate::PeerIp;
use super::state::Shared;
use crate::error::{Error, Result};

/// How much of the backup file one body chunk carries.
const CHUNK: usize = 256 * 1024;

/// The admin routes (merged into the REST router).
pub(super) fn admin_routes() -> Router<Shared> {
    Router::new().route("/v1/admin/backup", post(backup))
}

/// The request carries the admin token, or the error to answer.
fn check_admin(state: &Shared, headers: &HeaderMap, peer: PeerIp) -> ApiResult<()> {
    let Some(admin) = &state.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "this node has no admin token (serve --admin-token-file FILE)",
        ));
    };
    let given = access_from_parts(headers, None);
    if given.as_deref().is_some_and(|t| admin.matches(t)) {
        return Ok(());
    }
    state.metrics.error("auth");
    if let PeerIp(Some(ip)) = peer {
        let budget = state.quotas.net.auth_failures_per_minute;
        if let Err(wait) = state.rate.auth_failures.failed(ip, budget) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "auth_throttled",
                "too many failed authentications from this address; wait before trying again",
            )
            .retry_after(wait.as_secs().saturating_add(1)));
        }
    }
    Err(match given {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin token is required (Authorization: Bearer <admin token>)",
        ),
        Some(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "not_admin",
            "this token is not the node's admin token",
        ),
    })
}

/// A consistent backup of the whole store: writes wait while it is read
/// into a temporary file, then it is streamed from there.
#[utoipa::path(post, path = "/v1/admin/backup", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the backup file (`permitsync restore --from FILE`); \
            `X-Permitsync-Backup-Pairs` says how many key-value pairs it holds",
            content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "`unauthorized`: no token", body = ErrorBody),
        (status = 403, description = "`not_admin`: a token that is not the admin token (a tenant's); \
            `admin_disabled`: the node has no admin token", body = ErrorBody),
        (status = 429, description = "`auth_throttled`: too many failed authentications from the address", body = ErrorBody)))]
async fn backup(
    State(state): State<Shared>,
    headers: HeaderMap,
    peer: PeerIp,
) -> ApiResult<Response> {
    check_admin(&state, &headers, peer)?;
    let store = state.store.clone();
    let (file, info, len) = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut file = tempfile_unlinked()?;
        let info = {
            let mut w = std::io::BufWriter::new(&mut file);
            let info = store.snapshot(&mut w)?;
            std::io::Write::flush(&mut w)?;
            info
        };
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(0))?;
        Ok((file, info, len))
    })
    .await
    .map_err(ApiError::internal)??;
    tracing::info!(pairs = info.pairs, bytes = len, "backup taken");
    let file = tokio::fs::File::from_std(file);
    let body = stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let name = format!(
        "attachment; filename=\"{}-{}.backup\"",
        state.peer_id,
        state.clock.now_ms()
    );
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-permitsync-backup-pairs", HeaderValue::from(info.pairs));
    Ok(response)
}

/// A new file in the system's temporary directory, already unlinked (it
/// lives as long as its handle, whatever happens to the request).
fn tempfile_unlinked() -> Result<std::fs::File> {
    let path = std::env::temp_dir().join(format!("permitsync-backup-{}", uuid::Uuid::new_v4()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::storage(format!("cannot create {}: {e}", path.display())))?;
    let _ = std::fs::remove_file(&path);
    Ok(file)
}
