//! The entities of the tenant over HTTP: list, read, create and edit them,
//! and find those that need an operator's eye.
//!
//! | route | |
//! |---|---|
//! | `GET /v1/entities?type=&status=&since=&limit=` | the tenant's entities changed after feed cursor `since`, as summaries |
//! | `GET /v1/entities?q=&status=&alarm=&type=&limit=&cursor=` | the listing: searched, filtered and paged on the node (`entity_listing.rs`) |
//! | `GET /v1/entities/{id}` | the policy view |
//! | `POST /v1/entities` | create a permit, isolation point or closeout (201 + view) |
//! | `PATCH /v1/entities/{id}` | several edits as one change, all or nothing (200 + view) |
//! | `POST /v1/entities/{id}/gas-readings` | append a gas reading (201 + view; 200 if already recorded) |
//! | `GET /v1/conflicts?type=` | views of the tenant's entities with conflicts, rejected operations or violations |

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::api_error::{ApiError, ApiResult};
use super::api_schemas::{IdPath, Refused, TooLarge, UnknownEntity};
use super::entity_create::create_entity;
use super::extract::{body, parse_id, parse_type, Authed, Writer};
use super::state::Shared;
use super::store_work::{author, blocking, changed, reader, visible_summary};
use crate::model::{EntityType, PermitStatus};
use crate::store::Summary;
use crate::view::View;
use crate::write::{Edit, NewGasReading};

/// Default page size of `GET /v1/entities`.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page size of `GET /v1/entities`.
pub const MAX_LIMIT: usize = 1000;

/// The entity routes (merged into the REST router).
pub(super) fn entity_routes() -> Router<Shared> {
    Router::new()
        .route("/v1/entities", get(list_entities).post(create_entity))
        .route("/v1/entities/{id}", get(get_entity).patch(patch_entity))
        .route("/v1/entities/{id}/gas-readings", post(add_gas_reading))
        .route("/v1/conflicts", get(conflicts))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only entities of this type (`permit`, `isolation_point`, `closeout`); empty is all.
    #[serde(rename = "type")]
    ty: Option<String>,
    /// Only entities with this status; empty is all.
    #[param(
        pattern = "^(active|suspended|approved|submitted|draft|completed|closed|cancelled|assigned|isolated|verified|deisolated)?$"
    )]
    status: Option<String>,
    /// The feed: entities changed after this feed cursor (default 0).
    since: Option<u64>,
    /// Page size (feed: default 100, at most 1000; listing: default 50, at most 1000).
    #[param(minimum = 1)]
    limit: Option<usize>,
    /// The listing: words that must all appear in title, location, work type
    /// or description (or one word that starts the id). Any of `q`, `alarm`
    /// and `cursor` asks for the listing instead of the feed.
    #[param(max_length = 200)]
    q: Option<String>,
    /// The listing: only entities in alarm (`true`) or not (`false`).
    #[param(pattern = "^(true|false|1|0)?$")]
    alarm: Option<String>,
    /// The listing: the `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of the feed.
#[derive(Serialize, utoipa::ToSchema)]
struct EntityPage {
    /// The entities' summaries (deleted ones included), oldest change first.
    entities: Vec<Summary>,
    /// The `since` of the next page.
    next_cursor: u64,
    /// Whether more feed entries wait after `next_cursor`.
    has_more: bool,
}

/// A page of the feed (`since`), or of the listing (`q`, `alarm`, `cursor`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum ListAnswer {
    Feed(EntityPage),
    Listing(super::entity_listing::Listing),
}

/// The tenant's entities changed after feed cursor `since` (default 0), oldest
/// change first, one page of at most `limit` feed entries. The page is filtered
/// by `type` and `status` after paging, so it may hold fewer than `limit`
/// entities while `has_more` is true. Deleted entities are included (their
/// summary says `deleted`), so that a client paging the feed learns of them.
///
/// With `q`, `alarm` or `cursor`, the listing instead: live entities searched,
/// filtered and paged on the node (`entity_listing.rs`).
#[utoipa::path(get, path = "/v1/entities", tag = "entities", params(ListQuery),
    responses((status = 200, description = "a page of the feed or of the listing", body = ListAnswer)))]
