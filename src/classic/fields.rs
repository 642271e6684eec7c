//! Reading a classic change's `data` into typed inputs, and an entity's
//! state into the [`Snapshot`]s the plan compares.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{ChangeHash, ObjType, ReadDoc, Value as AmValue, ROOT};
use serde_json::{Map, Value};

use super::plan::{Input, Snapshot};
use crate::document::EntityDoc;
use crate::model::{EntityType, FieldPolicy, Schema};
use crate::view::{true_wins_map, BitSet, View};

/// Keys classic clients send along that are not fields (ignored).
pub const META_KEYS: [&str; 5] = ["id", "version", "updated_at", "server_id", "client_version"];

/// The typed inputs of an update's `data`. `status` is accepted when
/// `with_status` (the `update_status` op, and isolation points whose status
/// is part of an update).
pub fn parse_inputs(
    ty: EntityType,
    data: &Map<String, Value>,
    with_status: bool,
) -> Result<Vec<(String, Input)>, String> {
    let schema = Schema::of(ty);
    let mut out = Vec::new();
    for (key, value) in data {
        if META_KEYS.contains(&key.as_str()) {
            continue;
        }
        let Some((name, policy)) = schema.fields().find(|(n, _)| n == key) else {
            return Err(format!("a {ty} has no field {key}"));
        };
        let input = match policy {
            FieldPolicy::LastWriterWins => Input::Lww(string(key, value)?),
            FieldPolicy::Text => Input::Text(string(key, value)?),
            FieldPolicy::SetMerge => Input::Set(items(key, value)?),
            FieldPolicy::TrueWinsMap => Input::Checks(checks(key, value)?),
            FieldPolicy::TrueWins => match value {
                Value::Bool(b) => Input::Flag(*b),
                other => return Err(format!("{key} must be a boolean, got {other}")),
            },
            FieldPolicy::Workflow | FieldPolicy::Monotonic => {
                if !with_status {
                    return Err("a permit's status changes only through update_status".into());
                }
                Input::Status(string(key, value)?)
            }
            FieldPolicy::Immutable(_) => return Err(format!("{key} is immutable")),
            FieldPolicy::AppendOnly(_) => {
                return Err(format!(
                    "{key} is append-only: send permit_photo or gas_reading appends"
                ))
            }
        };
        out.push((name.to_string(), input));
    }
    if out.is_empty() {
        return Err("data holds no field to change".into());
    }
    Ok(out)
}

/// A string value.
pub fn string(key: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("{key} must be a string, got {other}")),
    }
}

/// The string `data[key]`, empty when absent or `null`.
pub fn optional_string(data: &Map<String, Value>, key: &str) -> Result<String, String> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v) => string(key, v),
    }
}

/// A set-merge value: a list of strings, or an object of item -> true.
pub fn items(key: &str, value: &Value) -> Result<BTreeSet<String>, String> {
    let bad = || format!("{key} must be a list of non-empty strings");
    match value {
        Value::Array(a) => a
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                _ => Err(bad()),
            })
            .collect(),
        Value::Object(o) => Ok(o
            .iter()
            .filter(|(_, v)| v.as_bool() == Some(true))
            .map(|(k, _)| k.clone())
            .collect()),
        _ => Err(bad()),
    }
}

/// A true-wins map: an object of item -> bool, or a list of ticked items.
pub fn checks(key: &str, value: &Value) -> Result<BTreeMap<String, bool>, String> {
    match value {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| match v {
                Value::Bool(b) if !k.trim().is_empty() => Ok((k.clone(), *b)),
                _ => Err(format!("{key}.{k} must be a boolean")),
            })
            .collect(),
        Value::Array(_) => Ok(items(key, value)?.into_iter().map(|i| (i, true)).collect()),
        _ => Err(format!("{key} must be an object of item -> boolean")),
    }
}

/// The entity's fields now, from its view.
pub fn snapshot_now(ty: EntityType, doc: &EntityDoc, view: &View) -> Snapshot {
    let mut s = Snapshot {
        text_objects: text_objects(ty, doc, None),
        ..Snapshot::default()
    };
    for (name, policy) in Schema::of(ty).fields() {
        let Some(value) = view.fields.get(name) else {
            continue;
        };
        match policy {
            FieldPolicy::LastWriterWins
            | FieldPolicy::Text
            | FieldPolicy::Workflow
            | FieldPolicy::Monotonic => {
                if let Some(v) = value.as_str() {
                    s.strings.insert(name.into(), v.into());
                }
            }
            FieldPolicy::SetMerge => {
                s.sets
                    .insert(name.into(), items(name, value).unwrap_or_default());
            }
            FieldPolicy::TrueWinsMap => {
                s.checks
                    .insert(name.into(), checks(name, value).unwrap_or_default());
            }
            FieldPolicy::TrueWins => {
                s.flags
                    .insert(name.into(), value.as_bool().unwrap_or(false));
            }
            FieldPolicy::Immutable(_) | FieldPolicy::AppendOnly(_) => {}
        }
    }
    s
}

/// The fields the plan compares with the client's (last-writer-wins strings,
/// texts, sets, true-wins maps and flags) as of `heads`, whose causal
/// closure is `past` ([`crate::view::History`]'s `closure`).
pub fn snapshot_at(
    ty: EntityType,
    doc: &EntityDoc,
    heads: &[ChangeHash],
    past: &BitSet,
) -> Snapshot {
    let h = doc.history();
    let mut s = Snapshot {
        text_objects: text_objects(ty, doc, Some(heads)),
        ..Snapshot::default()
    };
    for (name, policy) in Schema::of(ty).fields() {
        match policy {
            FieldPolicy::Text | FieldPolicy::LastWriterWins => {
                s.strings.insert(name.into(), text_at(doc, name, heads));
            }
            FieldPolicy::SetMerge => {
                s.sets
                    .insert(name.into(), h.items(name, Some(past)).into_keys().collect());
            }
            FieldPolicy::TrueWinsMap => {
                s.checks
                    .insert(name.into(), true_wins_map(h, name, Some(past)));
            }
            FieldPolicy::TrueWins => {
                let raw = doc.doc().get_all_at(ROOT, name, heads).unwrap_or_default();
                let on = raw
                    .iter()
                    .any(|(v, _)| matches!(v, AmValue::Scalar(s) if s.as_bool() == Some(true)));
                s.flags.insert(name.into(), on);
            }
            _ => {}
        }
    }
    s
}

/// The object id of each text field's Text object, now or as of `heads`.
fn text_objects(
    ty: EntityType,
    doc: &EntityDoc,
    heads: Option<&[ChangeHash]>,
) -> BTreeMap<String, String> {
    Schema::of(ty)
        .fields()
        .filter(|(_, p)| *p == FieldPolicy::Text)
        .filter_map(|(name, _)| {
            let found = match heads {
                Some(h) => doc.doc().get_at(ROOT, name, h),
                None => doc.doc().get(ROOT, name),
            };
            match found {
                Ok(Some((AmValue::Object(ObjType::Text), obj))) => {
                    Some((name.to_string(), obj.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

/// A string field's content as of `heads`, whether a scalar or a Text
/// object (empty when it had none).
pub fn text_at(doc: &EntityDoc, field: &str, heads: &[ChangeHash]) -> String {
    match doc.doc().get_at(ROOT, field, heads) {
        Ok(Some((AmValue::Object(ObjType::Text), obj))) => {
            doc.doc().text_at(&obj, heads).unwrap_or_default()
        }
        Ok(Some((AmValue::Scalar(s), _))) => s.as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}
