//! Low-level CBOR over minicbor: a bounded reader into [`Value`] (on its
//! [`Decoder`]) and a small writer (on its [`Encoder`]).
//!
//! The reader never allocates from a length header: containers and strings
//! grow only as their contents are actually read, so a header that claims
//! 2^64 entries fails with [`DecodeError::Truncated`] at the end of the
//! input. Nesting depth and the total number of data items are capped.

use std::collections::BTreeMap;
use std::convert::Infallible;

use minicbor::data::{Int, Type};
use minicbor::{encode, Decoder, Encoder};

use super::{DecodeError, Value};

/// Deepest nesting of arrays, maps and tags accepted (the top-level map is
/// level 1).
pub(super) const MAX_DEPTH: usize = 32;

/// Most data items (counting every key, value and array element) accepted in
/// one frame. This bounds the memory a small frame full of tiny items can
/// make the decoder allocate.
pub(super) const MAX_ITEMS: usize = 100_000;

/// Largest integer a JavaScript number holds exactly (2^53).
const JS_MAX_SAFE: u64 = 1 << 53;

/// Parses exactly one CBOR data item that must fill all of `bytes`.
pub(super) fn parse(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = Reader {
        d: Decoder::new(bytes),
        items: 0,
    };
    let value = reader.item(1)?;
    let rest = bytes.len().saturating_sub(reader.d.position());
    if rest > 0 {
        return Err(DecodeError::TrailingBytes(rest));
    }
    Ok(value)
}

struct Reader<'b> {
    d: Decoder<'b>,
    items: usize,
}

impl Reader<'_> {
    fn item(&mut self, depth: usize) -> Result<Value, DecodeError> {
        self.items += 1;
        if self.items > MAX_ITEMS {
            return Err(DecodeError::TooManyItems { max: MAX_ITEMS });
        }
        let start = self.d.position();
        match self.d.datatype()? {
            Type::Bool => Ok(Value::Bool(self.d.bool()?)),
            Type::Null => {
                self.d.null()?;
                Ok(Value::Null)
            }
            Type::Undefined => {
                self.d.undefined()?;
                Ok(Value::Null)
            }
            Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::I8
            | Type::I16
            | Type::I32
            | Type::I64
            | Type::Int => Ok(Value::Int(i128::from(self.d.int()?))),
            Type::F16 | Type::F32 | Type::F64 => Ok(Value::Float(self.d.f64()?)),
            Type::Simple => {
                let n = self.d.simple()?;
                Err(DecodeError::Unsupported(format!(
                    "simple value {n} at offset {start}"
                )))
            }
            Type::Bytes | Type::BytesIndef => {
                let mut out = Vec::new();
                for chunk in self.d.bytes_iter()? {
                    out.extend_from_slice(chunk?);
                }
                Ok(Value::Bytes(out))
            }
            Type::String | Type::StringIndef => {
                let mut out = String::new();
                for chunk in self.d.str_iter()? {
                    out.push_str(chunk?);
                }
                Ok(Value::Text(out))
            }
            Type::Array | Type::ArrayIndef => {
                enter(depth)?;
                let len = self.d.array()?;
                let mut out = Vec::new();
                self.each(len, |r| {
                    out.push(r.item(depth + 1)?);
                    Ok(())
                })?;
                Ok(Value::Array(out))
            }
            Type::Map | Type::MapIndef => {
                enter(depth)?;
                let len = self.d.map()?;
                let mut out = BTreeMap::new();
                self.each(len, |r| {
                    let key = r.key(depth + 1)?;
                    let value = r.item(depth + 1)?;
                    // Like a JavaScript object, a repeated key keeps the last value.
                    out.insert(key, value);
                    Ok(())
                })?;
                Ok(Value::Map(out))
            }
            // Tags are dropped: tag 64 (a JavaScript Uint8Array) around a
            // byte string leaves the byte string, and so on.
            Type::Tag => {
                enter(depth)?;
                self.d.tag()?;
                self.item(depth + 1)
            }
            Type::Break => Err(DecodeError::Malformed(format!(
                "unexpected break code at offset {start}"
            ))),
            Type::Unknown(b) => Err(DecodeError::Malformed(format!(
                "reserved initial byte 0x{b:02x} at offset {start}"
            ))),
        }
    }

    /// Reads a map key: text, or an integer turned into its decimal text.
    fn key(&mut self, depth: usize) -> Result<String, DecodeError> {
        let start = self.d.position();
        match self.item(depth)? {
            Value::Text(s) => Ok(s),
            Value::Int(i) => Ok(i.to_string()),
            other => Err(DecodeError::Unsupported(format!(
                "map key of type {} at offset {start}",
                other.kind()
            ))),
        }
    }

    /// Calls `f` once per element of a definite (`Some(n)`) or indefinite
    /// (`None`, ended by a break code) container.
    fn each(
        &mut self,
        len: Option<u64>,
        mut f: impl FnMut(&mut Self) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        match len {
            // Every element takes at least one byte, so a bogus length runs
            // out of input (Truncated) after at most `input.len()` rounds.
            Some(n) => {
                for _ in 0..n {
                    f(self)?;
                }
            }
            None => loop {
                if self.d.datatype()? == Type::Break {
                    self.d.set_position(self.d.position() + 1);
                    break;
                }
                f(self)?;
            },
        }
        Ok(())
    }
}