async fn list_entities(
    State(state): State<Shared>,
    Authed(access): Authed,
    axum::Extension(index): axum::Extension<super::permit_index::PermitIndex>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<ListAnswer>> {
    let Query(q) = query?;
    if q.q.is_some() || q.alarm.is_some() || q.cursor.is_some() {
        if q.since.is_some() {
            return Err(ApiError::invalid_input(
                "since pages the feed, cursor (with q or alarm) the listing: not both",
            ));
        }
        let params = super::listing_query::ListingParams {
            ty: parse_type(q.ty.as_deref())?,
            status: q.status,
            limit: q.limit,
            q: q.q,
            alarm: q.alarm,
            cursor: q.cursor,
        };
        let listing = super::entity_listing::listing(&state, access, index, params).await?;
        return Ok(Json(ListAnswer::Listing(listing)));
    }
    let ty = parse_type(q.ty.as_deref())?;
    let status = q.status.filter(|s| !s.is_empty());
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(ApiError::invalid_input("limit must be at least 1")),
        Some(n) => n.min(MAX_LIMIT),
    };
    let since = q.since.unwrap_or(0);
    let page = blocking(&state, move |s| {
        let store = reader(s, &access);
        let mut feed = store.tenant_feed_since(&access.tenant, since, limit + 1)?;
        let has_more = feed.len() > limit;
        feed.truncate(limit);
        let next_cursor = feed.last().map_or(since, |(seq, _)| *seq);
        let mut entities = Vec::new();
        for (_, id) in feed {
            let Some(summary) = store.summary(id)? else {
                continue;
            };
            if ty.is_some_and(|t| summary.entity_type != t) {
                continue;
            }
            if status
                .as_ref()
                .is_some_and(|st| summary.status.as_ref() != Some(st))
            {
                continue;
            }
            entities.push(summary);
        }
        Ok(EntityPage {
            entities,
            next_cursor,
            has_more,
        })
    })
    .await?;
    Ok(Json(ListAnswer::Feed(page)))
}

/// The policy view of an entity of the tenant.
#[utoipa::path(get, path = "/v1/entities/{id}", tag = "entities", params(IdPath),
    responses((status = 200, description = "the entity's view", body = View), UnknownEntity))]
async fn get_entity(
    State(state): State<Shared>,
    Authed(access): Authed,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<View>> {
    let id = parse_id(id)?;
    let view = blocking(&state, move |s| {
        visible_summary(s, id, &access)?;
        Ok(reader(s, &access).view(id)?)
    })
    .await?;
    Ok(Json(view))
}

/// Edits of one entity, applied as one change (all or nothing).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
struct PatchBody {
    title: Option<String>,
    location: Option<String>,
    work_type: Option<String>,
    description: Option<String>,
    notes: Option<String>,
    status: Option<String>,
    #[serde(default)]
    ppe_add: Vec<String>,
    #[serde(default)]
    ppe_remove: Vec<String>,
    #[serde(default)]
    lock_add: Vec<String>,
    #[serde(default)]
    lock_remove: Vec<String>,
    checklist: Option<BTreeMap<String, bool>>,
    completed: Option<bool>,
    deleted: Option<bool>,
}

impl PatchBody {
    /// The edits, in a fixed order (status after the fields it may depend on;
    /// every edit is validated against the entity as it was before the patch).
    fn edits(self, ty: EntityType) -> ApiResult<Vec<Edit>> {
        let mut edits = Vec::new();
        for (field, value) in [
            ("title", self.title),
            ("location", self.location),
            ("work_type", self.work_type),
        ] {
            if let Some(value) = value {
                edits.push(Edit::SetField {
                    field: field.into(),
                    value,
                });
            }
        }
        for (field, text) in [("description", self.description), ("notes", self.notes)] {
            if let Some(text) = text {
                edits.push(Edit::SetText {
                    field: field.into(),
                    text,
                });
            }
        }
        let sets = [
            ("ppe_requirements", self.ppe_add, true),
            ("ppe_requirements", self.ppe_remove, false),
            ("lock_ids", self.lock_add, true),
            ("lock_ids", self.lock_remove, false),
        ];
        for (field, items, add) in sets {
            for item in items {
                let field = field.to_string();
                edits.push(if add {
                    Edit::AddItem { field, item }
                } else {
                    Edit::RemoveItem { field, item }
                });
            }
        }
        if let Some(checklist) = self.checklist {
            let field = match ty {
                EntityType::Permit => "safety_checklist",
                _ => "checklist",
            };
            for (item, ticked) in checklist {
                edits.push(Edit::Tick {
                    field: field.into(),
                    item,
                    ticked,
                });
            }
        }
        if let Some(value) = self.completed {
            edits.push(Edit::SetFlag {
                field: "completed".into(),
                value,
            });
        }
        if let Some(status) = self.status {
            edits.push(Edit::SetStatus(status));
        }
        match self.deleted {
            Some(true) => edits.push(Edit::Delete),
            Some(false) => {
                return Err(ApiError::invalid_input(
                    "deleted can only be set to true (it is a tombstone)",
                ))
            }
            None => {}
        }
        if edits.is_empty() {
            return Err(ApiError::invalid_input("empty patch: nothing to change"));
        }
        Ok(edits)
    }
}

/// Apply every edit of the body as one change, or none of them.
#[utoipa::path(patch, path = "/v1/entities/{id}", tag = "entities", params(IdPath), request_body = PatchBody,
    responses((status = 200, description = "the entity's view", body = View), UnknownEntity, Refused, TooLarge))]
