//! A small owned CBOR value, used for keys of `peerMetadata` that this
//! codec does not interpret itself (for example permitsync's extension
//! flags).

use std::collections::BTreeMap;

/// 2^63 as a float: the first integral `f64` that no longer fits an `i64`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// An owned CBOR data item, shaped like what a JavaScript peer can send.
///
/// Decoding maps CBOR `undefined` to [`Value::Null`], drops tags (a tag 64
/// typed array therefore becomes [`Value::Bytes`]), widens half and single
/// floats to `f64`, and turns integer map keys into their decimal text, the
/// way a JavaScript object would see them. Map keys of any other kind are
/// rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// CBOR `null` (also what `undefined` decodes to).
    Null,
    /// CBOR `true` / `false`.
    Bool(bool),
    /// A CBOR integer, in the range `-2^64 ..= 2^64 - 1`.
    ///
    /// Always encoded as a CBOR integer; a value outside that range (only
    /// constructible by hand) is encoded as the nearest `f64`. Note that the
    /// JavaScript decoder (cbor-x) turns 64-bit integer encodings, i.e. values
    /// beyond 32 bits, into `BigInt`.
    Int(i128),
    /// A floating point number, always encoded as a 64-bit float.
    Float(f64),
    /// A UTF-8 text string.
    Text(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map with text keys.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// The text, if this is [`Value::Text`].
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is [`Value::Int`] or an integral [`Value::Float`]
    /// that fits in an `i64` (JavaScript sends large integers as floats).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => i64::try_from(*i).ok(),
            Value::Float(f) if f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(f) => {
                Some(*f as i64)
            }
            _ => None,
        }
    }

    /// The map, if this is [`Value::Map`].
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// A short name of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Text(_) => "text string",
            Value::Bytes(_) => "byte string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i128::from(i))
    }
}

impl From<u64> for Value {
    fn from(i: u64) -> Self {
        Value::Int(i128::from(i))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(m: BTreeMap<String, Value>) -> Self {
        Value::Map(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        assert_eq!(Value::from(3u64).as_i64(), Some(3));
        assert_eq!(Value::Float(3.0).as_i64(), Some(3));
        assert_eq!(Value::Float(3.5).as_i64(), None);
        assert_eq!(Value::Float(f64::NAN).as_i64(), None);
        assert_eq!(Value::Float(1e300).as_i64(), None);
        assert_eq!(Value::Int(i128::from(u64::MAX)).as_i64(), None);
        assert_eq!(Value::from("x").as_text(), Some("x"));
        assert_eq!(Value::from(true).as_bool(), Some(true));
        assert_eq!(Value::Null.kind(), "null");
        assert!(Value::Map(BTreeMap::new()).as_map().is_some());
    }
}
