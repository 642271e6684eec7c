//! The small per-entity record the store keeps beside each document, so that
//! lists, filters and cross-document rules do not load documents.

use serde::{Deserialize, Serialize};

use crate::model::{EntityId, EntityType};
use crate::view::Headline;

/// What the store knows of an entity without loading it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The summary of entity `id` from its view's headline.
    pub(crate) fn of(
        id: EntityId,
        entity_type: EntityType,
        headline: &Headline,
        changes: usize,
        feed_seq: u64,
    ) -> Summary {
        Summary {
            id,
            entity_type,
            status: headline.status.clone(),
            title: headline.title.clone(),
            permit_id: headline.permit_id,
            deleted: headline.deleted,
            completed: headline.completed,
            conflicts: headline.conflicts,
            rejected: headline.rejected,
            changes,
            feed_seq,
            heads: headline.heads.clone(),
        }
    }
}
