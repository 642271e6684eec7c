//! The REST API of a node (JSON over HTTP).
//!
//! | route | |
//! |---|---|
//! | `GET /healthz` | `{"status": "ok"}`, no auth (the process answers; `/readyz` also checks the store, `readiness.rs`) |
//! | `GET /metrics` | Prometheus text, no auth (operators scrape it; it holds counts only, no tenant data) |
//! | `GET /v1/entities?type=&status=&since=&limit=` | the tenant's entities changed after feed cursor `since`, as summaries |
//! | `GET /v1/entities/{id}` | the policy view |
//! | `POST /v1/entities` | create a permit, isolation point or closeout (201 + view) |
//! | `PATCH /v1/entities/{id}` | several edits as one change, all or nothing (200 + view) |
//! | `POST /v1/entities/{id}/gas-readings` | append a gas reading (201 + view; 200 if already recorded) |
//! | `GET /v1/conflicts?type=` | views of the tenant's entities with conflicts, rejected operations or violations |
//! | `GET /v1/devices`, `DELETE /v1/devices/{id}`, `POST /v1/devices/{id}/enable` | the device registry and blocks (`device_api.rs`) |
//! | `GET /v1/status` | node id, document count, feed head and live connections |
//!
//! Every `/v1` route needs a bearer token (`Authorization: Bearer <token>` or
//! `?token=`) unless the node is open (no tokens file). Each route sees only the
//! tenant's entities: another tenant's entity answers 404 like an unknown id.
//! Writes need a read-write token (403 `read_only` otherwise), are durable when
//! answered, and are announced to live sync connections.
//!
//! The router has JSON fallbacks for unknown routes (404 `not_found`) and
//! methods (405 `method_not_allowed`); merge routers without fallbacks into it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::access::Access;
use super::api_error::ApiError;
use super::gate::{authenticate, PeerIp};
use super::hub::PeerStatus;
use super::state::NodeState;
use crate::model::{EntityId, EntityType, PermitStatus};
use crate::store::{Store, Summary};
use crate::view::View;
use crate::write::{Edit, NewCloseout, NewGasReading, NewIsolationPoint, NewPermit};

/// Default page size of `GET /v1/entities`.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page size of `GET /v1/entities`.
pub const MAX_LIMIT: usize = 1000;

pub(super) type Shared = Arc<NodeState>;
pub(super) type ApiResult<T> = Result<T, ApiError>;

/// The REST API of a node over `state`.
pub fn rest_router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/entities", get(list_entities).post(create_entity))
        .route("/v1/entities/{id}", get(get_entity).patch(patch_entity))
        .route("/v1/entities/{id}/gas-readings", post(add_gas_reading))
        .route("/v1/conflicts", get(conflicts))
        .route("/v1/status", get(status))
        .merge(super::classic_api::classic_routes())
        .merge(super::operator_api::operator_routes())
        .merge(super::blob_api::blob_routes())
        .merge(super::device_api::device_routes())
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

// ---- extractors and helpers ---------------------------------------------

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

/// Requests per token per second: over the limit, 429 `rate_limited`.
pub(crate) fn check_rate(state: &NodeState, access: &Access) -> ApiResult<()> {
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

/// Run blocking store work (reads and durable writes) off the async threads.
pub(super) async fn blocking<T, F>(state: &Shared, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&NodeState) -> ApiResult<T> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(ApiError::internal)?
}

/// At most this much of a user-supplied string is quoted back in an error.
pub(super) const MAX_QUOTED: usize = 64;

pub(super) fn parse_id(raw: Result<Path<String>, PathRejection>) -> ApiResult<EntityId> {
    let Path(raw) = raw?;
    raw.parse().map_err(|_| {
        let quoted: String = raw.chars().take(MAX_QUOTED).collect();
        ApiError::invalid_input(format!("malformed entity id {quoted:?} (expected a UUID)"))
    })
}

pub(super) fn parse_type(raw: Option<&str>) -> ApiResult<Option<EntityType>> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<EntityType>()
            .map(Some)
            .map_err(|e| ApiError::invalid_input(e.to_string())),
    }
}

/// The summary of entity `id` if `tenant` may see it; 404 otherwise (an
/// unknown id and another tenant's entity answer the same).
pub(super) fn visible_summary(state: &NodeState, id: EntityId, tenant: &str) -> ApiResult<Summary> {
    state
        .store
        .visible_summary(id, tenant)?
        .ok_or_else(|| ApiError::unknown_entity(id))
}

/// After a durable write: tell live sync connections and count it.
pub(super) fn changed(state: &NodeState, id: EntityId) {
    state.hub.doc_changed(id, None);
    state.metrics.add_changes_applied(1);
}

pub(super) fn body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    body.map(|Json(b)| b).map_err(ApiError::from)
}

// ---- middleware and fallbacks -------------------------------------------

