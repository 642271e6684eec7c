//! The listing of the tenant's entities, searched, filtered and paged on the
//! node, and the permits in alarm.
//!
//! | route | |
//! |---|---|
//! | `GET /v1/entities?q=&status=&alarm=&type=&limit=&cursor=` | one page of the listing (any of `q`, `alarm`, `cursor` asks for it; without them the route pages the feed by `since=`, unchanged: `entity_api.rs`) |
//! | `GET /v1/alarms` | every permit of the tenant in alarm, with its alarms |
//!
//! Both read summaries (no document load) and take what summaries lack (the
//! searched fields, gas readings, isolation points' descriptions) from the
//! [`PermitIndex`], which reads a document again only after it changed.
//! Alarms are computed for active and closed permits only, the statuses that
//! can break a rule (`alarm.rs`).

use std::collections::{BTreeMap, HashSet};

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;

use super::alarm::{permit_alarms, Alarm, PointFact};
use super::api_error::{ApiError, ApiResult};
use super::extract::Authed;
use super::listing_query::{ListingParams, ListingQuery, SortKey};
use super::permit_index::PermitIndex;
use super::state::Shared;
use super::store_work::{blocking, reader};
use crate::error::Result;
use crate::model::{Access, EntityType, IsolationStatus, PermitStatus};
use crate::store::{Store, Summary};

/// The routes of this file other than the listing itself (which shares
/// `GET /v1/entities` with the feed, in `entity_api.rs`).
pub(super) fn listing_routes() -> Router<Shared> {
    Router::new().route("/v1/alarms", get(alarms))
}

/// One entity of the listing: its summary, what the overview shows of its
/// document, and its alarms.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Item {
    #[serde(flatten)]
    summary: Summary,
    /// A permit's location (empty for other types).
    location: String,
    /// A permit's work type (empty for other types).
    work_type: String,
    /// The rules the permit breaks (empty when none, and for other types).
    alarms: Vec<Alarm>,
}

/// How many entities matching `type` and `q` have each status, and how many
/// are in alarm (the filter chips' numbers).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Counts {
    statuses: BTreeMap<String, usize>,
    alarm: usize,
}

/// One page of the listing.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Listing {
    entities: Vec<Item>,
    /// Entities matching every filter, on all pages.
    total: usize,
    counts: Counts,
    /// The `cursor` of the next page, `null` on the last one.
    next_cursor: Option<String>,
    has_more: bool,
}

/// The permits in alarm.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AlarmList {
    /// Each permit in alarm, in the listing's order.
    permits: Vec<Item>,
    /// Alarms over all of them.
    alarms: usize,
}

/// One page of the listing for `access`'s tenant (the parameters are
/// checked here: 400 `invalid_input` for a bad one).
pub(super) async fn listing(
    state: &Shared,
    access: Access,
    index: PermitIndex,
    params: ListingParams,
) -> ApiResult<Listing> {
    let query = ListingQuery::parse(params).map_err(ApiError::invalid_input)?;
    blocking(state, move |s| {
        let store = &reader(s, &access);
        let tenant = access.tenant.as_str();
        let mut rows = Vec::new();
        for row in rows_of(store, tenant, &index, |sum| query.type_matches(sum))? {
            if !query.terms.is_empty() {
                let facts = index.facts(store, tenant, &row.summary)?;
                if !query.text_matches(row.summary.id, &facts.text) {
                    continue;
                }
            }
            rows.push(row);
        }
        let mut counts = Counts {
            statuses: BTreeMap::new(),
            alarm: 0,
        };
        for row in &rows {
            if let Some(st) = &row.summary.status {
                *counts.statuses.entry(st.clone()).or_default() += 1;
            }
            counts.alarm += usize::from(!row.alarms.is_empty());
        }
        rows.retain(|r| query.filters_match(r.summary.status.as_deref(), !r.alarms.is_empty()));
        let total = rows.len();
        let mut keyed: Vec<(SortKey, Row)> = rows
            .into_iter()
            .map(|r| (SortKey::of(&r.summary), r))
            .filter(|(k, _)| query.after.as_ref().is_none_or(|after| k > after))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let has_more = keyed.len() > query.limit;
        keyed.truncate(query.limit);
        let next_cursor = has_more
            .then(|| keyed.last().map(|(k, _)| k.cursor()))
            .flatten();
        let entities = keyed
            .into_iter()
            .map(|(_, row)| item(store, tenant, &index, row))
            .collect::<Result<Vec<_>>>()?;
        Ok(Listing {
            entities,
            total,
            counts,
            next_cursor,
            has_more,
        })
    })
    .await
}

