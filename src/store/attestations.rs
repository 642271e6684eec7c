//! Attestations in the store: each document is judged by its tenant's
//! authority with the attestations held for its changes; attestations are
//! stored beside the changes (`att/`, with an `asr/` index by serial), taken
//! from peers, and made for this node's own writes.

use std::collections::btree_map::{BTreeMap, Entry};
use std::sync::Arc;

use automerge::ChangeHash;

use super::backend::BatchOp;
use super::cache::Slot;
use super::failure::storage;
use super::keys;
use super::store::Store;
use super::summary::Summary;
use crate::document::{EntityDoc, Unsaved};
use crate::error::Result;
use crate::identity::{Attestation, Signer};
use crate::model::{EntityId, DEFAULT_TENANT};
use crate::view::{attestation_slot, MAX_ATTESTATIONS_PER_CHANGE};

impl Store {
    /// The tenant whose authority judges the document stored under `id`: its
    /// owner, else the tenant of this handle's id space, else the tenant
    /// this store enrolled with, else the default. A document owned by the
    /// default tenant is one a node without tenants took in (a device
    /// serving its peers): an enrolled device judges it as its own tenant's.
    pub(super) fn judging_tenant(&self, id: EntityId) -> Result<String> {
        if let Some(owner) = self.owner_at(id)? {
            if owner != DEFAULT_TENANT {
                return Ok(owner);
            }
        }
        if let Some(t) = &self.tenant {
            return Ok(t.to_string());
        }
        Ok(self
            .inner
            .identity
            .home()?
            .unwrap_or_else(|| DEFAULT_TENANT.to_string()))
    }

    /// The tenant whose authority judges document `id` here (the tenant a
    /// bundle files its certificates and revocation list under).
    pub fn judging_tenant_of(&self, id: EntityId) -> Result<String> {
        self.judging_tenant(self.internal(id)?)
    }

    /// Judge `doc` (stored under `id`) by its tenant's authority, with the
    /// attestations stored for it. Nothing to do in a store that has no
    /// authority at all.
    pub(super) fn judge(&self, id: EntityId, doc: &mut EntityDoc) -> Result<()> {
        if !self.inner.identity.any_authority()? {
            return Ok(());
        }
        let tenant = self.judging_tenant(id)?;
        let authority = self
            .inner
            .identity
            .authority(self.inner.backend.as_ref(), &tenant)?;
        let held = self.stored_attestations(id)?;
        doc.set_authority(authority, held);
        Ok(())
    }

    /// The attestations stored for the document stored under `id`.
    fn stored_attestations(&self, id: EntityId) -> Result<Vec<Attestation>> {
        Ok(self
            .inner
            .backend
            .scan_prefix(&keys::attestation_prefix(id), None, usize::MAX)
            .map_err(storage)?
            .into_iter()
            .filter_map(|(_, v)| Attestation::from_bytes(&v).ok())
            .collect())
    }

    /// The attestations held for document `id`'s changes (to send to a peer
    /// or put in a bundle), in a stable order.
    pub fn attestations(&self, id: EntityId) -> Result<Vec<Attestation>> {
        let internal = self.internal(id)?;
        let mut atts = self.stored_attestations(internal)?;
        atts.sort_by_key(|a| a.to_bytes());
        Ok(atts)
    }

