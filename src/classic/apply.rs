//! Applying a classic client's queued changes: each becomes an Automerge
//! change through the validated write path, is answered as applied, a
//! conflict or rejected, and is recorded so a repeat is answered
//! `already_applied`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutomergeError, ChangeHash, ObjType, ReadDoc, Value as AmValue, ROOT};
use serde_json::{json, Value};
use uuid::Uuid;

use super::fields::{optional_string, parse_inputs, snapshot_at, snapshot_now, META_KEYS};
use super::payload::{
    AppliedItem, ClassicChange, ConflictItem, Outcome, RejectedItem, SyncRequest, SyncResponse,
};
use super::plan::plan;
use super::refusal::{invalid, refusal_of, rejected};
use super::versions::{heads_at_version, version_record};
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::model::{EntityId, EntityType};
use crate::store::{keys, BatchOp, Store};
use crate::view::BitSet;
use crate::write::{self, ChangeNote, Edit, NewGasReading, NewPermit, NewPhoto, WriteCtx};

/// Namespace of the ids earlier versions derived from `(tenant, device,
/// offline_id)` when a client created a permit without choosing its id: a
/// public formula, so anyone could compute another tenant's ids. Kept only to
/// finish a create begun under it (see `derived_permit_id`).
const LEGACY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5f0e_4c1d_9a57_4a0b_b3e2_7c1f_a2d4_9e61);

/// Namespace of the keys of gas readings and photos a classic client appends
/// without choosing one: keys inside the tenant's own permit, which no other
/// tenant can write, so a public derivation names nothing anyone could take.
const ENTRY_NAMESPACE: Uuid = LEGACY_ID_NAMESPACE;

/// Apply a classic client's batch for `tenant`. `store` writes as the
/// client's device. Storage failures end the batch with an error (changes
/// before it stay applied and recorded; the client retries and gets
/// `already_applied` for them); everything else is answered per change.
///
/// A device's batches are applied one at a time (a retry sent while the
/// first attempt is still running waits for it, then finds its record), so a
/// change is never applied twice and `already_applied` is only answered for
/// a durable change.
pub fn sync_offline_data(store: &Store, tenant: &str, req: &SyncRequest) -> Result<SyncResponse> {
    if req.device_id.contains('\0') {
        return Err(Error::InvalidInput("device_id must not contain NUL".into()));
    }
    let lock = device_lock(tenant, &req.device_id);
    let _serialized = lock
        .lock()
        .map_err(|_| Error::storage("a classic batch lock was poisoned by a panicking thread"))?;
    // one flush for the batch: the writes only note what they owe, and
    // nothing is answered before the handle is settled
    let store = &store.deferring();
    let client = Client {
        store,
        tenant,
        device: &req.device_id,
    };
    let mut response = SyncResponse::default();
    for raw in &req.changes {
        response.push(client.apply(raw)?);
    }
    store.settle()?;
    response.summary.server_time = store.ctx().now_ms;
    Ok(response)
}

/// The lock of one (tenant, device)'s batches. Entries stay for the life of
/// the process: one small mutex per device that ever synced.
fn device_lock(tenant: &str, device: &str) -> Arc<Mutex<()>> {
    type Locks = HashMap<(String, String), Arc<Mutex<()>>>;
    static LOCKS: LazyLock<Mutex<Locks>> = LazyLock::new(Default::default);
    let mut locks = LOCKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    locks
        .entry((tenant.to_string(), device.to_string()))
        .or_default()
        .clone()
}

struct Client<'a> {
    store: &'a Store,
    tenant: &'a str,
    device: &'a str,
}

/// Every string in `v` (values and keys).
fn json_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| json_strings(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k);
                json_strings(v, out);
            }
        }
        _ => {}
    }
}

