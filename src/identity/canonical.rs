//! Canonical bytes of signed objects: a domain prefix, then a definite-length
//! CBOR array whose fields come in a fixed order. The same object always
//! encodes to the same bytes, so a signature over them is checkable anywhere.

use std::convert::Infallible;

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use super::error::IdentityError;

/// What a signature is over. Each kind has its own prefix, so a signature of
/// one kind can never be presented as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Domain {
    /// A certificate, signed by a tenant authority.
    Certificate,
    /// A revocation list, signed by a tenant authority.
    RevocationList,
    /// "I wrote this change", signed by the change's author.
    AuthorAttestation,
    /// "Device D uploaded this change under roles R", signed by a relay.
    DeliveryAttestation,
    /// Which roles each policed operation needs, signed by a tenant authority.
    RoleTable,
}

impl Domain {
    fn prefix(self) -> &'static [u8] {
        match self {
            Domain::Certificate => b"permitsync/certificate/v1\0",
            Domain::RevocationList => b"permitsync/revocation-list/v1\0",
            Domain::AuthorAttestation => b"permitsync/author-attestation/v1\0",
            Domain::DeliveryAttestation => b"permitsync/delivery-attestation/v1\0",
            Domain::RoleTable => b"permitsync/role-table/v1\0",
        }
    }

    /// A name for errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Domain::Certificate => "certificate",
            Domain::RevocationList => "revocation list",
            Domain::AuthorAttestation => "author attestation",
            Domain::DeliveryAttestation => "delivery attestation",
            Domain::RoleTable => "role table",
        }
    }

    /// The bytes actually signed: the prefix, then the body.
    pub(crate) fn prefixed(self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix().len() + body.len());
        out.extend_from_slice(self.prefix());
        out.extend_from_slice(body);
        out
    }
}

/// A CBOR writer into memory (writing to a `Vec` cannot fail).
pub(crate) struct Writer(Encoder<Vec<u8>>);

type Never = minicbor::encode::Error<Infallible>;

fn infallible<T>(r: Result<T, Never>) -> T {
    // the only error a `Vec` writer could report is `Infallible`
    r.expect("writing CBOR to memory cannot fail")
}

impl Writer {
    pub(crate) fn array(len: u64) -> Writer {
        let mut w = Writer(Encoder::new(Vec::new()));
        infallible(w.0.array(len).map(|_| ()));
        w
    }
    pub(crate) fn u64(&mut self, x: u64) -> &mut Self {
        infallible(self.0.u64(x).map(|_| ()));
        self
    }
    pub(crate) fn i64(&mut self, x: i64) -> &mut Self {
        infallible(self.0.i64(x).map(|_| ()));
        self
    }
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        infallible(self.0.str(s).map(|_| ()));
        self
    }
    pub(crate) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => {
                infallible(self.0.null().map(|_| ()));
                self
            }
        }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        infallible(self.0.bytes(b).map(|_| ()));
        self
    }
    /// Start a nested array of `len` items.
    pub(crate) fn nested(&mut self, len: u64) -> &mut Self {
        infallible(self.0.array(len).map(|_| ()));
        self
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0.into_writer()
    }
}

/// A reader of canonical bytes; every error names the object being read.
pub(crate) struct Reader<'b> {
    d: Decoder<'b>,
    what: &'static str,
}

impl<'b> Reader<'b> {
    /// Start reading an array of exactly `len` items.
    pub(crate) fn array(
        bytes: &'b [u8],
        what: &'static str,
        len: u64,
    ) -> Result<Self, IdentityError> {
        let mut r = Reader {
            d: Decoder::new(bytes),
            what,
        };
        r.expect_array(len)?;
        Ok(r)
    }
    fn err(&self, e: impl ToString) -> IdentityError {
        IdentityError::malformed(self.what, e)
    }
    pub(crate) fn expect_array(&mut self, len: u64) -> Result<(), IdentityError> {
        match self.d.array().map_err(|e| self.err(e))? {
            Some(n) if n == len => Ok(()),
            other => Err(self.err(format!("expected an array of {len}, found {other:?}"))),
        }
    }
    /// A nested array's length, bounded by `max` before anything is read.
    pub(crate) fn array_len(&mut self, max: u64) -> Result<u64, IdentityError> {
        match self.d.array().map_err(|e| self.err(e))? {
            Some(n) if n <= max => Ok(n),
            other => Err(self.err(format!("array length {other:?} over {max}"))),
        }
    }
    pub(crate) fn u64(&mut self) -> Result<u64, IdentityError> {
        self.d.u64().map_err(|e| self.err(e))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, IdentityError> {
        self.d.i64().map_err(|e| self.err(e))
    }
    pub(crate) fn string(&mut self) -> Result<String, IdentityError> {
        self.d.str().map(str::to_string).map_err(|e| self.err(e))
    }
    pub(crate) fn opt_string(&mut self) -> Result<Option<String>, IdentityError> {
        if self.d.datatype().map_err(|e| self.err(e))? == Type::Null {
            self.d.null().map_err(|e| self.err(e))?;
            return Ok(None);
        }
        self.string().map(Some)
    }
    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], IdentityError> {
        let b = self.d.bytes().map_err(|e| self.err(e))?;
        b.try_into()
            .map_err(|_| self.err(format!("expected {N} bytes, found {}", b.len())))
    }
    pub(crate) fn bytes_vec(&mut self) -> Result<Vec<u8>, IdentityError> {
        self.d.bytes().map(<[u8]>::to_vec).map_err(|e| self.err(e))
    }
    /// Fail unless every byte was read.
    pub(crate) fn end(self) -> Result<(), IdentityError> {
        if self.d.position() == self.d.input().len() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}