    /// The attestations held for some of document `id`'s changes.
    pub fn attestations_of_changes(
        &self,
        id: EntityId,
        changes: &[ChangeHash],
    ) -> Result<Vec<Attestation>> {
        let internal = self.internal(id)?;
        let mut out = Vec::new();
        for c in changes {
            let prefix = [keys::attestation_prefix(internal).as_slice(), &c.0].concat();
            for (_, v) in self
                .inner
                .backend
                .scan_prefix(&prefix, None, MAX_ATTESTATIONS_PER_CHANGE)
                .map_err(storage)?
            {
                if let Ok(a) = Attestation::from_bytes(&v) {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }

    /// Take attestations of document `id`'s changes from a peer or a bundle
    /// (whether or not the changes are here yet). Each is kept once, at most
    /// [`MAX_ATTESTATIONS_PER_CHANGE`] per change (`view::authority::hold`:
    /// the same whatever order they come in); what they change is judged
    /// again and the summary rewritten. Returns how many were new. Durable on
    /// return (on a deferring handle: once settled).
    pub fn add_attestations(&self, id: EntityId, atts: Vec<Attestation>) -> Result<usize> {
        if atts.is_empty() {
            return Ok(0);
        }
        let internal = self.internal(id)?;
        let slot = self.slot(internal)?;
        let mut g = self.lock_loaded(internal, &slot)?;
        let (added, mut batch) = match g.doc.as_mut() {
            Some(doc) => {
                let added = doc.attest(atts);
                let unsaved = doc.take_unsaved();
                (added, self.attestation_records(internal, &unsaved)?)
            }
            None => {
                // no change of it here yet: keep them for when they come,
                // by the rule a loaded document holds them by
                let mut lists: BTreeMap<ChangeHash, (Vec<Attestation>, Vec<Attestation>)> =
                    BTreeMap::new();
                for a in atts {
                    let (list, _) = match lists.entry(a.change) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(e) => {
                            let stored = self.stored_of_change(internal, &a.change)?;
                            e.insert((stored.clone(), stored))
                        }
                    };
                    crate::view::hold_attestation(list, a);
                }
                let mut unsaved = Unsaved::default();
                for (list, stored) in lists.into_values() {
                    let slots: Vec<_> = list.iter().map(attestation_slot).collect();
                    unsaved.dropped.extend(
                        stored
                            .iter()
                            .filter(|s| !slots.contains(&attestation_slot(s)))
                            .cloned(),
                    );
                    unsaved
                        .held
                        .extend(list.into_iter().filter(|a| !stored.contains(a)));
                }
                let records = self.attestation_records(internal, &unsaved)?;
                (unsaved.held.len(), records)
            }
        };
        if added == 0 {
            return Ok(0);
        }
        batch.extend(self.refreshed_summary(internal, &g)?);
        self.inner.backend.apply(batch).map_err(storage)?;
        drop(g);
        self.wait_durable()?;
        Ok(added)
    }

    /// The attestations stored for one change of the document stored
    /// under `id` (at most [`MAX_ATTESTATIONS_PER_CHANGE`] are).
    fn stored_of_change(&self, id: EntityId, change: &ChangeHash) -> Result<Vec<Attestation>> {
        let prefix = [keys::attestation_prefix(id).as_slice(), &change.0].concat();
        Ok(self
            .inner
            .backend
            .scan_prefix(&prefix, None, usize::MAX)
            .map_err(storage)?
            .into_iter()
            .filter_map(|(_, v)| Attestation::from_bytes(&v).ok())
            .collect())
    }

    /// The records of attestations of the document stored under `id`: the
    /// newly held written, the dropped deleted. (The by-serial index keeps
    /// a dropped one's entry: it only makes a revocation judge the
    /// document again.)
    pub(super) fn attestation_records(&self, id: EntityId, atts: &Unsaved) -> Result<Vec<BatchOp>> {
        if atts.held.is_empty() && atts.dropped.is_empty() {
            return Ok(Vec::new());
        }
        let tenant = self.judging_tenant(id)?;
        let mut batch = Vec::with_capacity(atts.held.len() * 2 + atts.dropped.len());
        for a in &atts.dropped {
            batch.push((keys::attestation(id, &a.change.0, &a.signature), None));
        }
        for a in &atts.held {
            batch.push((
                keys::attestation(id, &a.change.0, &a.signature),
                Some(a.to_bytes()),
            ));
            batch.push((keys::attested_by(&tenant, a.serial, id), Some(Vec::new())));
        }
        Ok(batch)
    }

    /// The summary record of the loaded document in `g` (stored under
    /// `id`) when its view's headline changed since it was written (a
    /// judgement changed, not the changes): same feed position.
    pub(super) fn refreshed_summary(&self, id: EntityId, g: &Slot) -> Result<Vec<BatchOp>> {
        let (Some(doc), Some(old)) = (g.doc.as_ref(), self.summary_at(id)?) else {
            return Ok(Vec::new());
        };
        let Some(ty) = doc.entity_type() else {
            return Ok(Vec::new());
        };
        let s = Summary::of(
            old.id,
            ty,
            &doc.headline(),
            doc.history().change_count(),
            old.feed_seq,
        );
        if s == old {
            return Ok(Vec::new());
        }
        let json =
            serde_json::to_vec(&s).map_err(|e| crate::error::Error::storage(e.to_string()))?;
        Ok(vec![(keys::entity(id), Some(json))])
    }

    /// What attests this handle's writes to the document stored under `id`:
    /// a relay writing for a token's device attests on its behalf; a store
    /// with its own valid certificate for the document's tenant signs;
    /// otherwise nothing does.
    pub(super) fn signer_for(&self, id: EntityId) -> Result<Option<Signer>> {
        if !self.inner.identity.any_authority()? {
            return Ok(None);
        }
        if let Some(delivery) = self.delivery_signer(id)? {
            return Ok(Some(delivery));
        }
        let tenant = self.judging_tenant(id)?;
        let now = self.inner.opts.clock.now_ms();
        match self.own_certificate(&tenant)? {
            Some(cert) if cert.certificate.valid_at(now) => Ok(Some(Signer::author(
                Arc::clone(self.inner.identity.key()),
                &cert.certificate,
            ))),
            _ => Ok(None),
        }
    }

    /// What attests, on this relay, the changes a token's device uploads
    /// into the document stored under `id` without a signature: `None`
    /// unless the handle writes for a token ([`Store::with_roles`]) and this
    /// store is the authority of the document's tenant.
    pub(super) fn delivery_signer(&self, id: EntityId) -> Result<Option<Signer>> {
        let (Some(device), Some(roles)) = (&self.acting_device, &self.acting_roles) else {
            return Ok(None);
        };
        let tenant = self.judging_tenant(id)?;
        if !self.inner.identity.is_authority_for(&tenant)? {
            return Ok(None);
        }
        let Some(relay) = self.own_certificate(&tenant)? else {
            return Ok(None);
        };
        Ok(Some(
            Signer::on_behalf(
                Arc::clone(self.inner.identity.key()),
                &relay.certificate,
                device.to_string(),
                (**roles).clone(),
            )
            .for_person(self.acting_person.as_deref().map(str::to_string)),
        ))
    }
}