impl Client<'_> {
    fn apply(&self, raw: &Value) -> Result<Outcome> {
        let text = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
        let change: ClassicChange = match serde_json::from_value(raw.clone()) {
            Ok(c) => c,
            Err(e) => {
                return Ok(Outcome::Rejected(RejectedItem {
                    entity: text("entity"),
                    offline_id: text("offline_id"),
                    server_id: text("server_id"),
                    reason: "validation_error",
                    detail: format!("malformed change: {e}"),
                }))
            }
        };
        if change.offline_id.trim().is_empty() {
            return Ok(rejected(&change, invalid("offline_id must not be empty")));
        }
        if change.offline_id.contains('\0') || change.entity.contains('\0') {
            return Ok(rejected(
                &change,
                invalid("offline_id and entity must not contain NUL"),
            ));
        }
        let record_key =
            keys::classic_applied(self.tenant, self.device, &change.entity, &change.offline_id);
        if let Some(bytes) = self.store.get_record(&record_key)? {
            if let Ok(mut seen) = serde_json::from_slice::<AppliedItem>(&bytes) {
                seen.status = "already_applied".into();
                seen.merged.clear();
                return Ok(Outcome::Applied(seen));
            }
        }
        match self.dispatch(&change, record_key) {
            Ok(outcome) => Ok(outcome),
            Err(e) => refusal_of(e).map(|refusal| rejected(&change, refusal)),
        }
    }

    fn dispatch(&self, change: &ClassicChange, record_key: Vec<u8>) -> Result<Outcome> {
        // what the write will cost (each character of text is an operation),
        // before anything is written
        let mut strings = Vec::new();
        for v in change.data.values() {
            json_strings(v, &mut strings);
        }
        self.store.cost_limits().check_strings(strings)?;
        match (change.entity.as_str(), change.op.as_str()) {
            ("permit", "create") => self.create_permit(change, record_key),
            ("permit", "update") => self.update(change, EntityType::Permit, false, record_key),
            ("permit", "update_status") => {
                self.update(change, EntityType::Permit, true, record_key)
            }
            ("isolation_point", "update") => {
                self.update(change, EntityType::IsolationPoint, true, record_key)
            }
            ("closeout", "update") => self.update(change, EntityType::Closeout, false, record_key),
            ("permit_photo", "append") | ("gas_reading", "append") => {
                self.append(change, record_key)
            }
            (entity, op) => Err(Error::InvalidInput(format!(
                "unsupported change: entity {entity:?} with op {op:?} (permit: create, \
                 update, update_status; permit_photo, gas_reading: append; \
                 isolation_point, closeout: update)"
            ))),
        }
    }

    fn note(&self, change: &ClassicChange) -> ChangeNote {
        ChangeNote {
            device: self.device.to_string(),
            via: Some("classic".into()),
            offline_id: Some(change.offline_id.clone()),
            resolve: None,
        }
    }

    /// The tenant's entity of type `ty` named by `raw`, or a refusal.
    fn entity(&self, raw: Option<&str>, ty: EntityType) -> Result<EntityId> {
        let Some(raw) = raw else {
            return Err(Error::InvalidInput("server_id is required".into()));
        };
        let id: EntityId = raw
            .parse()
            .map_err(|_| Error::InvalidInput(format!("server_id {raw:?} is not a UUID")))?;
        let summary = self
            .store
            .visible_summary(id, self.tenant)?
            .ok_or(Error::UnknownEntity(id))?;
        if summary.entity_type != ty {
            return Err(Error::WrongType {
                id,
                expected: ty,
                actual: summary.entity_type,
            });
        }
        Ok(id)
    }

    fn applied(
        &self,
        change: &ClassicChange,
        id: EntityId,
        doc: &EntityDoc,
        merged: std::collections::BTreeMap<String, super::plan::FieldMerge>,
        record_key: Vec<u8>,
    ) -> Result<(Outcome, Vec<BatchOp>)> {
        let new_version = doc.history().change_count() as u64;
        let item = AppliedItem {
            entity: change.entity.clone(),
            offline_id: change.offline_id.clone(),
            server_id: id.to_string(),
            new_version,
            status: "applied".into(),
            merged,
        };
        let mut record = item.clone();
        record.merged.clear();
        let bytes = serde_json::to_vec(&record).map_err(|e| Error::storage(e.to_string()))?;
        let extra = vec![
            (record_key, Some(bytes)),
            version_record(self.store, id, new_version, &doc.heads())?,
        ];
        Ok((Outcome::Applied(item), extra))
    }

    fn update(
        &self,
        change: &ClassicChange,
        ty: EntityType,
        with_status: bool,
        record_key: Vec<u8>,
    ) -> Result<Outcome> {
        let id = self.entity(change.server_id.as_deref(), ty)?;
        let Some(client_version) = change.client_version else {
            return Ok(Outcome::Rejected(RejectedItem {
                entity: Some(change.entity.clone()),
                offline_id: Some(change.offline_id.clone()),
                server_id: Some(id.to_string()),
                reason: "missing_client_version",
                detail: format!(
                    "an {} needs the client_version the client last saw",
                    change.op
                ),
            }));
        };
        if with_status && ty == EntityType::Permit {
            let keys: Vec<&String> = change
                .data
                .keys()
                .filter(|k| !META_KEYS.contains(&k.as_str()))
                .collect();
            if keys != ["status"] {
                return Err(Error::InvalidInput(
                    "update_status takes data {\"status\": ...} only".into(),
                ));
            }
        }
        let inputs = parse_inputs(ty, &change.data, with_status).map_err(Error::InvalidInput)?;
        if let Some(status) = change.data.get("status").and_then(|s| s.as_str()) {
            // the interlocks read other documents: judged before this one is locked
            self.store
                .check_interlocks(id, &[Edit::SetStatus(status.to_string())])?;
        }
        let store = self.store;
        store.transact(id, Some(self.note(change)), |doc, ctx| {
            let version = doc.history().change_count() as u64;
            if client_version > version {
                return Err(Error::InvalidInput(format!(
                    "client_version {client_version} is newer than the entity's version {version}"
                )));
            }
            let view = doc.view(&Default::default());
            let now = snapshot_now(ty, doc, &view);
            let current = client_version == version;
            let base = if current {
                doc.heads()
            } else {
                heads_at_version(store, id, client_version)?
            };
            // a client at the current version saw everything: nothing to merge
            let (then, others) = if current {
                (now.clone(), BTreeSet::new())
            } else {
                let past = doc.history().closure(&base);
                (
                    snapshot_at(ty, doc, &base, &past),
                    written_by_others(doc, &past, self.device),
                )
            };
            match plan(&inputs, &then, &now, &others) {
                Err(fields) => {
                    let mut state = Value::Object(view.fields.clone());
                    state["version"] = json!(version);
                    let conflict = ConflictItem {
                        entity: change.entity.clone(),
                        offline_id: change.offline_id.clone(),
                        server_id: id.to_string(),
                        reason: "stale_version",
                        client_version,
                        server_version: version,
                        fields,
                        server_state: state,
                    };
                    let extra = vec![version_record(store, id, version, &doc.heads())?];
                    Ok((Outcome::Conflict(Box::new(conflict)), extra))
                }
                Ok(p) => {
                    for (field, text) in &p.text_merges {
                        merge_text(doc, &base, field, text, ctx)?;
                    }
                    if !p.edits.is_empty() {
                        write::apply_edits(doc, &p.edits, ctx)?;
                    }
                    self.applied(change, id, doc, p.merged, record_key)
                }
            }
        })
    }

    fn create_permit(&self, change: &ClassicChange, record_key: Vec<u8>) -> Result<Outcome> {
        let d = &change.data;
        let get = |k: &str| optional_string(d, k).map_err(Error::InvalidInput);
        let title = get("title")?;
        if title.trim().is_empty() {
            return Err(Error::InvalidInput("a permit needs a title".into()));
        }
        if let Some(status) = d.get("status") {
            if status != "draft" {
                return Err(Error::InvalidInput(
                    "a permit is created as draft; move it with update_status".into(),
                ));
            }
        }
        let allowed = [
            "title",
            "location",
            "work_type",
            "description",
            "ppe_requirements",
            "safety_checklist",
            "status",
            "id",
        ];
        if let Some(k) = d
            .keys()
            .find(|k| !allowed.contains(&k.as_str()) && !META_KEYS.contains(&k.as_str()))
        {
            return Err(Error::InvalidInput(format!(
                "a permit is created with {}; not {k}",
                allowed[..6].join(", ")
            )));
        }
        let ppe = match d.get("ppe_requirements") {
            Some(v) => super::fields::items("ppe_requirements", v).map_err(Error::InvalidInput)?,
            None => Default::default(),
        };
        let checklist = match d.get("safety_checklist") {
            Some(v) => super::fields::checks("safety_checklist", v).map_err(Error::InvalidInput)?,
            None => Default::default(),
        };
        let id = match change
            .server_id
            .as_deref()
            .or(d.get("id").and_then(Value::as_str))
        {
            Some(raw) => raw
                .parse()
                .map_err(|_| Error::InvalidInput(format!("server_id {raw:?} is not a UUID")))?,
            None => self.derived_permit_id(&change.offline_id)?,
        };
        let note = self.note(change);
        match self.store.summary(id)? {
            Some(_) => {
                // a create this device made before its record was written (a
                // crash in between): finish it; anyone else's: refuse
                let own =
                    self.store
                        .created_by(id, self.tenant, EntityType::Permit, self.device)?;
                if !own {
                    return Err(Error::InvalidInput(format!("entity {id} already exists")));
                }
            }
            None => {
                if !self.store.claim(id, self.tenant)? {
                    return Err(Error::InvalidInput(format!("entity {id} already exists")));
                }
                let mut ctx = self.store.ctx();
                ctx.note = Some(note.clone());
                let new = NewPermit {
                    id: Some(id),
                    title,
                    location: get("location")?,
                    work_type: get("work_type")?,
                    description: get("description")?,
                    ppe_requirements: ppe.into_iter().collect(),
                    safety_checklist: checklist.keys().cloned().collect(),
                };
                self.store.create_with(
                    write::NewEntityRef::Permit(&new),
                    Some(id),
                    &ctx,
                    Vec::new(),
                )?;
            }
        }
        let ticks: Vec<Edit> = checklist
            .into_iter()
            .filter(|(_, ticked)| *ticked)
            .map(|(item, _)| Edit::Tick {
                field: "safety_checklist".into(),
                item,
                ticked: true,
            })
            .collect();
        self.store.transact(id, Some(note), |doc, ctx| {
            if !ticks.is_empty() {
                write::apply_edits(doc, &ticks, ctx)?;
            }
            self.applied(change, id, doc, Default::default(), record_key)
        })
    }

    fn append(&self, change: &ClassicChange, record_key: Vec<u8>) -> Result<Outcome> {
        let d = &change.data;
        let permit_ref = match change
            .server_id
            .as_deref()
            .or(d.get("permit_id").and_then(Value::as_str))
        {
            Some(raw) => raw.to_string(),
            None => self.permit_of_offline_id(d.get("permit_offline_id"))?,
        };
        let id = self.entity(Some(&permit_ref), EntityType::Permit)?;
        let entry_id = match d.get("id").and_then(Value::as_str) {
            Some(raw) => raw
                .parse::<Uuid>()
                .map_err(|_| Error::InvalidInput(format!("id {raw:?} is not a UUID")))?,
            None => Uuid::new_v5(
                &ENTRY_NAMESPACE,
                format!("{}\0{}\0{}", self.device, change.entity, change.offline_id).as_bytes(),
            ),
        };
        let num = |k: &str| -> Result<f64> {
            d.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| Error::InvalidInput(format!("{k} must be a number")))
        };
        let text = |k: &str| optional_string(d, k).map_err(Error::InvalidInput);
        let taken_at = match d.get("taken_at") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                Error::InvalidInput("taken_at must be milliseconds since the epoch".into())
            })?),
        };
        let edit = if change.entity == "gas_reading" {
            Edit::AddGasReading(NewGasReading {
                id: Some(entry_id),
                gas: text("gas")?,
                value: num("value")?,
                unit: text("unit")?,
                min: num("min")?,
                max: num("max")?,
                taken_at,
            })
        } else {
            Edit::AddPhoto(NewPhoto {
                id: Some(entry_id),
                sha256: text("sha256")?,
                mime: text("mime")?,
                size: match d.get("size") {
                    None | Some(Value::Null) => 0,
                    Some(v) => v.as_u64().ok_or_else(|| {
                        Error::InvalidInput("size must be a whole number of bytes".into())
                    })?,
                },
                caption: text("caption")?,
                taken_at,
            })
        };
        self.store
            .transact(id, Some(self.note(change)), |doc, ctx| {
                write::apply_edits(doc, std::slice::from_ref(&edit), ctx)?;
                self.applied(change, id, doc, Default::default(), record_key)
            })
    }

    /// The id of the permit this device creates with `offline_id`: keyed with
    /// the store's secret ([`Store::keyed_id`]), so that no other tenant can
    /// compute it and create it first. Ids already handed out stay: a create
    /// with a record answers from it before this runs, and a create an older
    /// version began under its public UUIDv5 but did not record (a crash in
    /// between) is finished under that id.
    fn derived_permit_id(&self, offline_id: &str) -> Result<EntityId> {
        let legacy = EntityId::from(Uuid::new_v5(
            &LEGACY_ID_NAMESPACE,
            format!("{}\0{}\0{}", self.tenant, self.device, offline_id).as_bytes(),
        ));
        if self
            .store
            .created_by(legacy, self.tenant, EntityType::Permit, self.device)?
        {
            return Ok(legacy);
        }
        self.store
            .keyed_id(&["classic-permit", self.tenant, self.device, offline_id])
    }

    /// The permit this device created with `offline_id` (a photo or reading
    /// queued before the client learned the permit's id).
    fn permit_of_offline_id(&self, offline_id: Option<&Value>) -> Result<String> {
        let Some(offline_id) = offline_id.and_then(Value::as_str) else {
            return Err(Error::InvalidInput(
                "an append needs server_id (the permit's id), data.permit_id or \
                 data.permit_offline_id"
                    .into(),
            ));
        };
        let key = keys::classic_applied(self.tenant, self.device, "permit", offline_id);
        let record = self
            .store
            .get_record(&key)?
            .and_then(|b| serde_json::from_slice::<AppliedItem>(&b).ok())
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "no permit created by this device with offline_id {offline_id:?}"
                ))
            })?;
        Ok(record.server_id)
    }
}

