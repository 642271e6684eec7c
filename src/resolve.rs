//! Settling a conflict: a person picks the value of a last-writer-wins field
//! that concurrent writers left in conflict. The chosen value is written as a
//! new change that overwrites every concurrent value, so the conflict
//! disappears on every replica once the change arrives there (the CRDT form
//! of keep-mine / use-server / merge). The change's note records the
//! resolution for the audit trail.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::model::{EntityId, FieldPolicy, Schema};
use crate::store::Store;
use crate::view::View;
use crate::write::{self, ChangeNote, Edit, ResolutionNote};

/// How a conflict is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The caller's own value wins.
    KeepMine,
    /// The value the node shows now (Automerge's winner) stays.
    UseServer,
    /// A new value combining the conflicting ones.
    Merge,
}

impl Resolution {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::KeepMine => "keep_mine",
            Resolution::UseServer => "use_server",
            Resolution::Merge => "merge",
        }
    }
}

impl FromStr for Resolution {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "keep_mine" => Ok(Resolution::KeepMine),
            "use_server" => Ok(Resolution::UseServer),
            "merge" => Ok(Resolution::Merge),
            other => Err(Error::InvalidInput(format!(
                "resolution must be keep_mine, use_server or merge, not {other:?}"
            ))),
        }
    }
}

/// A JSON value as the string a last-writer-wins field holds.
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Resolve the conflict on `field` of entity `id`, writing as `store`'s
/// device. `value` is required for `keep_mine` and `merge` and ignored for
/// `use_server`. Returns the entity's view after the durable write.
pub fn resolve(
    store: &Store,
    id: EntityId,
    field: &str,
    resolution: Resolution,
    value: Option<&str>,
) -> Result<View> {
    let ty = store
        .summary(id)?
        .ok_or(Error::UnknownEntity(id))?
        .entity_type;
    let lww = Schema::of(ty)
        .fields()
        .any(|(n, p)| n == field && p == FieldPolicy::LastWriterWins);
    if !lww {
        return Err(Error::InvalidInput(format!(
            "{field} is not a last-writer-wins field of a {ty}; only those hold conflicts"
        )));
    }
    let device = store.author_device().to_string();
    // judged under the document's lock, against the values there now: a value
    // that arrived by sync a moment ago is among those replaced
    store.transact(id, None, |doc, ctx| {
        let now = doc.view(&Default::default());
        let Some(conflict) = now.conflicts.iter().find(|c| c.field == field) else {
            return Err(Error::NoConflict {
                id,
                field: field.to_string(),
            });
        };
        let chosen = match (resolution, value) {
            (Resolution::UseServer, _) => plain(&conflict.winner),
            (_, Some(v)) if !v.trim().is_empty() => v.to_string(),
            _ => {
                return Err(Error::InvalidInput(format!(
                    "{} needs a non-empty value",
                    resolution.as_str()
                )))
            }
        };
        let mut ctx = ctx.clone();
        ctx.note = Some(ChangeNote {
            device: device.clone(),
            via: Some("resolve".into()),
            offline_id: None,
            resolve: Some(ResolutionNote {
                field: field.to_string(),
                resolution: resolution.as_str().into(),
                replaced: conflict.values.iter().map(plain).collect(),
            }),
        });
        let edit = Edit::SetField {
            field: field.to_string(),
            value: chosen,
        };
        write::apply_edits(doc, std::slice::from_ref(&edit), &ctx)?;
        Ok(((), Vec::new()))
    })?;
    store.view(id)
}
