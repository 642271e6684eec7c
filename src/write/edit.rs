//! Edits to an existing entity.

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{AutomergeError, ChangeHash, ObjId, ObjType, ScalarValue, ROOT};
use uuid::Uuid;

use super::{put_text, WriteCtx};
use crate::document::EntityDoc;
use crate::error::{Error, Result};
use crate::identity::Authorization;
use crate::model::{EntryField, EntrySchema, FieldPolicy, Schema};
use crate::view::{LocalTarget, OpValue, RejectReason, Rejection};

/// A new gas reading. `id` and `taken_at` default to a fresh UUID and now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewGasReading {
    /// Reading id (the key in `gas_readings`); a fresh UUID when `None`.
    pub id: Option<Uuid>,
    /// The gas, e.g. `H2S`.
    pub gas: String,
    /// Measured value.
    pub value: f64,
    /// Unit, e.g. `ppm`.
    pub unit: String,
    /// Lowest acceptable value.
    pub min: f64,
    /// Highest acceptable value.
    pub max: f64,
    /// When taken (ms since epoch); now when `None`.
    pub taken_at: Option<i64>,
}

/// New photo metadata (the blob itself is stored by content hash elsewhere).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewPhoto {
    /// Photo id (the key in `photos`); a fresh UUID when `None`.
    pub id: Option<Uuid>,
    /// Hex SHA-256 of the image bytes.
    pub sha256: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Caption.
    pub caption: String,
    /// When taken (ms since epoch); now when `None`.
    pub taken_at: Option<i64>,
}

/// An edit to an existing entity.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Set a last-writer-wins string field (`title`, `location`, `work_type`).
    SetField {
        /// The field.
        field: String,
        /// The new value.
        value: String,
    },
    /// Replace the content of a Text field (`description`, `notes`); the edit is
    /// stored as character-level changes, so concurrent edits merge.
    SetText {
        /// The field.
        field: String,
        /// The new content.
        text: String,
    },
    /// Move the status: the permit workflow, or the isolation point's status.
    SetStatus(String),
    /// Add an item to a set-merge field (`ppe_requirements`, `lock_ids`).
    AddItem {
        /// The field.
        field: String,
        /// The item.
        item: String,
    },
    /// Remove an item from a set-merge field.
    RemoveItem {
        /// The field.
        field: String,
        /// The item.
        item: String,
    },
    /// Set a checklist item (`safety_checklist`, `checklist`); a new item is added.
    Tick {
        /// The field.
        field: String,
        /// The item.
        item: String,
        /// Ticked or not.
        ticked: bool,
    },
    /// Set a true-wins flag (`completed`).
    SetFlag {
        /// The field.
        field: String,
        /// The value.
        value: bool,
    },
    /// Append a gas reading to a permit.
    AddGasReading(NewGasReading),
    /// Append photo metadata to a permit.
    AddPhoto(NewPhoto),
    /// Mark the entity deleted (a true-wins tombstone).
    Delete,
}

