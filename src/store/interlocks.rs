//! The hard interlocks on local permit moves: gather what the rules need from
//! the permit and its isolation points and closeouts, then judge it with
//! [`crate::write::check_transition`].

use super::store::Store;
use crate::error::{Error, Result};
use crate::model::{EntityId, EntityType, IsolationStatus, PermitStatus};
use crate::view::gas_readings;
use crate::write::{check_transition, Edit, IsolationFact, PermitFacts};

impl Store {
    /// Refuse a local move of the permit stored under `id` (the last status among `edits`)
    /// that the interlocks forbid, before anything is written. Foreign
    /// changes that arrive by sync are never refused: the view reports the
    /// same rules as violations.
    pub(crate) fn check_interlocks(&self, id: EntityId, edits: &[Edit]) -> Result<()> {
        let Some(to) = edits.iter().rev().find_map(|e| match e {
            Edit::SetStatus(s) => s.parse::<PermitStatus>().ok(),
            _ => None,
        }) else {
            return Ok(());
        };
        let action = match to {
            PermitStatus::Active => "activate the permit",
            PermitStatus::Closed => "close the permit",
            _ => return Ok(()),
        };
        let Some(summary) = self.summary_at(id)? else {
            return Ok(()); // the edit itself reports the unknown entity
        };
        if summary.entity_type != EntityType::Permit {
            return Ok(());
        }
        // only a legal move is interlocked: an illegal one is the workflow's
        // refusal, and writing the same status again changes nothing
        let from = summary
            .status
            .as_deref()
            .and_then(|s| s.parse::<PermitStatus>().ok());
        if !from.is_some_and(|from| from.can_transition_to(to)) {
            return Ok(());
        }
        let facts = self.permit_facts_at(id)?;
        check_transition(to, &facts, &self.inner.opts.interlocks)
            .map_err(|reasons| Error::Interlock { action, reasons })
    }

    /// What the interlocks of permit `id` depend on: its work type and gas
    /// readings, its isolation points (with descriptions) and closeouts, of
    /// the permit's own tenant and not deleted.
    pub fn permit_facts(&self, id: EntityId) -> Result<PermitFacts> {
        self.permit_facts_at(self.internal(id)?)
    }

    /// [`Store::permit_facts`] of the permit stored under `id`.
    fn permit_facts_at(&self, id: EntityId) -> Result<PermitFacts> {
        let (work_type, readings) = self.with_doc_at(id, |doc| {
            let (work_type, _) = doc.field("work_type");
            (
                work_type.as_str().unwrap_or("").to_string(),
                gas_readings(doc.history(), None),
            )
        })?;
        let mut facts = PermitFacts {
            work_type,
            readings,
            ..Default::default()
        };
        let owner = self.owner_at(id)?;
        for child in self.children_at(id)? {
            let Some(s) = self.summary_at(child)? else {
                continue;
            };
            if s.deleted || self.owner_at(child)? != owner {
                continue;
            }
            match s.entity_type {
                EntityType::IsolationPoint => {
                    let description = self.with_doc_at(child, |doc| {
                        doc.field("description")
                            .0
                            .as_str()
                            .unwrap_or("")
                            .to_string()
                    })?;
                    facts.isolation_points.push(IsolationFact {
                        description,
                        status: s
                            .status
                            .as_deref()
                            .and_then(|st| st.parse::<IsolationStatus>().ok()),
                    });
                }
                EntityType::Closeout => facts.closeouts.push(s.completed),
                EntityType::Permit => {}
            }
        }
        Ok(facts)
    }
}
