//! Photo blobs over HTTP: content-addressed, deduplicated, size-limited and
//! inert.
//!
//! | route | |
//! |---|---|
//! | `PUT /v1/blobs/{sha256}` | store the body as the blob (201; 200 when already here). 415 `unsupported_media_type` unless the bytes are a JPEG, PNG, WebP or HEIC image (the bytes decide, not `Content-Type`), 400 `hash_mismatch` when the body hashes otherwise, 413 `blob_too_large` over `--max-blob-bytes` |
//! | `GET /v1/blobs/{sha256}` | the bytes with the media type they show; 404 when the node lacks the blob or the tenant may not read it |
//!
//! A blob is served from the node's own origin, where the dashboard keeps its
//! token, so it is served so that a browser never runs it: the media type its
//! bytes show (never the uploader's claim), `X-Content-Type-Options: nosniff`,
//! `Content-Security-Policy: default-src 'none'; sandbox`, and
//! `Content-Disposition: inline` only for the raster photo types
//! (`attachment` for anything else, such as a blob stored by an older node).
//! | `POST /v1/entities/{id}/photos` | append photo metadata `{id?, sha256, mime, size, caption, taken_at?}` to a permit (201 + view; 200 when already recorded) |

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::api_error::{ApiError, ApiResult, ErrorBody};
use super::api_schemas::{IdPath, Refused, TooLarge, UnknownEntity};
use super::extract::{body, parse_id, Authed, Writer};
use super::http_guards::{body_timeout_error, is_body_timeout};
use super::state::Shared;
use super::store_work::{author, blocking, changed, reader, visible_summary};
use crate::error::Error;
use crate::store::{image_type, not_an_image, parse_sha256, BlobPut, Sha256Hash};
use crate::view::View;
use crate::write::{Edit, NewPhoto};

/// The blob routes (merged into the REST router).
pub(super) fn blob_routes() -> Router<Shared> {
    Router::new()
        .route("/v1/blobs/{sha256}", put(put_blob).get(get_blob))
        // the body limit is the node's --max-blob-bytes, checked in put_blob
        .layer(DefaultBodyLimit::disable())
        .route("/v1/entities/{id}/photos", post(add_photo))
}

fn parse(raw: Result<Path<String>, PathRejection>) -> ApiResult<Sha256Hash> {
    let Path(raw) = raw?;
    Ok(parse_sha256(&raw.to_ascii_lowercase())?)
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "blob_too_large",
        format!("a blob may take at most {max} bytes (--max-blob-bytes)"),
    )
}

/// The blob's hash in a route's path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only its description is used
struct ShaPath {
    /// The SHA-256 of the blob's bytes, 64 hex digits.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    sha256: String,
}

/// A stored blob.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct BlobStored {
    /// The blob's SHA-256 (lower-case hex).
    sha256: String,
    /// Its size in bytes.
    size: usize,
    /// The media type its bytes show.
    mime: &'static str,
    /// Whether this request stored it (`false`: it was already here).
    created: bool,
}

/// Store the body as the blob of hash `sha256`.
#[utoipa::path(put, path = "/v1/blobs/{sha256}", tag = "blobs", params(ShaPath),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the image's bytes (JPEG, PNG, WebP or HEIC)"),
    responses(
        (status = 201, description = "stored", body = BlobStored),
        (status = 200, description = "already stored", body = BlobStored),
        (status = 400, description = "`hash_mismatch`: the body hashes otherwise; `invalid_input`: a malformed hash", body = ErrorBody),
        (status = 408, description = "`body_timeout`: the body did not arrive in time", body = ErrorBody),
        (status = 413, description = "`blob_too_large`: over `--max-blob-bytes`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the bytes are not a JPEG, PNG, WebP or HEIC image", body = ErrorBody)))]
