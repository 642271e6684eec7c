//! The view: the policy's reading of a document, as JSON.

use automerge::{Automerge, ReadDoc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::authorship::{authorship, Authorship};
use super::history::History;
use super::op::{OpRec, OpValue};
use super::rejection::Rejection;
use super::snapshot;
use super::validate::resolve_status;
use super::violations::{permit_violations, CrossRefs, Violation};
use crate::model::{EntityId, EntityType, FieldPolicy, IsolationStatus, PermitStatus, Schema};

/// Concurrent values of a last-writer-wins field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// The field.
    pub field: String,
    /// Every concurrent value, in op order (the winner last).
    pub values: Vec<Value>,
    /// The value shown (Automerge's winner).
    pub winner: Value,
    /// How to settle it (`last_write_wins`, `text_replace`, `immutable_first_write`).
    pub merge_hint: String,
}

/// The policy view of one entity: a pure function of its document's changes.
/// Two replicas holding the same changes render byte-identical JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The entity id.
    pub id: String,
    /// The entity type, or `null` for a document without a valid `type`.
    #[serde(rename = "type")]
    pub entity_type: Option<String>,
    /// The document's heads (hex), sorted.
    pub heads: Vec<String>,
    /// The entity's version: the number of changes the document holds. It
    /// grows with every change and is the same on every replica holding the
    /// same changes (the classic API's `client_version`).
    #[serde(default)]
    pub version: u64,
    /// The fields as the policies resolve them.
    pub fields: Map<String, Value>,
    /// Concurrent values of last-writer-wins fields.
    pub conflicts: Vec<Conflict>,
    /// Operations the policies turned into no-ops.
    pub rejected: Vec<Rejection>,
    /// Advisory rules that do not hold.
    pub violations: Vec<Violation>,
    /// Who created the entity and, for a permit, who submitted, approved
    /// and activated it, with how each was verified (docs/identity.md).
    #[serde(default)]
    pub authorship: Authorship,
}

impl View {
    /// The string value of a field, if it is one.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// The permit status, for a permit.
    pub fn permit_status(&self) -> Option<PermitStatus> {
        self.str_field("status")?.parse().ok()
    }

    /// The isolation status, for an isolation point.
    pub fn isolation_status(&self) -> Option<IsolationStatus> {
        self.str_field("status")?.parse().ok()
    }

    /// Whether the entity carries the `deleted` tombstone.
    pub fn is_deleted(&self) -> bool {
        self.fields.get("deleted").and_then(Value::as_bool) == Some(true)
    }

    /// The canonical JSON text (the form compared across replicas).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Render the view of `doc`, whose policy history is `h`.
/// One field as [`render`] shows it, with its conflict if it has one (a
/// write checks one field without rendering the whole view).
pub(crate) fn render_field(doc: &Automerge, h: &History, name: &str) -> (Value, Option<Conflict>) {
    let Some(ty) = h.entity_type() else {
        return (Value::Null, None);
    };
    let Some((_, policy)) = Schema::of(ty).fields().find(|(n, _)| *n == name) else {
        return (Value::Null, None);
    };
    let mut conflicts = Vec::new();
    let value = Reader { doc, h }.field(name, policy, &mut conflicts);
    (value, conflicts.pop())
}

pub(crate) fn render(id: EntityId, doc: &Automerge, h: &History, refs: &CrossRefs) -> View {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    let mut rejected: Vec<Rejection> = h.rejected.iter().map(|(_, r)| r.clone()).collect();
    rejected.sort_by(|a, b| (&a.change, a.op_index).cmp(&(&b.change, b.op_index)));
    let mut view = View {
        id: id.to_string(),
        entity_type: None,
        heads,
        version: h.change_count() as u64,
        fields: Map::new(),
        conflicts: Vec::new(),
        rejected,
        violations: Vec::new(),
        authorship: Authorship::default(),
    };
    let Some(ty) = h.entity_type() else {
        view.violations.push(Violation {
            rule: "missing_type".into(),
            detail: "the document has no valid type field".into(),
        });
        return view;
    };
    view.entity_type = Some(ty.as_str().to_string());
    let reader = Reader { doc, h };
    for (name, policy) in Schema::of(ty).fields() {
        let value = reader.field(name, policy, &mut view.conflicts);
        view.fields.insert(name.to_string(), value);
    }
    if ty == EntityType::Permit {
        let status = view.permit_status();
        let readings = snapshot::gas_readings(h, None);
        view.violations = permit_violations(status, &readings, refs);
    }
    view.authorship = authorship(doc, h, view.fields.get("created_by"));
    view
}

/// Reads fields of a document as their policies resolve them.
pub(super) struct Reader<'a> {
    pub(super) doc: &'a Automerge,
    pub(super) h: &'a History,
}

