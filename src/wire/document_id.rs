//! Automerge document identifiers and their bs58check text form.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The scheme prefix of an automerge URL (`automerge:<document id>`).
pub const URL_PREFIX: &str = "automerge:";

/// Longest text form we attempt to decode.
///
/// 16 payload bytes plus a 4 byte checksum take at most 28 base58 digits.
/// Base58 decoding costs time quadratic in the input length, so hostile
/// input is cut off long before the decoder runs.
const MAX_TEXT_LEN: usize = 64;

/// Identifier of an automerge document: 16 bytes (a UUID, usually v4).
///
/// On the wire and in URLs it is written as bs58check: the base58 (bitcoin
/// alphabet) encoding of the 16 bytes followed by the first four bytes of
/// `sha256(sha256(bytes))`. [`fmt::Display`] and [`FromStr`] use that form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId(Uuid);

/// Why a text, byte string or URL is not a valid [`DocumentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentIdError {
    /// The input was empty.
    #[error("document id is empty")]
    Empty,
    /// The text is far longer than any bs58check encoding of 16 bytes.
    #[error("document id text is {len} characters long; at most {max} are accepted")]
    TooLong {
        /// Length of the rejected text in bytes.
        len: usize,
        /// The maximum accepted length.
        max: usize,
    },
    /// The text is not base58 (bitcoin alphabet).
    #[error("document id is not valid base58: {0}")]
    InvalidBase58(String),
    /// The trailing four checksum bytes do not match the payload.
    #[error("document id checksum does not match its payload")]
    BadChecksum,
    /// The payload is not exactly 16 bytes long.
    #[error("document id must be 16 bytes, got {0}")]
    WrongLength(usize),
    /// A URL without the `automerge:` prefix.
    #[error("not an automerge URL: expected the prefix `automerge:`")]
    NotAnAutomergeUrl,
}

impl DocumentId {
    /// Wraps a UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// Builds an id from its 16 raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }

    /// Builds an id from a byte slice, which must be exactly 16 bytes long.
    ///
    /// # Errors
    ///
    /// [`DocumentIdError::WrongLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DocumentIdError> {
        let array: [u8; 16] = bytes
            .try_into()
            .map_err(|_| DocumentIdError::WrongLength(bytes.len()))?;
        Ok(Self::from_bytes(array))
    }

    /// The 16 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id as a UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Parses an automerge URL such as `automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu`.
    ///
    /// Newer automerge-repo versions may append `#head1|head2` to pin a
    /// version of the document; that suffix is accepted and ignored here,
    /// since it does not change which document is meant.
    ///
    /// # Errors
    ///
    /// [`DocumentIdError::NotAnAutomergeUrl`] without the prefix, otherwise
    /// whatever [`FromStr`] reports for the id.
    pub fn from_url(url: &str) -> Result<Self, DocumentIdError> {
        let rest = url
            .strip_prefix(URL_PREFIX)
            .ok_or(DocumentIdError::NotAnAutomergeUrl)?;
        let id = match rest.split_once('#') {
            Some((id, _heads)) => id,
            None => rest,
        };
        id.parse()
    }

    /// The automerge URL of this document: `automerge:<bs58check>`.
    pub fn to_url(&self) -> String {
        format!("{URL_PREFIX}{self}")
    }
}

impl From<Uuid> for DocumentId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl From<[u8; 16]> for DocumentId {
    fn from(bytes: [u8; 16]) -> Self {
        Self::from_bytes(bytes)
    }
}

impl From<DocumentId> for Uuid {
    fn from(id: DocumentId) -> Self {
        id.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = bs58::encode(self.as_bytes()).with_check().into_string();
        f.write_str(&text)
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = DocumentIdError;

    /// Parses the bs58check text form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(DocumentIdError::Empty);
        }
        if s.len() > MAX_TEXT_LEN {
            return Err(DocumentIdError::TooLong {
                len: s.len(),
                max: MAX_TEXT_LEN,
            });
        }
        let payload = bs58::decode(s)
            .with_check(None)
            .into_vec()
            .map_err(|e| match e {
                bs58::decode::Error::InvalidChecksum { .. } => DocumentIdError::BadChecksum,
                bs58::decode::Error::NoChecksum => DocumentIdError::WrongLength(0),
                other => DocumentIdError::InvalidBase58(other.to_string()),
            })?;
        Self::from_slice(&payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    // Known vector from automerge-repo's own test suite (AutomergeUrl.test.ts).
    const GOOD_TEXT: &str = "4NMNnkMhL8jXrdJ9jamS58PAVdXu";
    const GOOD_BYTES: [u8; 16] = [
        241, 194, 156, 132, 116, 200, 74, 222, 184, 0, 190, 71, 98, 125, 51, 191,
    ];

    #[test]
    fn known_vector_parses_and_reencodes() {
        let id: DocumentId = GOOD_TEXT.parse().expect("known id parses");
        assert_eq!(id.as_bytes(), &GOOD_BYTES);
        assert_eq!(id.to_string(), GOOD_TEXT);
        assert_eq!(DocumentId::from_bytes(GOOD_BYTES).to_string(), GOOD_TEXT);
    }

    #[test]
    fn known_url_parses() {
        let url = format!("automerge:{GOOD_TEXT}");
        let id = DocumentId::from_url(&url).expect("known url parses");
        assert_eq!(id.as_bytes(), &GOOD_BYTES);
        assert_eq!(id.to_url(), url);
        let with_heads = format!("{url}#2Vz9hbBe|3Xk");
        assert_eq!(DocumentId::from_url(&with_heads), Ok(id));
    }

    #[test]
    fn checksum_is_double_sha256_prefix() {
        let raw = bs58::decode(GOOD_TEXT).into_vec().expect("base58");
        assert_eq!(raw.len(), 20);
        let (payload, check) = raw.split_at(16);
        let digest = Sha256::digest(Sha256::digest(payload));
        assert_eq!(check, &digest[..4]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!("".parse::<DocumentId>(), Err(DocumentIdError::Empty));
        assert_eq!(
            "badbadbad".parse::<DocumentId>(),
            Err(DocumentIdError::BadChecksum)
        );
        assert!(matches!(
            "0OIl".parse::<DocumentId>(),
            Err(DocumentIdError::InvalidBase58(_))
        ));
        let long = "1".repeat(65);
        assert!(matches!(
            long.parse::<DocumentId>(),
            Err(DocumentIdError::TooLong { len: 65, .. })
        ));
        let eight = bs58::encode([1u8, 2, 3, 4, 42, 255, 69, 7])
            .with_check()
            .into_string();
        assert_eq!(
            eight.parse::<DocumentId>(),
            Err(DocumentIdError::WrongLength(8))
        );
        assert_eq!(
            DocumentId::from_url("yjs:4NMNnkMhL8jXrdJ9jamS58PAVdXu"),
            Err(DocumentIdError::NotAnAutomergeUrl)
        );
        assert_eq!(
            DocumentId::from_slice(&[0u8; 15]),
            Err(DocumentIdError::WrongLength(15))
        );
    }

    #[test]
    fn all_zero_and_all_ff_round_trip() {
        for bytes in [[0u8; 16], [0xff; 16]] {
            let id = DocumentId::from_bytes(bytes);
            let text = id.to_string();
            assert!(text.len() <= 28, "{text}");
            assert_eq!(text.parse::<DocumentId>(), Ok(id));
        }
    }
}
