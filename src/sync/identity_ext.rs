//! The identity extension (`"permitsync": {"identity": 1, "key": <32 bytes>}`
//! in `peerMetadata`): how certificates, revocation lists and attestations
//! travel beside the changes (DESIGN.md, "Who may do what").
//!
//! - `permitsync-identity {tenant, authority?, certificate?, certificates?,
//!   revocationList?, roleTable?}`: sent right after the handshake. From a
//!   tenant authority to a peer that announced its key: the peer's
//!   certificate (issued or renewed now) and the authority's public key,
//!   which enrolls it; from anyone, the revocation list and the tenant's
//!   role table it holds. Sent again while connected when either changes.
//! - `permitsync-attest {documentId, tenant, attestations, certificates,
//!   revocationList?}`: sent before the sync message that carries the
//!   attested changes, so the receiver judges them once; `certificates` are
//!   those the attestations name that this connection has not carried yet.
//!
//! Every object is sent in its signed canonical form (a byte string) and
//! verified by the receiver; nothing here is trusted for being received.

use std::collections::BTreeMap;

use crate::identity::{
    Attestation, PublicKey, SignedCertificate, SignedRevocationList, SignedRoleTable,
};
use crate::model::EntityId;
use crate::wire::{DocumentId, Message, PeerId, PeerMetadata, Value};

/// Message type: certificates and the revocation list after the handshake.
pub const IDENTITY: &str = "permitsync-identity";
/// Message type: attestations of one document's changes.
pub const ATTEST: &str = "permitsync-attest";
/// Most attestations one `permitsync-attest` may carry.
pub const MAX_ATTESTATIONS: usize = 4096;
/// Most certificates one message may carry.
pub const MAX_CERTIFICATES: usize = 256;

/// The public key a peer announced, if it speaks the identity extension.
pub fn announced_key(meta: Option<&PeerMetadata>) -> Option<PublicKey> {
    let flags = meta?.extra.get(super::extension::METADATA_KEY)?.as_map()?;
    match flags.get("key")? {
        Value::Bytes(b) => Some(PublicKey(b.as_slice().try_into().ok()?)),
        _ => None,
    }
}

/// Add this node's identity flag and key to its metadata.
pub fn announce(meta: &mut PeerMetadata, key: PublicKey) {
    if let Some(Value::Map(flags)) = meta.extra.get_mut(super::extension::METADATA_KEY) {
        flags.insert("identity".into(), Value::Int(1));
        flags.insert("key".into(), Value::Bytes(key.0.to_vec()));
    }
}

/// What a `permitsync-identity` carries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdentityNews {
    /// The tenant it is about.
    pub tenant: String,
    /// The tenant authority's public key (from an authority).
    pub authority: Option<PublicKey>,
    /// The receiver's own certificate (from an authority).
    pub certificate: Option<SignedCertificate>,
    /// Other certificates (the authority's own, for a start).
    pub certificates: Vec<SignedCertificate>,
    /// The revocation list the sender holds.
    pub revocation_list: Option<SignedRevocationList>,
    /// The tenant's role table the sender holds.
    pub role_table: Option<SignedRoleTable>,
}

/// `permitsync-identity`.
pub fn identity(from: &PeerId, to: &PeerId, news: &IdentityNews) -> Message {
    let mut body = BTreeMap::new();
    body.insert("tenant".into(), Value::Text(news.tenant.clone()));
    if let Some(k) = news.authority {
        body.insert("authority".into(), Value::Bytes(k.0.to_vec()));
    }
    if let Some(c) = &news.certificate {
        body.insert("certificate".into(), Value::Bytes(c.to_bytes()));
    }
    put_certificates(&mut body, &news.certificates);
    if let Some(l) = &news.revocation_list {
        body.insert("revocationList".into(), Value::Bytes(l.to_bytes()));
    }
    if let Some(t) = &news.role_table {
        body.insert("roleTable".into(), Value::Bytes(t.to_bytes()));
    }
    message(IDENTITY, from, to, body)
}

/// Parse a `permitsync-identity`; `None` when malformed (an object that does
/// not decode, too many of them).
pub fn parse_identity(body: &BTreeMap<String, Value>) -> Option<IdentityNews> {
    let authority = match body.get("authority") {
        None => None,
        Some(Value::Bytes(b)) => Some(PublicKey(b.as_slice().try_into().ok()?)),
        Some(_) => return None,
    };
    let certificate = match body.get("certificate") {
        None => None,
        Some(Value::Bytes(b)) => Some(SignedCertificate::from_bytes(b).ok()?),
        Some(_) => return None,
    };
    Some(IdentityNews {
        tenant: body.get("tenant")?.as_text()?.to_string(),
        authority,
        certificate,
        certificates: parse_certificates(body)?,
        revocation_list: parse_revocation_list(body)?,
        role_table: parse_role_table(body)?,
    })
}

