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
use serde_json::json;
use uuid::Uuid;

use super::api_error::{ApiError, ApiResult};
use super::extract::{body, parse_id, parse_type, Authed, Writer};
use super::state::Shared;
use super::store_work::{author, blocking, changed, reader, visible_summary};
use crate::model::{EntityId, EntityType, PermitStatus};
use crate::store::Summary;
use crate::view::View;
use crate::write::{Edit, NewCloseout, NewGasReading, NewIsolationPoint, NewPermit};

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

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "type")]
    ty: Option<String>,
    status: Option<String>,
    since: Option<u64>,
    limit: Option<usize>,
    /// Any of `q`, `alarm` and `cursor` asks for the listing instead of the feed.
    q: Option<String>,
    alarm: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct EntityPage {
    entities: Vec<Summary>,
    next_cursor: u64,
    has_more: bool,
}

/// A page of the feed, or of the listing.
#[derive(Serialize)]
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

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum CreateBody {
    Permit(CreatePermit),
    IsolationPoint(CreateIsolationPoint),
    Closeout(CreateCloseout),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePermit {
    id: Option<EntityId>,
    title: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    work_type: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    ppe_requirements: Vec<String>,
    #[serde(default)]
    safety_checklist: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateIsolationPoint {
    id: Option<EntityId>,
    permit_id: EntityId,
    #[serde(default)]
    description: String,
    #[serde(default)]
    lock_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCloseout {
    id: Option<EntityId>,
    permit_id: EntityId,
    #[serde(default)]
    checklist: Vec<String>,
    #[serde(default)]
    notes: String,
}

impl CreateBody {
    fn id(&self) -> Option<EntityId> {
        match self {
            CreateBody::Permit(p) => p.id,
            CreateBody::IsolationPoint(i) => i.id,
            CreateBody::Closeout(c) => c.id,
        }
    }

    fn entity_type(&self) -> EntityType {
        match self {
            CreateBody::Permit(_) => EntityType::Permit,
            CreateBody::IsolationPoint(_) => EntityType::IsolationPoint,
            CreateBody::Closeout(_) => EntityType::Closeout,
        }
    }

    fn permit_id(&self) -> Option<EntityId> {
        match self {
            CreateBody::Permit(_) => None,
            CreateBody::IsolationPoint(i) => Some(i.permit_id),
            CreateBody::Closeout(c) => Some(c.permit_id),
        }
    }
}

/// Create an entity with a client-generated id (or a fresh one), in the
/// caller's tenant's id space. An id the tenant already holds answers 409
/// `already_exists`, except a retry by the device that created it, which
/// answers 200 with the entity. Another tenant's id is not taken here: the
/// create makes this tenant's own document of that id, and answers exactly
/// as for an unknown id.
async fn create_entity(
    State(state): State<Shared>,
    Writer(access): Writer,
    new: Result<Json<CreateBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<View>)> {
    let new = body(new)?;
    let tenant = access.tenant.clone();
    let writer = access.clone();
    let view = blocking(&state, move |s| {
        let store = &author(s, &writer);
        let id = new.id().unwrap_or_else(EntityId::new_random);
        if let Some(permit) = new.permit_id() {
            // the parent must be the tenant's (unknown and foreign answer alike)
            visible_summary(s, permit, &writer)?;
        }
        let taken = || {
            ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("an entity with id {id} already exists"),
            )
        };
        if store.summary(id)?.is_some() {
            // a retry of this device's own create (its first answer was lost, or
            // its flush failed): make sure it is durable and answer 200 with it
            let own = store.created_by(id, &tenant, new.entity_type(), store.author_device())?;
            if !own {
                return Err(taken());
            }
            store.flush()?;
            return Ok((StatusCode::OK, store.view(id)?));
        }
        if !store.claim(id, &tenant)? {
            return Err(taken());
        }
        match new {
            CreateBody::Permit(p) => store.create_permit(NewPermit {
                id: Some(id),
                title: p.title,
                location: p.location,
                work_type: p.work_type,
                description: p.description,
                ppe_requirements: p.ppe_requirements,
                safety_checklist: p.safety_checklist,
            })?,
            CreateBody::IsolationPoint(i) => store.create_isolation_point(NewIsolationPoint {
                id: Some(id),
                permit_id: i.permit_id,
                description: i.description,
                lock_ids: i.lock_ids,
            })?,
            CreateBody::Closeout(c) => store.create_closeout(NewCloseout {
                id: Some(id),
                permit_id: c.permit_id,
                checklist: c.checklist,
                notes: c.notes,
            })?,
        };
        changed(s, &writer, id);
        Ok((StatusCode::CREATED, store.view(id)?))
    })
    .await?;
    let (status, view) = view;
    tracing::info!(tenant = %access.tenant, device = %access.device, id = %view.id,
        r#type = ?view.entity_type, "entity created");
    Ok((status, Json(view)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
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

#[derive(Deserialize)]
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

#[derive(Deserialize)]
struct ConflictsQuery {
    #[serde(rename = "type")]
    ty: Option<String>,
}

/// Views of the tenant's live (not deleted) entities that have conflicts,
/// rejected operations or violations, in feed order.
async fn conflicts(
    State(state): State<Shared>,
    Authed(access): Authed,
    query: Result<Query<ConflictsQuery>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
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
    Ok(Json(json!({ "entities": views })))
}