/// Paths of policed keys that devices other than `device` wrote (validly)
/// after `base`. Changes without a permitsync note (other Automerge clients)
/// count as someone else's.
fn written_by_others(doc: &EntityDoc, past: &BitSet, device: &str) -> BTreeSet<String> {
    let mut mine: HashMap<ChangeHash, bool> = HashMap::new();
    doc.history()
        .writes_outside(past)
        .into_iter()
        .filter(|w| w.valid)
        .filter(|w| {
            !*mine.entry(w.change).or_insert_with(|| {
                doc.doc()
                    .get_change_by_hash(&w.change)
                    .and_then(|c| c.message().and_then(ChangeNote::parse))
                    .is_some_and(|n| n.device == device)
            })
        })
        .map(|w| w.path)
        .collect()
}

/// Merge a client's new text, written against `base`, with what others wrote
/// since: the edit is made on a fork of the document at `base` (Automerge
/// diffs the client's text against the text there) and merged back, so
/// concurrent character edits interleave instead of overwriting each other.
fn merge_text(
    doc: &mut EntityDoc,
    base: &[ChangeHash],
    field: &str,
    text: &str,
    ctx: &WriteCtx,
) -> Result<()> {
    let mut fork = doc.doc().fork_at(base)?;
    // a fork writes as a new actor: the node's own may have written after base
    fork.set_actor(ActorId::random());
    let Some((AmValue::Object(ObjType::Text), obj)) = fork.get(ROOT, field)? else {
        return Err(Error::InvalidInput(format!(
            "{field} held no text at the client's version"
        )));
    };
    let opts = CommitOptions::default()
        .with_time(ctx.now_ms / 1000)
        .with_message(ctx.message());
    fork.transact_with::<_, _, AutomergeError, _>(|_| opts, |tx| tx.update_text(&obj, text))
        .map_err(|f| Error::Automerge(f.error))?;
    let changes = fork.get_changes(base);
    if let Some(signer) = &ctx.signer {
        doc.attest_with(signer, changes.iter().map(|c| c.hash()));
    }
    doc.apply_changes(changes)?;
    Ok(())
}