async fn patch_entity(
    State(state): State<Shared>,
    Writer(access): Writer,
    id: Result<Path<String>, PathRejection>,
    patch: Result<Json<PatchBody>, JsonRejection>,
) -> ApiResult<Json<View>> {
    let id = parse_id(id)?;
    let patch = body(patch)?;
    let writer = access.clone();
    let (view, wrote) = blocking(&state, move |s| {
        let summary = visible_summary(s, id, &writer)?;
        let edits = patch.edits(summary.entity_type)?;
        let store = author(s, &writer);
        let wrote = store.edit_all(id, &edits)?.is_some();
        if wrote {
            changed(s, &writer, id);
        }
        Ok((store.view(id)?, wrote))
    })
    .await?;
    if wrote {
        tracing::info!(tenant = %access.tenant, device = %access.device, %id, "entity edited");
    }
    Ok(Json(view))
}

/// A gas reading.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct GasReadingBody {
    id: Option<Uuid>,
    gas: String,
    value: f64,
    unit: String,
    min: f64,
    max: f64,
    taken_at: Option<i64>,
}

/// Append a gas reading to a permit: 201 when new, 200 when a reading with
/// the same id and values is already recorded (a retry).
#[utoipa::path(post, path = "/v1/entities/{id}/gas-readings", tag = "entities", params(IdPath),
    request_body = GasReadingBody,
    responses(
        (status = 201, description = "recorded: the permit's view", body = View),
        (status = 200, description = "already recorded: the permit's view", body = View),
        UnknownEntity, Refused, TooLarge))]
async fn add_gas_reading(
    State(state): State<Shared>,
    Writer(access): Writer,
    id: Result<Path<String>, PathRejection>,
    reading: Result<Json<GasReadingBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<View>)> {
    let id = parse_id(id)?;
    let r = body(reading)?;
    let writer = access.clone();
    let (view, wrote) = blocking(&state, move |s| {
        visible_summary(s, id, &writer)?;
        let edit = Edit::AddGasReading(NewGasReading {
            id: r.id,
            gas: r.gas,
            value: r.value,
            unit: r.unit,
            min: r.min,
            max: r.max,
            taken_at: r.taken_at,
        });
        let store = author(s, &writer);
        let wrote = store.edit(id, edit)?.is_some();
        if wrote {
            changed(s, &writer, id);
        }
        Ok((store.view(id)?, wrote))
    })
    .await?;
    let status = if wrote {
        tracing::info!(tenant = %access.tenant, device = %access.device, %id, "gas reading added");
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConflictsQuery {
    /// Only entities of this type; empty is all.
    #[serde(rename = "type")]
    ty: Option<String>,
}

/// Views of the tenant's live (not deleted) entities that have conflicts,
/// rejected operations or violations, in feed order.
#[utoipa::path(get, path = "/v1/conflicts", tag = "entities", params(ConflictsQuery),
    responses((status = 200, description = "the entities' views", body = Conflicted)))]
async fn conflicts(
    State(state): State<Shared>,
    Authed(access): Authed,
    query: Result<Query<ConflictsQuery>, QueryRejection>,
) -> ApiResult<Json<Conflicted>> {
    let Query(q) = query?;
    let ty = parse_type(q.ty.as_deref())?;
    let views = blocking(&state, move |s| {
        let mut out = Vec::new();
        let store = reader(s, &access);
        for (_, id) in store.tenant_feed_since(&access.tenant, 0, usize::MAX)? {
            let Some(summary) = store.summary(id)? else {
                continue;
            };
            if summary.deleted || ty.is_some_and(|t| summary.entity_type != t) {
                continue;
            }
            // violations only exist for active and closed permits: render only
            // the views that can have something to show
            let may_violate = summary.entity_type == EntityType::Permit
                && matches!(
                    summary.status.as_deref().and_then(|st| st.parse().ok()),
                    Some(PermitStatus::Active | PermitStatus::Closed)
                );
            if summary.conflicts == 0 && summary.rejected == 0 && !may_violate {
                continue;
            }
            let view = store.view(id)?;
            if !(view.conflicts.is_empty()
                && view.rejected.is_empty()
                && view.violations.is_empty())
            {
                out.push(view);
            }
        }
        Ok(out)
    })
    .await?;
    Ok(Json(Conflicted { entities: views }))
}

/// The views of the entities that need an operator's eye.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Conflicted {
    entities: Vec<View>,
}