/// Refuses a container (or tag) nested deeper than [`MAX_DEPTH`].
fn enter(depth: usize) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep { max: MAX_DEPTH });
    }
    Ok(())
}

/// Appends CBOR to a buffer, through minicbor's [`Encoder`]. Containers are
/// always definite-length and heads use the shortest form (as the encoder
/// writes them). Writing to a `Vec` cannot fail, so nothing here returns an
/// error.
pub(super) struct Writer {
    e: Encoder<Vec<u8>>,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            e: Encoder::new(Vec::new()),
        }
    }
}

/// Drops the result of an encoder call. The encoder's only error is its
/// writer's, and a `Vec`'s `write_all` is infallible.
fn wrote<T>(_: Result<T, encode::Error<Infallible>>) {}

impl Writer {
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.e.into_writer()
    }

    pub(super) fn map(&mut self, len: usize) {
        wrote(self.e.map(len as u64));
    }

    pub(super) fn array(&mut self, len: usize) {
        wrote(self.e.array(len as u64));
    }

    pub(super) fn text(&mut self, s: &str) {
        wrote(self.e.str(s));
    }

    pub(super) fn bytes(&mut self, b: &[u8]) {
        wrote(self.e.bytes(b));
    }

    pub(super) fn bool(&mut self, b: bool) {
        wrote(self.e.bool(b));
    }

    /// Always the 64-bit form, whatever fewer bits would hold.
    pub(super) fn f64(&mut self, f: f64) {
        wrote(self.e.f64(f));
    }

    /// Writes a count or timestamp the way cbor-x would send a JavaScript
    /// number: an integer up to 32 bits, else a 64-bit float while exact
    /// (up to 2^53). cbor-x decodes 64-bit integer encodings to `BigInt`,
    /// which JavaScript arithmetic on numbers rejects. Larger values, which
    /// no float holds exactly, are written as 64-bit integers.
    pub(super) fn js_number(&mut self, n: u64) {
        if n <= u64::from(u32::MAX) || n > JS_MAX_SAFE {
            wrote(self.e.u64(n));
        } else {
            self.f64(n as f64);
        }
    }

    pub(super) fn text_array(&mut self, items: &[String]) {
        self.array(items.len());
        for item in items {
            self.text(item);
        }
    }

    /// Writes a `key: text` map entry.
    pub(super) fn entry(&mut self, key: &str, value: &str) {
        self.text(key);
        self.text(value);
    }

    /// Writes a [`Value`]: an integer outside CBOR's range (`-2^64 ..
    /// 2^64`) as a 64-bit float rather than a bignum, which JavaScript
    /// peers would not read as a number.
    pub(super) fn value(&mut self, value: &Value) {
        match value {
            Value::Null => wrote(self.e.null()),
            Value::Bool(b) => self.bool(*b),
            Value::Int(i) => match Int::try_from(*i) {
                Ok(n) => wrote(self.e.int(n)),
                Err(_) => self.f64(*i as f64),
            },
            Value::Float(f) => self.f64(*f),
            Value::Text(s) => self.text(s),
            Value::Bytes(b) => self.bytes(b),
            Value::Array(items) => {
                self.array(items.len());
                for item in items {
                    self.value(item);
                }
            }
            Value::Map(entries) => {
                self.map(entries.len());
                for (k, v) in entries {
                    self.text(k);
                    self.value(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(v: &Value) -> Vec<u8> {
        let mut w = Writer::default();
        w.value(v);
        w.into_bytes()
    }

    #[test]
    fn heads_use_shortest_form() {
        let cases: [(i128, &[u8]); 8] = [
            (0, &[0x00]),
            (23, &[0x17]),
            (24, &[0x18, 24]),
            (256, &[0x19, 1, 0]),
            (65_536, &[0x1a, 0, 1, 0, 0]),
            (1 << 32, &[0x1b, 0, 0, 0, 1, 0, 0, 0, 0]),
            (-1, &[0x20]),
            (
                -(1 << 64),
                &[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ];
        for (n, bytes) in cases {
            assert_eq!(write(&Value::Int(n)), bytes, "{n}");
            assert_eq!(parse(bytes), Ok(Value::Int(n)));
        }
        // Outside CBOR's integer range: written as a float.
        assert_eq!(write(&Value::Int(1 << 70))[0], 0xfb);
    }

    #[test]
    fn js_numbers() {
        let mut w = Writer::default();
        w.js_number(5);
        w.js_number(1_700_000_000_000);
        w.js_number(u64::MAX);
        let b = w.into_bytes();
        assert_eq!(b[0], 0x05);
        assert_eq!(b[1], 0xfb);
        assert_eq!(&b[2..10], &1_700_000_000_000f64.to_be_bytes());
        assert_eq!(b[10], 0x1b);
    }

    #[test]
    fn half_floats() -> Result<(), DecodeError> {
        assert_eq!(parse(&[0xf9, 0x3c, 0x00])?, Value::Float(1.0));
        assert_eq!(parse(&[0xf9, 0x42, 0x00])?, Value::Float(3.0));
        assert_eq!(parse(&[0xf9, 0xc0, 0x00])?, Value::Float(-2.0));
        assert_eq!(parse(&[0xf9, 0x00, 0x01])?, Value::Float(2f64.powi(-24)));
        assert_eq!(parse(&[0xf9, 0x7c, 0x00])?, Value::Float(f64::INFINITY));
        assert!(matches!(parse(&[0xf9, 0x7e, 0x00])?, Value::Float(f) if f.is_nan()));
        assert_eq!(parse(&[0xf9, 0x3c]), Err(DecodeError::Truncated));
        Ok(())
    }

    #[test]
    fn indefinite_items_and_tags() -> Result<(), DecodeError> {
        // (_ h'01', h'0203') inside tag 64, and (_ "a", "b")
        let bytes = [0xd8, 0x40, 0x5f, 0x41, 1, 0x42, 2, 3, 0xff];
        assert_eq!(parse(&bytes)?, Value::Bytes(vec![1, 2, 3]));
        assert_eq!(
            parse(&[0x7f, 0x61, b'a', 0x61, b'b', 0xff])?,
            Value::Text("ab".into())
        );
        // [_ 1, {_ 2: undefined}] with an integer key
        let v = parse(&[0x9f, 0x01, 0xbf, 0x02, 0xf7, 0xff, 0xff])?;
        let map = BTreeMap::from([("2".to_string(), Value::Null)]);
        assert_eq!(v, Value::Array(vec![Value::Int(1), Value::Map(map)]));
        Ok(())
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse(&[]), Err(DecodeError::Truncated));
        assert_eq!(parse(&[0x01, 0x02]), Err(DecodeError::TrailingBytes(1)));
        assert!(matches!(parse(&[0xff]), Err(DecodeError::Malformed(_))));
        assert!(matches!(parse(&[0x1c]), Err(DecodeError::Malformed(_))));
        assert!(matches!(parse(&[0xe0]), Err(DecodeError::Unsupported(_))));
        // map key that is an array
        assert!(matches!(
            parse(&[0xa1, 0x80, 0x01]),
            Err(DecodeError::Unsupported(_))
        ));
        // invalid UTF-8 text
        assert!(matches!(
            parse(&[0x62, 0xc3, 0x28]),
            Err(DecodeError::Malformed(_))
        ));
        // headers that claim enormous lengths, with nothing behind them
        for header in [
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x7a, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert!(parse(header).is_err(), "{header:?}");
        }
    }

    #[test]
    fn limits_depth_and_items() {
        let deep = [vec![0x81; MAX_DEPTH], vec![0x00]].concat();
        assert!(parse(&deep).is_ok());
        let too_deep = [vec![0x81; MAX_DEPTH], vec![0x80]].concat();
        assert_eq!(
            parse(&too_deep),
            Err(DecodeError::TooDeep { max: MAX_DEPTH })
        );
        // Tags count as nesting too.
        let tags = [vec![0xc6; 1000], vec![0x00]].concat();
        assert_eq!(parse(&tags), Err(DecodeError::TooDeep { max: MAX_DEPTH }));
        let mut many = vec![0x9a, 0x00, 0x02, 0x00, 0x00]; // array of 131072
        many.resize(many.len() + 131_072, 0x00);
        assert_eq!(
            parse(&many),
            Err(DecodeError::TooManyItems { max: MAX_ITEMS })
        );
    }
}