impl Reader<'_> {
    pub(super) fn field(
        &self,
        name: &str,
        policy: FieldPolicy,
        conflicts: &mut Vec<Conflict>,
    ) -> Value {
        let h = self.h;
        let key = h.root_key(name);
        let eff: Vec<&OpRec> = key
            .map(|k| h.effective(k, None))
            .unwrap_or_default()
            .into_iter()
            .map(|o| &h.ops[o as usize])
            .collect();
        match policy {
            FieldPolicy::Immutable(_) => {
                self.register(name, eff, "immutable_first_write", conflicts)
            }
            FieldPolicy::LastWriterWins => self.register(name, eff, "last_write_wins", conflicts),
            FieldPolicy::Text => self.register(name, eff, "text_replace", conflicts),
            FieldPolicy::TrueWins => {
                Value::Bool(eff.iter().any(|o| o.value.as_bool() == Some(true)))
            }
            FieldPolicy::Workflow => {
                let statuses = eff.iter().filter_map(|o| o.value.as_str()?.parse().ok());
                resolve_status(statuses)
                    .map(|s: PermitStatus| Value::String(s.to_string()))
                    .unwrap_or(Value::Null)
            }
            FieldPolicy::Monotonic => eff
                .iter()
                .filter_map(|o| o.value.as_str()?.parse::<IsolationStatus>().ok())
                .max()
                .map(|s| Value::String(s.to_string()))
                .unwrap_or(Value::Null),
            FieldPolicy::SetMerge => {
                Value::Array(h.items(name, None).into_keys().map(Value::String).collect())
            }
            FieldPolicy::TrueWinsMap => Value::Object(
                snapshot::true_wins_map(h, name, None)
                    .into_iter()
                    .map(|(k, v)| (k, Value::Bool(v)))
                    .collect(),
            ),
            FieldPolicy::AppendOnly(_) => {
                let mut entries = Map::new();
                for (id, ops) in h.items(name, None) {
                    let Some(entry) = ops
                        .iter()
                        .copied()
                        .max_by(|a, b| h.op_order(&h.ops[*a as usize], &h.ops[*b as usize]))
                    else {
                        continue;
                    };
                    let fields: Map<String, Value> = h
                        .entry_fields(entry, None)
                        .into_iter()
                        .map(|(k, op)| (k, self.value(op)))
                        .collect();
                    entries.insert(id, Value::Object(fields));
                }
                Value::Object(entries)
            }
        }
    }

    /// A register field (one value shown, concurrent values listed as a conflict).
    fn register(
        &self,
        name: &str,
        mut eff: Vec<&OpRec>,
        hint: &str,
        conflicts: &mut Vec<Conflict>,
    ) -> Value {
        eff.sort_by(|a, b| self.h.op_order(a, b));
        let values: Vec<Value> = eff.iter().map(|o| self.value(o)).collect();
        let Some(winner) = values.last().cloned() else {
            return Value::Null;
        };
        let all_same = values.iter().all(|v| *v == winner);
        if !all_same {
            conflicts.push(Conflict {
                field: name.to_string(),
                values: values.clone(),
                winner: winner.clone(),
                merge_hint: hint.to_string(),
            });
        }
        winner
    }

    /// The JSON value of an op: Text objects of free-text fields read as they are
    /// now; Text objects of fixed-value fields as of their creating change.
    fn value(&self, op: &OpRec) -> Value {
        match &op.value {
            OpValue::Text { snapshot } => {
                let fixed = matches!(
                    self.h.keys[op.key as usize].role,
                    super::history::KeyRole::Root(FieldPolicy::Immutable(_))
                        | super::history::KeyRole::EntryField(_)
                );
                if fixed {
                    return Value::String(snapshot.clone());
                }
                let id = self.h.op_id_string(op);
                match self
                    .doc
                    .import(&id)
                    .and_then(|(obj, _)| self.doc.text(&obj))
                {
                    Ok(text) => Value::String(text),
                    Err(_) => Value::String(snapshot.clone()),
                }
            }
            other => other.to_json(),
        }
    }
}
