//! The operator's routes: settling conflicts and reading an entity's audit
//! trail.
//!
//! | route | |
//! |---|---|
//! | `POST /v1/entities/{id}/resolve` | `{field, resolution: keep_mine \| use_server \| merge, value?}`: writes the chosen value (200 + view); 409 `no_conflict` when the field has none |
//! | `GET /v1/entities/{id}/history` | every change: who verifiably made it (`author`) and which device its note claims (`claimed_device`), when, through what, what it wrote, and the view's verdict |

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::api_error::{ApiResult, ErrorBody};
use super::api_schemas::{IdPath, Refused, TooLarge, UnknownEntity};
use super::extract::{body, parse_id, Authed, Writer};
use super::state::Shared;
use super::store_work::{author, blocking, changed, reader, visible_summary};
use crate::resolve::{resolve, Resolution};
use crate::view::{audit_trail, Author, OpRecord, View};
use crate::write::{ChangeNote, ResolutionNote};

/// The operator's routes (merged into the REST router).
pub(super) fn operator_routes() -> Router<Shared> {
    Router::new()
        .route("/v1/entities/{id}/resolve", post(resolve_conflict))
        .route("/v1/entities/{id}/history", get(history))
}

/// How to settle a field's conflict.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    /// The field in conflict.
    field: String,
    /// `keep_mine`, `use_server` or `merge`.
    #[schema(pattern = "^(keep_mine|use_server|merge)$")]
    resolution: String,
    /// The value to write, for `merge` (and `keep_mine`).
    #[serde(default)]
    value: Option<String>,
}

/// Settle a conflict: write the chosen value as one change.
#[utoipa::path(post, path = "/v1/entities/{id}/resolve", tag = "operator", params(IdPath),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "the entity's view", body = View),
        (status = 409, description = "`no_conflict`: the field has no conflict", body = ErrorBody),
        UnknownEntity, Refused, TooLarge))]
async fn resolve_conflict(
    State(state): State<Shared>,
    Writer(access): Writer,
    id: Result<Path<String>, PathRejection>,
    req: Result<Json<ResolveBody>, JsonRejection>,
) -> ApiResult<Json<View>> {
    let id = parse_id(id)?;
    let req = body(req)?;
    let resolution: Resolution = req.resolution.parse()?;
    blocking(&state, move |s| {
        visible_summary(s, id, &access)?;
        let store = author(s, &access);
        let view = resolve(&store, id, &req.field, resolution, req.value.as_deref())?;
        tracing::info!(%id, field = %req.field, resolution = resolution.as_str(), device = %store.author_device(), "conflict resolved");
        changed(s, &access, id);
        Ok(Json(view))
    })
    .await
}

/// One change of the audit trail.
#[derive(Serialize, utoipa::ToSchema)]
struct HistoryEntry {
    change: String,
    actor: String,
    seq: u64,
    /// Unix seconds, by the author's clock.
    time: i64,
    /// The device the change's note names (`null` for other clients'
    /// changes): kept for older readers, the same as `claimed_device`, and
    /// never evidence of who made the change (that is `author`).
    device: Option<String>,
    /// Who verifiably made the change: `{device, person, verification:
    /// signed | relay_attested | unverified, refused?}`.
    author: Author,
    /// The device the change's note claims, shown only as a claim.
    claimed_device: Option<String>,
    /// `classic`, `resolve`, or `null` for ordinary writes.
    via: Option<String>,
    offline_id: Option<String>,
    resolution: Option<ResolutionNote>,
    /// A message that is not a permitsync note (another client's).
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    ops: Vec<OpRecord>,
}

/// An entity's audit trail.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct HistoryBody {
    id: String,
    entries: Vec<HistoryEntry>,
}

/// Every change of an entity: who, when, through what, what it wrote.
#[utoipa::path(get, path = "/v1/entities/{id}/history", tag = "operator", params(IdPath),
    responses((status = 200, description = "the audit trail", body = HistoryBody), UnknownEntity))]
async fn history(
    State(state): State<Shared>,
    Authed(access): Authed,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<HistoryBody>> {
    let id = parse_id(id)?;
    blocking(&state, move |s| {
        visible_summary(s, id, &access)?;
        let records = reader(s, &access).with_doc(id, |d| audit_trail(d.doc(), d.history()))?;
        let entries = records
            .into_iter()
            .map(|r| {
                let note = r.message.as_deref().and_then(ChangeNote::parse);
                let message = if note.is_some() { None } else { r.message };
                let note = note.unwrap_or_default();
                let claimed = Some(note.device).filter(|d| !d.is_empty());
                HistoryEntry {
                    change: r.change,
                    actor: r.actor,
                    seq: r.seq,
                    time: r.time,
                    device: claimed.clone(),
                    author: r.author,
                    claimed_device: claimed,
                    via: note.via,
                    offline_id: note.offline_id,
                    resolution: note.resolve,
                    message,
                    ops: r.ops,
                }
            })
            .collect();
        Ok(Json(HistoryBody {
            id: id.to_string(),
            entries,
        }))
    })
    .await
}
