//! The small per-entity record the store keeps beside each document, so that
//! lists, filters and cross-document rules do not load documents.

use serde::{Deserialize, Serialize};

use crate::model::{EntityId, EntityType};
use crate::view::View;

/// What the store knows of an entity without loading it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The entity id.
    pub id: EntityId,
    /// Its type.
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    /// Its status (permit workflow or isolation status), if any.
    pub status: Option<String>,
    /// A permit's title.
    pub title: Option<String>,
    /// The permit an isolation point or closeout belongs to.
    pub permit_id: Option<EntityId>,
    /// The tombstone.
    pub deleted: bool,
    /// A closeout's `completed`.
    pub completed: bool,
    /// Number of open conflicts in the view.
    pub conflicts: usize,
    /// Number of rejected operations in the view.
    pub rejected: usize,
    /// Number of changes in the document.
    pub changes: usize,
    /// The entity's position in the store's change feed.
    pub feed_seq: u64,
    /// The document's heads (hex), sorted.
    #[serde(default)]
    pub heads: Vec<String>,
}

impl Summary {
    /// The summary of a rendered view.
    pub(crate) fn of(
        view: &View,
        entity_type: EntityType,
        changes: usize,
        feed_seq: u64,
    ) -> Option<Summary> {
        let id = view.id.parse().ok()?;
        Some(Summary {
            id,
            entity_type,
            status: view.str_field("status").map(str::to_string),
            title: view.str_field("title").map(str::to_string),
            permit_id: view.str_field("permit_id").and_then(|s| s.parse().ok()),
            deleted: view.is_deleted(),
            completed: view.fields.get("completed").and_then(|v| v.as_bool()) == Some(true),
            conflicts: view.conflicts.len(),
            rejected: view.rejected.len(),
            changes,
            feed_seq,
            heads: view.heads.clone(),
        })
    }
}