async fn count_requests(State(state): State<Shared>, req: Request, next: Next) -> Response {
    state.metrics.http_request();
    let response = next.run(req).await;
    if response.status().is_server_error() {
        state.metrics.error("http");
    }
    response
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

// ---- open routes --------------------------------------------------------

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn metrics(State(state): State<Shared>) -> ApiResult<Response> {
    // one feed entry per document: cheaper than reading every summary
    let documents = blocking(&state, |s| Ok(s.store.feed_since(0, usize::MAX)?.len())).await?;
    let text = state.metrics.render(state.hub.len(), documents);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

// ---- entities -----------------------------------------------------------

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "type")]
    ty: Option<String>,
    status: Option<String>,
    since: Option<u64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct EntityPage {
    entities: Vec<Summary>,
    next_cursor: u64,
    has_more: bool,
}

/// The tenant's entities changed after feed cursor `since` (default 0), oldest
/// change first, one page of at most `limit` feed entries. The page is filtered
/// by `type` and `status` after paging, so it may hold fewer than `limit`
/// entities while `has_more` is true. Deleted entities are included (their
/// summary says `deleted`), so that a client paging the feed learns of them.
async fn list_entities(
    State(state): State<Shared>,
    Authed(access): Authed,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<EntityPage>> {
    let Query(q) = query?;
    let ty = parse_type(q.ty.as_deref())?;
    let status = q.status.filter(|s| !s.is_empty());
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(ApiError::invalid_input("limit must be at least 1")),
        Some(n) => n.min(MAX_LIMIT),
    };
    let since = q.since.unwrap_or(0);
    let page = blocking(&state, move |s| {
        let mut feed = s
            .store
            .tenant_feed_since(&access.tenant, since, limit + 1)?;
        let has_more = feed.len() > limit;
        feed.truncate(limit);
        let next_cursor = feed.last().map_or(since, |(seq, _)| *seq);
        let mut entities = Vec::new();
        for (_, id) in feed {
            let Some(summary) = s.store.summary(id)? else {
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
    Ok(Json(page))
}

async fn get_entity(
    State(state): State<Shared>,
    Authed(access): Authed,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<View>> {
    let id = parse_id(id)?;
    let view = blocking(&state, move |s| {
        visible_summary(s, id, &access.tenant)?;
        Ok(s.store.view(id)?)
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

/// The store handle that writes on behalf of the caller: with tokens, the
/// token's device is the author (`created_by`, `taken_by`).
pub(super) fn author(s: &NodeState, access: &Access) -> Store {
    if s.auth.is_open() {
        s.store.clone()
    } else {
        s.store.acting_as(&access.device)
    }
}

/// Create an entity with a client-generated id (or a fresh one). An id that
/// is taken, by this tenant or another, answers 409 `already_exists`, except a
/// retry by the device that created it, which answers 200 with the entity.
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
            visible_summary(s, permit, &tenant)?;
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
        changed(s, id);
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
    let tenant = access.tenant.clone();
    let writer = access.clone();
    let (view, wrote) = blocking(&state, move |s| {
        let summary = visible_summary(s, id, &tenant)?;
        let edits = patch.edits(summary.entity_type)?;
        let wrote = author(s, &writer).edit_all(id, &edits)?.is_some();
        if wrote {
            changed(s, id);
        }
        Ok((s.store.view(id)?, wrote))
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
    let tenant = access.tenant.clone();
    let writer = access.clone();
    let (view, wrote) = blocking(&state, move |s| {
        visible_summary(s, id, &tenant)?;
        let edit = Edit::AddGasReading(NewGasReading {
            id: r.id,
            gas: r.gas,
            value: r.value,
            unit: r.unit,
            min: r.min,
            max: r.max,
            taken_at: r.taken_at,
        });
        let wrote = author(s, &writer).edit(id, edit)?.is_some();
        if wrote {
            changed(s, id);
        }
        Ok((s.store.view(id)?, wrote))
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
        for (_, id) in s.store.tenant_feed_since(&access.tenant, 0, usize::MAX)? {
            let Some(summary) = s.store.summary(id)? else {
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
            let view = s.store.view(id)?;
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

// ---- status -------------------------------------------------------------

#[derive(Serialize)]
struct Status {
    peer_id: String,
    documents: usize,
    feed_head: u64,
    peers: Vec<PeerStatus>,
}

/// The node's status as the tenant sees it: its documents, the feed position
/// of its latest change and its live connections (everything on an open node).
async fn status(State(state): State<Shared>, Authed(access): Authed) -> ApiResult<Json<Status>> {
    let open = state.auth.is_open();
    let tenant = access.tenant.clone();
    let (documents, feed_head) = blocking(&state, move |s| {
        if open {
            Ok((
                s.store.feed_since(0, usize::MAX)?.len(),
                s.store.feed_head(),
            ))
        } else {
            let feed = s.store.tenant_feed_since(&tenant, 0, usize::MAX)?;
            Ok((feed.len(), feed.last().map_or(0, |(seq, _)| *seq)))
        }
    })
    .await?;
    let peers = state.hub.status((!open).then_some(access.tenant.as_str()));
    Ok(Json(Status {
        peer_id: state.peer_id.clone(),
        documents,
        feed_head,
        peers,
    }))
}