/// What a `permitsync-attest` carries.
#[derive(Clone, Debug, PartialEq)]
pub struct AttestNews {
    /// The document whose changes are attested.
    pub doc: EntityId,
    /// The tenant whose authority the certificates are of.
    pub tenant: String,
    /// The attestations.
    pub attestations: Vec<Attestation>,
    /// Certificates they name.
    pub certificates: Vec<SignedCertificate>,
    /// The revocation list the sender holds, when newer than it sent before.
    pub revocation_list: Option<SignedRevocationList>,
}

/// `permitsync-attest`.
pub fn attest(from: &PeerId, to: &PeerId, news: &AttestNews) -> Message {
    let mut body = BTreeMap::new();
    body.insert(
        "documentId".into(),
        Value::Text(DocumentId::from(news.doc.uuid()).to_string()),
    );
    body.insert("tenant".into(), Value::Text(news.tenant.clone()));
    body.insert(
        "attestations".into(),
        Value::Array(
            news.attestations
                .iter()
                .map(|a| Value::Bytes(a.to_bytes()))
                .collect(),
        ),
    );
    put_certificates(&mut body, &news.certificates);
    if let Some(l) = &news.revocation_list {
        body.insert("revocationList".into(), Value::Bytes(l.to_bytes()));
    }
    message(ATTEST, from, to, body)
}

/// Parse a `permitsync-attest`; `None` when malformed.
pub fn parse_attest(body: &BTreeMap<String, Value>) -> Option<AttestNews> {
    let doc: DocumentId = body.get("documentId")?.as_text()?.parse().ok()?;
    let Value::Array(items) = body.get("attestations")? else {
        return None;
    };
    if items.len() > MAX_ATTESTATIONS {
        return None;
    }
    let attestations = items
        .iter()
        .map(|v| match v {
            Value::Bytes(b) => Attestation::from_bytes(b).ok(),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(AttestNews {
        doc: EntityId::from(uuid::Uuid::from(doc)),
        tenant: body.get("tenant")?.as_text()?.to_string(),
        attestations,
        certificates: parse_certificates(body)?,
        revocation_list: parse_revocation_list(body)?,
    })
}

fn put_certificates(body: &mut BTreeMap<String, Value>, certs: &[SignedCertificate]) {
    if !certs.is_empty() {
        body.insert(
            "certificates".into(),
            Value::Array(certs.iter().map(|c| Value::Bytes(c.to_bytes())).collect()),
        );
    }
}

fn parse_certificates(body: &BTreeMap<String, Value>) -> Option<Vec<SignedCertificate>> {
    match body.get("certificates") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) if items.len() <= MAX_CERTIFICATES => items
            .iter()
            .map(|v| match v {
                Value::Bytes(b) => SignedCertificate::from_bytes(b).ok(),
                _ => None,
            })
            .collect(),
        Some(_) => None,
    }
}

fn parse_revocation_list(body: &BTreeMap<String, Value>) -> Option<Option<SignedRevocationList>> {
    match body.get("revocationList") {
        None => Some(None),
        Some(Value::Bytes(b)) => SignedRevocationList::from_bytes(b).ok().map(Some),
        Some(_) => None,
    }
}

/// A role table that does not decode (one naming an operation or role this
/// version does not know) is left out, not the whole message: the peer's
/// certificates and revocation list still count, and the table in force
/// stays until one this node can read arrives.
fn parse_role_table(body: &BTreeMap<String, Value>) -> Option<Option<SignedRoleTable>> {
    match body.get("roleTable") {
        None => Some(None),
        Some(Value::Bytes(b)) => match SignedRoleTable::from_bytes(b) {
            Ok(t) => Some(Some(t)),
            Err(e) => {
                tracing::warn!(error = %e, "a peer's role table ignored");
                Some(None)
            }
        },
        Some(_) => None,
    }
}

fn message(kind: &str, from: &PeerId, to: &PeerId, body: BTreeMap<String, Value>) -> Message {
    Message::Extension {
        type_name: kind.to_string(),
        sender_id: from.clone(),
        target_id: to.clone(),
        body,
    }
}