/// One primitive write of an edit.
enum Write {
    Root(&'static str, Value),
    Item(&'static str, String, Value),
    Entry(&'static str, String, Vec<(EntryField, ScalarValue)>),
    Text(&'static str, String),
}

#[derive(Clone)]
enum Value {
    Scalar(ScalarValue),
    Delete,
}

impl Value {
    fn op_value(&self) -> OpValue {
        match self {
            Value::Scalar(s) => OpValue::Scalar(s.clone()),
            Value::Delete => OpValue::Delete,
        }
    }
}

/// Apply `edits` to `doc` as one change: validate, commit, and verify the view
/// accepted it. Returns the new change's hash, or `None` when nothing changed.
///
/// On `Err(Error::Rejected)` after the commit (the view disagreed with the
/// pre-check, which would be a bug) the caller must discard `doc`.
pub(crate) fn apply_edits(
    doc: &mut EntityDoc,
    edits: &[Edit],
    ctx: &WriteCtx,
) -> Result<Option<ChangeHash>> {
    let ty = doc.entity_type().ok_or(Error::UntypedDocument(doc.id()))?;
    let schema = Schema::of(ty);
    let mut writes = Vec::new();
    for edit in edits {
        writes.extend(plan(doc, &schema, edit, ctx)?);
    }
    if writes.is_empty() {
        return Ok(None);
    }
    let unsigned = Authorization::unverified();
    let author = ctx.signer.as_ref().map_or(&unsigned, |s| s.acting());
    for w in &writes {
        check(doc, w, author)?;
    }
    let before = doc.heads();
    // the effective objects the writes go into, resolved before the transaction
    let history_objects: Vec<Option<(ObjId, OpValue)>> = writes
        .iter()
        .map(|w| match w {
            Write::Item(f, ..) | Write::Entry(f, ..) | Write::Text(f, _) => {
                let (id, value) = doc.history().effective_object(f)?;
                let (obj, _) = doc.doc().import(&id).ok()?;
                Some((obj, value))
            }
            Write::Root(..) => None,
        })
        .collect();
    let opts = CommitOptions::default()
        .with_time(ctx.now_ms / 1000)
        .with_message(ctx.message());
    let result = doc
        .doc_mut()
        .transact_with::<_, _, AutomergeError, _>(
            |_| opts,
            |tx| {
                for (w, existing) in writes.iter().zip(&history_objects) {
                    perform(tx, w, existing.as_ref())?;
                }
                Ok(())
            },
        )
        .map_err(|f| Error::Automerge(f.error))?;
    let Some(hash) = result.hash else {
        return Ok(None);
    };
    // attested before the history judges it, so it is judged once
    if let Some(signer) = &ctx.signer {
        doc.attest_with(signer, [hash]);
    }
    doc.catch_up(&before);
    if let Some(r) = doc.history().rejections_in(&hash).into_iter().next() {
        return Err(Error::Rejected(Box::new(r)));
    }
    Ok(Some(hash))
}

fn schema_field(
    schema: &Schema,
    field: &str,
    want: fn(&FieldPolicy) -> bool,
    what: &str,
) -> Result<&'static str> {
    match schema.fields().find(|(n, _)| *n == field) {
        Some((name, p)) if want(&p) => Ok(name),
        Some(_) => Err(Error::InvalidInput(format!(
            "field {field} of a {} is not {what}",
            schema.entity_type()
        ))),
        None => Err(Error::InvalidInput(format!(
            "a {} has no field {field}",
            schema.entity_type()
        ))),
    }
}

fn non_empty(what: &str, s: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Err(Error::InvalidInput(format!("{what} must not be empty")));
    }
    Ok(())
}

fn plan(doc: &EntityDoc, schema: &Schema, edit: &Edit, ctx: &WriteCtx) -> Result<Vec<Write>> {
    let h = doc.history();
    let str_value = |s: &str| Value::Scalar(ScalarValue::Str(s.into()));
    Ok(match edit {
        Edit::SetField { field, value } => {
            let f = schema_field(
                schema,
                field,
                |p| *p == FieldPolicy::LastWriterWins,
                "a plain string field",
            )?;
            let (current, conflict) = doc.field(f);
            if conflict.is_none() && current.as_str() == Some(value.as_str()) {
                return Ok(Vec::new());
            }
            vec![Write::Root(f, str_value(value))]
        }
        Edit::SetText { field, text } => {
            let f = schema_field(schema, field, |p| *p == FieldPolicy::Text, "a text field")?;
            vec![Write::Text(f, text.clone())]
        }
        Edit::SetStatus(status) => {
            let f = schema_field(
                schema,
                "status",
                |p| matches!(p, FieldPolicy::Workflow | FieldPolicy::Monotonic),
                "a status",
            )?;
            if doc.field("status").0.as_str() == Some(status.as_str()) {
                return Ok(Vec::new());
            }
            vec![Write::Root(f, str_value(status))]
        }
        Edit::AddItem { field, item } | Edit::RemoveItem { field, item } => {
            let f = schema_field(schema, field, |p| *p == FieldPolicy::SetMerge, "a set")?;
            non_empty("item", item)?;
            let present = h.items(f, None).contains_key(item.as_str());
            match (edit, present) {
                (Edit::AddItem { .. }, false) => {
                    vec![Write::Item(
                        f,
                        item.clone(),
                        Value::Scalar(ScalarValue::Boolean(true)),
                    )]
                }
                (Edit::RemoveItem { .. }, true) => {
                    vec![Write::Item(f, item.clone(), Value::Delete)]
                }
                _ => Vec::new(),
            }
        }
        Edit::Tick {
            field,
            item,
            ticked,
        } => {
            let f = schema_field(
                schema,
                field,
                |p| *p == FieldPolicy::TrueWinsMap,
                "a checklist",
            )?;
            non_empty("item", item)?;
            let current = crate::view::true_wins_map(h, f, None)
                .get(item.as_str())
                .copied();
            if current == Some(*ticked) {
                return Ok(Vec::new());
            }
            vec![Write::Item(
                f,
                item.clone(),
                Value::Scalar(ScalarValue::Boolean(*ticked)),
            )]
        }
        Edit::SetFlag { field, value } => {
            let f = schema_field(schema, field, |p| *p == FieldPolicy::TrueWins, "a flag")?;
            vec![Write::Root(f, Value::Scalar(ScalarValue::Boolean(*value)))]
        }
        Edit::Delete => vec![Write::Root(
            "deleted",
            Value::Scalar(ScalarValue::Boolean(true)),
        )],
        Edit::AddGasReading(r) => {
            let (f, schema) = append_field(schema, "gas_readings")?;
            non_empty("gas", &r.gas)?;
            if !(r.value.is_finite() && r.min.is_finite() && r.max.is_finite()) || r.min > r.max {
                return Err(Error::InvalidInput(format!(
                    "gas reading needs finite numbers and min <= max (got value {}, range [{}, {}])",
                    r.value, r.min, r.max
                )));
            }
            let values = vec![
                ScalarValue::Str(r.gas.as_str().into()),
                ScalarValue::F64(r.value),
                ScalarValue::Str(r.unit.as_str().into()),
                ScalarValue::F64(r.min),
                ScalarValue::F64(r.max),
                ScalarValue::Timestamp(r.taken_at.unwrap_or(ctx.now_ms)),
                ScalarValue::Str(ctx.device.as_str().into()),
            ];
            idempotent_entry(doc, f, schema, r.id, values)?
        }
        Edit::AddPhoto(p) => {
            let (f, schema) = append_field(schema, "photos")?;
            let hex_ok = p.sha256.len() == 64 && p.sha256.chars().all(|c| c.is_ascii_hexdigit());
            if !hex_ok {
                return Err(Error::InvalidInput(format!(
                    "photo sha256 must be 64 hex digits, got {:?}",
                    p.sha256
                )));
            }
            let values = vec![
                ScalarValue::Str(p.sha256.to_ascii_lowercase().into()),
                ScalarValue::Str(p.mime.as_str().into()),
                ScalarValue::Uint(p.size),
                ScalarValue::Str(p.caption.as_str().into()),
                ScalarValue::Timestamp(p.taken_at.unwrap_or(ctx.now_ms)),
            ];
            idempotent_entry(doc, f, schema, p.id, values)?
        }
    })
}

/// An append-only entry, idempotent by key: writing the same entry again is a
/// no-op; the same key with other values is refused (append-only).
fn idempotent_entry(
    doc: &EntityDoc,
    field: &'static str,
    schema: EntrySchema,
    id: Option<Uuid>,
    values: Vec<ScalarValue>,
) -> Result<Vec<Write>> {
    let Some(id) = id else {
        return Ok(vec![entry(field, schema, None, values)]);
    };
    let (entries, _) = doc.field(field);
    let Some(existing) = entries.get(id.to_string()) else {
        return Ok(vec![entry(field, schema, Some(id), values)]);
    };
    let same = schema.fields.iter().zip(&values).all(|(f, v)| {
        let want = OpValue::Scalar(v.clone()).to_json();
        match (existing.get(f.name), &want) {
            (Some(serde_json::Value::Number(a)), serde_json::Value::Number(b)) => {
                a.as_f64() == b.as_f64()
            }
            (Some(a), b) => a == b,
            (None, _) => false,
        }
    });
    if same {
        Ok(Vec::new())
    } else {
        Err(rejected(
            &format!("{field}.{id}"),
            &OpValue::Map,
            RejectReason::AppendOnly,
        ))
    }
}

fn append_field(schema: &Schema, field: &str) -> Result<(&'static str, EntrySchema)> {
    let f = schema_field(
        schema,
        field,
        |p| matches!(p, FieldPolicy::AppendOnly(_)),
        "append-only",
    )?;
    match schema.policy(f) {
        Some(FieldPolicy::AppendOnly(s)) => Ok((f, s)),
        _ => Err(Error::InvalidInput(format!("{field} is not append-only"))),
    }
}

fn entry(
    field: &'static str,
    schema: EntrySchema,
    id: Option<Uuid>,
    values: Vec<ScalarValue>,
) -> Write {
    let id = id.unwrap_or_else(Uuid::new_v4).to_string();
    let fields = schema.fields.iter().copied().zip(values).collect();
    Write::Entry(field, id, fields)
}

fn rejected(field: &str, value: &OpValue, reason: RejectReason) -> Error {
    Error::Rejected(Box::new(Rejection {
        change: String::new(),
        actor: String::new(),
        field: field.to_string(),
        value: value.to_json(),
        reason: reason.code().to_string(),
        detail: reason.detail(field),
        kind: Some(reason),
        op_index: 0,
    }))
}

/// Check a write before it is made: the policy must accept it, and `author`
/// must hold a role it needs (when the document is judged by an authority).
fn check(doc: &EntityDoc, w: &Write, author: &Authorization) -> Result<()> {
    let h = doc.history();
    let run = |target: LocalTarget<'_>, path: &str, v: &OpValue| {
        h.check_local(&target, v)
            .and_then(|()| h.authorize_local(&target, v, author))
            .map_err(|r| rejected(path, v, r))
    };
    match w {
        Write::Root(f, v) => run(LocalTarget::Root(f), f, &v.op_value()),
        Write::Item(f, item, v) => run(
            LocalTarget::Item { field: f, item },
            &format!("{f}.{item}"),
            &v.op_value(),
        ),
        Write::Entry(f, id, fields) => {
            run(
                LocalTarget::Item { field: f, item: id },
                &format!("{f}.{id}"),
                &OpValue::Map,
            )?;
            for (spec, v) in fields {
                let path = format!("{f}.{id}.{}", spec.name);
                run(
                    LocalTarget::EntryField(*spec),
                    &path,
                    &OpValue::Scalar(v.clone()),
                )?;
            }
            Ok(())
        }
        Write::Text(f, _) => run(
            LocalTarget::Root(f),
            f,
            &OpValue::Text {
                snapshot: String::new(),
            },
        ),
    }
}

/// The object a write goes into: the effective container, created if missing.
fn container(
    tx: &mut Transaction<'_>,
    field: &str,
    existing: Option<&(ObjId, OpValue)>,
) -> Result<ObjId, AutomergeError> {
    match existing {
        Some((id, OpValue::Map)) => Ok(id.clone()),
        _ => tx.put_object(ROOT, field, ObjType::Map),
    }
}

fn perform(
    tx: &mut Transaction<'_>,
    w: &Write,
    existing: Option<&(ObjId, OpValue)>,
) -> Result<(), AutomergeError> {
    match w {
        Write::Root(f, Value::Scalar(ScalarValue::Str(v))) => put_text(tx, ROOT, *f, v),
        Write::Root(f, Value::Scalar(v)) => tx.put(ROOT, *f, v.clone()),
        Write::Root(f, Value::Delete) => tx.delete(ROOT, *f),
        Write::Item(f, item, v) => {
            let obj = container(tx, f, existing)?;
            match v {
                Value::Scalar(v) => tx.put(&obj, item.as_str(), v.clone()),
                Value::Delete => tx.delete(&obj, item.as_str()),
            }
        }
        Write::Entry(f, id, fields) => {
            let obj = container(tx, f, existing)?;
            let e = tx.put_object(&obj, id.as_str(), ObjType::Map)?;
            for (spec, v) in fields {
                match v {
                    ScalarValue::Str(text) => put_text(tx, &e, spec.name, text)?,
                    v => tx.put(&e, spec.name, v.clone())?,
                }
            }
            Ok(())
        }
        Write::Text(f, text) => match existing {
            Some((obj, OpValue::Text { .. })) => tx.update_text(obj, text),
            _ => {
                let obj = tx.put_object(ROOT, *f, ObjType::Text)?;
                tx.splice_text(&obj, 0, 0, text)
            }
        },
    }
}