/// `GET /v1/alarms`: every permit of the tenant in alarm.
#[utoipa::path(get, path = "/v1/alarms", tag = "entities",
    responses((status = 200, description = "the permits in alarm", body = AlarmList)))]
async fn alarms(
    State(state): State<Shared>,
    Authed(access): Authed,
    Extension(index): Extension<PermitIndex>,
) -> ApiResult<Json<AlarmList>> {
    let list = blocking(&state, move |s| {
        let store = &reader(s, &access);
        let tenant = access.tenant.as_str();
        let mut rows: Vec<Row> = rows_of(store, tenant, &index, |sum| {
            sum.entity_type == EntityType::Permit
        })?
        .into_iter()
        .filter(|r| !r.alarms.is_empty())
        .collect();
        rows.sort_by_key(|r| SortKey::of(&r.summary));
        let alarms = rows.iter().map(|r| r.alarms.len()).sum();
        let permits = rows
            .into_iter()
            .map(|row| item(store, tenant, &index, row))
            .collect::<Result<Vec<_>>>()?;
        Ok(AlarmList { permits, alarms })
    })
    .await?;
    Ok(Json(list))
}

/// A live entity of the tenant with its alarms.
struct Row {
    summary: Summary,
    alarms: Vec<Alarm>,
}

/// The tenant's live (not deleted) entities that `keep` accepts, each with
/// its alarms, in no particular order. Forgets the index entries of the
/// tenant's entities that are gone.
fn rows_of(
    store: &Store,
    tenant: &str,
    index: &PermitIndex,
    keep: impl Fn(&Summary) -> bool,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut live = HashSet::new();
    for (_, id) in store.tenant_feed_since(tenant, 0, usize::MAX)? {
        let Some(summary) = store.summary(id)? else {
            continue;
        };
        if summary.deleted {
            continue;
        }
        live.insert(id);
        if !keep(&summary) {
            continue;
        }
        let alarms = alarms_of(store, tenant, index, &summary)?;
        rows.push(Row { summary, alarms });
    }
    index.retain(tenant, &live);
    Ok(rows)
}

/// The alarms of the entity of `summary` (only an active or closed permit
/// can have any).
fn alarms_of(
    store: &Store,
    tenant: &str,
    index: &PermitIndex,
    summary: &Summary,
) -> Result<Vec<Alarm>> {
    if summary.entity_type != EntityType::Permit {
        return Ok(Vec::new());
    }
    let status = summary
        .status
        .as_deref()
        .and_then(|s| s.parse::<PermitStatus>().ok());
    let active = status == Some(PermitStatus::Active);
    if !active && status != Some(PermitStatus::Closed) {
        return Ok(Vec::new());
    }
    // the permit's own tenant's children, not deleted: what the view counts
    let refs = store.cross_refs(summary.id)?;
    let mut failing = Vec::new();
    let mut points = Vec::new();
    if active {
        failing = index.facts(store, tenant, summary)?.failing.clone();
        for (id, status) in refs.isolation_points {
            // a verified point raises nothing: its description is not needed
            let description = match store.summary(id)? {
                Some(child) if status != Some(IsolationStatus::Verified) => {
                    index.facts(store, tenant, &child)?.description.clone()
                }
                _ => String::new(),
            };
            points.push(PointFact {
                id,
                description,
                status,
            });
        }
    }
    let closeouts: Vec<bool> = refs.closeouts.iter().map(|(_, done)| *done).collect();
    Ok(permit_alarms(status, &failing, &points, &closeouts))
}

/// The listing's item of `row`.
fn item(store: &Store, tenant: &str, index: &PermitIndex, row: Row) -> Result<Item> {
    let (location, work_type) = if row.summary.entity_type == EntityType::Permit {
        let facts = index.facts(store, tenant, &row.summary)?;
        (facts.location.clone(), facts.work_type.clone())
    } else {
        Default::default()
    };
    Ok(Item {
        summary: row.summary,
        location,
        work_type,
        alarms: row.alarms,
    })
}