async fn put_blob(
    State(state): State<Shared>,
    Writer(access): Writer,
    sha: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let sha = parse(sha)?;
    let max = state.quotas.receive.max_blob_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let bytes: Bytes = to_bytes(body, max).await.map_err(|e| {
        if is_body_timeout(&e) {
            body_timeout_error(state.quotas.net.body_read_timeout)
        } else {
            too_large(max)
        }
    })?;
    // the bytes decide what a blob is, whatever the client's Content-Type says
    let Some(mime) = image_type(&bytes) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            not_an_image(),
        ));
    };
    blocking(&state, move |s| {
        let wanted_by = reader(s, &access).wanted_by(&access.tenant, &sha)?;
        let put = s
            .store
            .put_blob(&sha, &bytes, &access.tenant, max)
            .map_err(|e| match e {
                Error::InvalidInput(d) => {
                    ApiError::new(StatusCode::BAD_REQUEST, "hash_mismatch", d)
                }
                Error::LimitExceeded(_) => too_large(max),
                other => other.into(),
            })?;
        if let Some(doc) = wanted_by {
            // connections waiting for this photo can have it now
            changed(s, &access, doc);
        }
        let status = match put {
            BlobPut::Created => StatusCode::CREATED,
            BlobPut::Existing => StatusCode::OK,
        };
        let body = BlobStored {
            sha256: hex::encode(sha),
            size: bytes.len(),
            mime,
            created: put == BlobPut::Created,
        };
        Ok((status, Json(body)).into_response())
    })
    .await
}

/// A blob's bytes, served inert.
#[utoipa::path(get, path = "/v1/blobs/{sha256}", tag = "blobs", params(ShaPath),
    responses(
        (status = 200, description = "the bytes, with the media type they show",
            content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "`not_found`: the node lacks the blob or the tenant may not read it", body = ErrorBody)))]
async fn get_blob(
    State(state): State<Shared>,
    Authed(access): Authed,
    sha: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let sha = parse(sha)?;
    blocking(&state, move |s| {
        let Some((bytes, _stored_type)) = s.store.blob_for(&sha, &access.tenant)? else {
            return Err(ApiError::not_found(format!(
                "no blob {} here (not uploaded or not synced yet)",
                hex::encode(sha)
            )));
        };
        Ok((inert_headers(&bytes, &sha), bytes).into_response())
    })
    .await
}

/// The headers of a served blob: the type its bytes show, and everything that
/// keeps a browser from running it.
fn inert_headers(bytes: &[u8], sha: &Sha256Hash) -> [(header::HeaderName, HeaderValue); 5] {
    let (mime, disposition) = match image_type(bytes) {
        Some(mime) => (mime, "inline"),
        // stored before blobs were checked, or by a bug: bytes to save, never to render
        None => ("application/octet-stream", "attachment"),
    };
    let name = format!("{disposition}; filename=\"{}\"", hex::encode(sha));
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        ),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("attachment")),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000, immutable"),
        ),
    ]
}

/// A photo's metadata.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PhotoBody {
    #[serde(default)]
    id: Option<Uuid>,
    sha256: String,
    #[serde(default)]
    mime: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    caption: String,
    #[serde(default)]
    taken_at: Option<i64>,
}

/// Append a photo's metadata to a permit (the bytes go to `PUT
/// /v1/blobs/{sha256}`, before or after).
#[utoipa::path(post, path = "/v1/entities/{id}/photos", tag = "blobs", params(IdPath),
    request_body = PhotoBody,
    responses(
        (status = 201, description = "recorded: the permit's view", body = View),
        (status = 200, description = "already recorded: the permit's view", body = View),
        UnknownEntity, Refused, TooLarge))]
async fn add_photo(
    State(state): State<Shared>,
    Writer(access): Writer,
    id: Result<Path<String>, PathRejection>,
    photo: Result<Json<PhotoBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<View>)> {
    let id = parse_id(id)?;
    let p = body(photo)?;
    blocking(&state, move |s| {
        visible_summary(s, id, &access)?;
        let edit = Edit::AddPhoto(NewPhoto {
            id: p.id,
            sha256: p.sha256,
            mime: p.mime,
            size: p.size,
            caption: p.caption,
            taken_at: p.taken_at,
        });
        let wrote = author(s, &access).edit(id, edit)?.is_some();
        if wrote {
            changed(s, &access, id);
        }
        let status = if wrote {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, Json(reader(s, &access).view(id)?)))
    })
    .await
}
