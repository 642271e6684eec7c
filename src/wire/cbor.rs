//! Low-level CBOR: a bounded reader into [`Value`] and a small writer.
//!
//! The reader never allocates from a length header: containers and strings
//! grow only as their contents are actually read, so a header that claims
//! 2^64 entries fails with [`DecodeError::Truncated`] at the end of the
//! input. Nesting depth and the total number of data items are capped.

use std::collections::BTreeMap;

use minicbor::data::Type;
use minicbor::Decoder;

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
            Type::F16 => self.half().map(Value::Float),
            Type::F32 | Type::F64 => Ok(Value::Float(self.d.f64()?)),
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

    /// Reads a half-precision float (initial byte 0xf9) without the `half`
    /// crate.
    fn half(&mut self) -> Result<f64, DecodeError> {
        let pos = self.d.position();
        let bits: [u8; 2] = self
            .d
            .input()
            .get(pos + 1..pos + 3)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated)?;
        self.d.set_position(pos + 3);
        Ok(f16_to_f64(u16::from_be_bytes(bits)))
    }
}

/// Refuses a container (or tag) nested deeper than [`MAX_DEPTH`].
fn enter(depth: usize) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep { max: MAX_DEPTH });
    }
    Ok(())
}

/// Converts IEEE 754 binary16 bits to an `f64` (exactly).
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x03ff);
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mantissa / 1024.0) * 2f64.powi(e - 15),
    };
    sign * magnitude
}

/// Appends CBOR to a buffer. Writing to a `Vec` cannot fail, so nothing here
/// returns an error. Containers are always definite-length and heads use the
/// shortest form.
#[derive(Default)]
pub(super) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        if arg < 24 {
            self.buf.push(m | arg as u8);
        } else if let Ok(a) = u8::try_from(arg) {
            self.buf.extend_from_slice(&[m | 24, a]);
        } else if let Ok(a) = u16::try_from(arg) {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&a.to_be_bytes());
        } else if let Ok(a) = u32::try_from(arg) {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&a.to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&arg.to_be_bytes());
        }
    }

    pub(super) fn map(&mut self, len: usize) {
        self.head(5, len as u64);
    }

    pub(super) fn array(&mut self, len: usize) {
        self.head(4, len as u64);
    }

    pub(super) fn text(&mut self, s: &str) {
        self.head(3, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.head(2, b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(super) fn bool(&mut self, b: bool) {
        self.buf.push(if b { 0xf5 } else { 0xf4 });
    }

    pub(super) fn f64(&mut self, f: f64) {
        self.buf.push(0xfb);
        self.buf.extend_from_slice(&f.to_be_bytes());
    }

    /// Writes a count or timestamp the way cbor-x would send a JavaScript
    /// number: an integer up to 32 bits, else a 64-bit float while exact
    /// (up to 2^53). cbor-x decodes 64-bit integer encodings to `BigInt`,
    /// which JavaScript arithmetic on numbers rejects. Larger values, which
    /// no float holds exactly, are written as 64-bit integers.
    pub(super) fn js_number(&mut self, n: u64) {
        if n <= u64::from(u32::MAX) || n > JS_MAX_SAFE {
            self.head(0, n);
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

    pub(super) fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.buf.push(0xf6),
            Value::Bool(b) => self.bool(*b),
            Value::Int(i) => {
                if let Ok(n) = u64::try_from(*i) {
                    self.head(0, n);
                } else if let Ok(n) = u64::try_from(-1 - *i) {
                    self.head(1, n);
                } else {
                    self.f64(*i as f64);
                }
            }
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
