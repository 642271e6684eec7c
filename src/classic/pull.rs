//! The classic pull: views of the tenant's entities changed since a cursor,
//! with their versions, in feed order.

use serde::Serialize;
use serde_json::{Map, Value};

use super::versions::{is_recorded, version_record};
use crate::error::Result;
use crate::model::EntityType;
use crate::store::Store;
use crate::view::Conflict;

/// One changed entity.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PullItem {
    /// `permit`, `isolation_point` or `closeout`.
    pub entity: EntityType,
    /// The entity id (the classic clients' `server_id`).
    pub id: String,
    /// The version to send back as `client_version` with the next update.
    pub version: u64,
    /// Whether the entity is deleted (a tombstone: drop it locally).
    pub deleted: bool,
    /// The fields as the policies resolve them.
    pub data: Map<String, Value>,
    /// Open conflicts of last-writer-wins fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    /// The entity's position in the feed.
    pub cursor: u64,
}

/// A page of the pull.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PullPage {
    /// The changed entities.
    pub changes: Vec<PullItem>,
    /// The cursor to send as `since` next time.
    pub next_cursor: u64,
    /// Whether more changes wait after `next_cursor`.
    pub has_more: bool,
}

/// Up to `limit` feed positions after `since`, of the types in `types`
/// (all when empty). The versions reported are recorded so that an update
/// sent against one of them is judged against what the client saw.
pub fn changes_since(
    store: &Store,
    tenant: &str,
    since: u64,
    limit: usize,
    types: &[EntityType],
) -> Result<PullPage> {
    let feed = store.tenant_feed_since(tenant, since, limit + 1)?;
    let has_more = feed.len() > limit;
    let mut next_cursor = since;
    let mut changes = Vec::new();
    let mut records = Vec::new();
    for (seq, id) in feed.into_iter().take(limit) {
        next_cursor = seq;
        let Some(summary) = store.summary(id)? else {
            continue;
        };
        if !types.is_empty() && !types.contains(&summary.entity_type) {
            continue;
        }
        let (view, version, heads) = store.with_durable_doc(id, |d| {
            (
                d.view(&Default::default()),
                d.history().change_count() as u64,
                d.heads(),
            )
        })?;
        if !is_recorded(store, id, version)? {
            records.push(version_record(store, id, version, &heads)?);
        }
        changes.push(PullItem {
            entity: summary.entity_type,
            id: id.to_string(),
            version,
            deleted: view.is_deleted(),
            data: view.fields,
            conflicts: view.conflicts,
            cursor: seq,
        });
    }
    if !records.is_empty() {
        store.put_records(records)?;
    }
    Ok(PullPage {
        changes,
        next_cursor,
        has_more,
    })
}
