//! One operation on a policed key, as the view keeps it.

use automerge::ScalarValue;

/// Index of an operation in [`super::History`].
pub(crate) type OpIdx = u32;
/// Index of a change in [`super::History`].
pub(crate) type ChangeIdx = u32;
/// Index of a key in [`super::History`].
pub(crate) type KeyIdx = u32;

/// What an operation wrote.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum OpValue {
    /// A scalar put.
    Scalar(ScalarValue),
    /// A new Text object; `snapshot` is its content as of the creating change.
    Text { snapshot: String },
    /// A new map (or table) object.
    Map,
    /// A new list object (no field of the schema holds one).
    List,
    /// A delete of the key.
    Delete,
}

impl OpValue {
    /// The string this value holds, when it is a string (a scalar or a Text
    /// object as of its creating change).
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            OpValue::Scalar(ScalarValue::Str(s)) => Some(s.as_str()),
            OpValue::Text { snapshot } => Some(snapshot),
            _ => None,
        }
    }

    /// The number this value holds, accepting every numeric encoding clients use.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            OpValue::Scalar(ScalarValue::Int(i)) => Some(*i as f64),
            OpValue::Scalar(ScalarValue::Uint(u)) => Some(*u as f64),
            OpValue::Scalar(ScalarValue::F64(f)) if f.is_finite() => Some(*f),
            OpValue::Scalar(ScalarValue::Timestamp(t)) => Some(*t as f64),
            OpValue::Scalar(ScalarValue::Counter(c)) => Some(i64::from(c) as f64),
            _ => None,
        }
    }

    /// The value as milliseconds since the epoch, for timestamp fields.
    pub(crate) fn as_millis(&self) -> Option<i64> {
        match self {
            OpValue::Scalar(ScalarValue::Timestamp(t)) | OpValue::Scalar(ScalarValue::Int(t)) => {
                Some(*t)
            }
            OpValue::Scalar(ScalarValue::Uint(u)) => i64::try_from(*u).ok(),
            OpValue::Scalar(ScalarValue::F64(f)) if f.is_finite() => Some(f.round() as i64),
            _ => None,
        }
    }

    /// The boolean this value holds.
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            OpValue::Scalar(ScalarValue::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    /// The value as JSON, for the view's `rejected` list and for scalar fields.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            OpValue::Scalar(s) => scalar_to_json(s),
            OpValue::Text { snapshot } => Value::String(snapshot.clone()),
            OpValue::Map => Value::String("<map>".into()),
            OpValue::List => Value::String("<list>".into()),
            OpValue::Delete => Value::Null,
        }
    }

    /// A short description of the value's type for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            OpValue::Scalar(s) => match s {
                ScalarValue::Bytes(_) => "bytes",
                ScalarValue::Str(_) => "string",
                ScalarValue::Int(_) => "int",
                ScalarValue::Uint(_) => "uint",
                ScalarValue::F64(_) => "f64",
                ScalarValue::Counter(_) => "counter",
                ScalarValue::Timestamp(_) => "timestamp",
                ScalarValue::Boolean(_) => "boolean",
                ScalarValue::Unknown { .. } => "unknown",
                ScalarValue::Null => "null",
            },
            OpValue::Text { .. } => "text",
            OpValue::Map => "map",
            OpValue::List => "list",
            OpValue::Delete => "delete",
        }
    }
}

/// A scalar as JSON: strings, numbers and booleans as themselves, bytes as hex.
pub(crate) fn scalar_to_json(s: &ScalarValue) -> serde_json::Value {
    use serde_json::Value;
    match s {
        ScalarValue::Str(s) => Value::String(s.to_string()),
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Value::from(*i),
        ScalarValue::Uint(u) => Value::from(*u),
        ScalarValue::F64(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ScalarValue::Counter(c) => Value::from(i64::from(c)),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        ScalarValue::Bytes(b) => Value::String(hex::encode(b)),
        ScalarValue::Unknown { .. } | ScalarValue::Null => Value::Null,
    }
}

/// An operation on a policed key.
#[derive(Clone, Debug)]
pub(crate) struct OpRec {
    /// Lamport counter of the op id.
    pub counter: u64,
    /// Actor index (into the history's actor table).
    pub actor: u32,
    /// The change that carried it.
    pub change: ChangeIdx,
    /// The key it writes.
    pub key: KeyIdx,
    /// The ops it overwrote: Automerge's `pred`, plus delete tombstones on the same
    /// key in its causal past (Automerge does not list those).
    pub pred: Vec<OpIdx>,
    /// What it wrote.
    pub value: OpValue,
    /// Whether the view accepted it (policy and schema).
    pub valid: bool,
    /// Its effective set `E`: `[self]` when valid, `[]` for a valid delete, and
    /// the effective set of `pred` when invalid (seen through, not superseded).
    pub eff: Vec<OpIdx>,
    /// The valid ops that supersede this one: those whose `E(pred)` holds it
    /// (they overwrote it, directly or through invalid ops).
    pub superseded_by: Vec<OpIdx>,
}
