//! What the listing needs of an entity's document and a summary does not
//! carry (location, work type, description or notes, and a permit's failing
//! gas readings), read once per version of the document and kept in memory.
//!
//! `GET /v1/entities?q=` searches those fields and `GET /v1/alarms` needs the
//! gas readings of active permits; reading every document on every request
//! would load the tenant's whole store each time the operator types a letter.
//! An entry is valid while the entity's summary shows the heads it was read
//! at (a summary changes with every change of its document), so a request
//! loads only the documents that changed since the last one. The index lives
//! as long as the router ([`routes::rest_router`](super::routes::rest_router))
//! and holds a few short strings per entity.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::alarm::{failing_readings, GasAlarm};
use crate::error::Result;
use crate::model::{EntityId, EntityType};
use crate::store::{Store, Summary};
use crate::view::gas_readings;

/// What the listing knows of one version of an entity's document.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct DocFacts {
    /// The summary's feed position and heads this was read at.
    version: (u64, Vec<String>),
    /// A permit's location.
    pub(super) location: String,
    /// A permit's work type.
    pub(super) work_type: String,
    /// A permit's or isolation point's description.
    pub(super) description: String,
    /// Title, location, work type, description and notes, in lower case.
    pub(super) text: String,
    /// A permit's failing latest gas readings (whatever its status).
    pub(super) failing: Vec<GasAlarm>,
}

/// The facts read so far, by tenant and entity id.
type Entries = HashMap<(String, EntityId), Arc<DocFacts>>;

/// The facts of every entity the listing has read, by tenant and id.
#[derive(Clone, Default)]
pub struct PermitIndex {
    entries: Arc<Mutex<Entries>>,
}

impl PermitIndex {
    fn entries(&self) -> MutexGuard<'_, Entries> {
        // a panic while holding the lock left a valid map: entries are
        // replaced whole
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The facts of the entity of `summary` (the tenant's, from `store`),
    /// from memory when its document has not changed since they were read.
    pub(super) fn facts(
        &self,
        store: &Store,
        tenant: &str,
        summary: &Summary,
    ) -> Result<Arc<DocFacts>> {
        let key = (tenant.to_string(), summary.id);
        let version = (summary.feed_seq, summary.heads.clone());
        if let Some(known) = self.entries().get(&key) {
            if known.version == version {
                return Ok(known.clone());
            }
        }
        let (facts, heads) = read(store, summary)?;
        let facts = Arc::new(facts);
        // cache only what was read at the summary's version (a write between
        // the two reads is picked up by the next request)
        if !summary.heads.is_empty() && heads == summary.heads {
            self.entries().insert(key, facts.clone());
        }
        Ok(facts)
    }

    /// Forget the tenant's entries whose id is not in `live` (deleted or gone).
    pub(super) fn retain(&self, tenant: &str, live: &HashSet<EntityId>) {
        self.entries()
            .retain(|(t, id), _| t != tenant || live.contains(id));
    }

    /// How many entries are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }
}

/// Read the facts of `summary`'s document, and the heads they were read at.
fn read(store: &Store, summary: &Summary) -> Result<(DocFacts, Vec<String>)> {
    let permit = summary.entity_type == EntityType::Permit;
    store.with_doc(summary.id, |d| {
        let text = |name: &str| d.field(name).0.as_str().unwrap_or("").to_string();
        let location = text("location");
        let work_type = text("work_type");
        let description = text("description");
        let notes = text("notes");
        let failing = if permit {
            let (map, _) = d.field("gas_readings");
            let unit_of = |reading: &str| {
                map.get(reading)
                    .and_then(|r| r.get("unit"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            failing_readings(&gas_readings(d.history(), None), unit_of)
        } else {
            Vec::new()
        };
        let title = summary.title.as_deref().unwrap_or("");
        let text = [title, &location, &work_type, &description, &notes]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase())
            .collect::<Vec<_>>()
            .join("\n");
        let mut heads: Vec<String> = d.heads().iter().map(|h| h.to_string()).collect();
        heads.sort();
        let facts = DocFacts {
            version: (summary.feed_seq, summary.heads.clone()),
            location,
            work_type,
            description,
            text,
            failing,
        };
        (facts, heads)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{Edit, NewGasReading, NewPermit};

    #[test]
    fn facts_are_read_once_per_version_of_the_document() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let id = store
            .create_permit(NewPermit {
                title: "Weld bracket".into(),
                location: "Tank farm".into(),
                work_type: "hot_work".into(),
                description: "Bracket on T-3".into(),
                ..Default::default()
            })
            .expect("create");
        let index = PermitIndex::default();
        let summary = store.summary(id).expect("read").expect("summary");
        let facts = index.facts(&store, "t", &summary).expect("facts");
        assert_eq!(facts.location, "Tank farm");
        assert_eq!(
            facts.text,
            "weld bracket\ntank farm\nhot_work\nbracket on t-3"
        );
        assert!(facts.failing.is_empty());
        let again = index.facts(&store, "t", &summary).expect("facts");
        assert!(Arc::ptr_eq(&facts, &again), "read from memory");

        store
            .edit(
                id,
                Edit::AddGasReading(NewGasReading {
                    id: None,
                    gas: "H2S".into(),
                    value: 12.5,
                    unit: "ppm".into(),
                    min: 0.0,
                    max: 10.0,
                    taken_at: Some(1),
                }),
            )
            .expect("reading");
        let summary = store.summary(id).expect("read").expect("summary");
        let fresh = index.facts(&store, "t", &summary).expect("facts");
        assert_eq!(fresh.failing.len(), 1);
        assert_eq!(fresh.failing[0].unit, "ppm");
        assert_eq!(fresh.failing[0].value, Some(12.5));

        index.retain("other", &HashSet::new());
        assert_eq!(index.len(), 1, "another tenant's pass keeps ours");
        index.retain("t", &HashSet::new());
        assert_eq!(index.len(), 0);
    }
}
