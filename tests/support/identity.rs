//! Who may do what, between real sled stores: enrolling a device store
//! with a tenant authority, and carrying a document with what vouches for it.

use std::path::Path;

use permitsync::identity::{Role, SignedCertificate};
use permitsync::model::EntityId;
use permitsync::store::{CertificateRequest, Store};

/// A device store in `dir/<device>` enrolled with `authority` in `tenant`,
/// certified for `roles` and used by `person`.
pub fn enrolled(
    authority: &Store,
    dir: &Path,
    tenant: &str,
    device: &str,
    person: &str,
    roles: &[Role],
) -> Store {
    let store = Store::open(dir.join(device)).expect("open a device store");
    let cert = authority
        .issue_certificate(&CertificateRequest {
            tenant: tenant.into(),
            device: device.into(),
            person: Some(person.into()),
            roles: roles.iter().copied().collect(),
            public_key: store.public_key(),
        })
        .expect("issue a certificate");
    let key = authority.ensure_authority().expect("authority");
    assert!(store.enroll(tenant, key, &cert).expect("enroll"));
    store
}

/// Copy document `id` with its attestations and the certificates they name
/// from `from` to `to` (what the sync extension carries).
pub fn carry(from: &Store, to: &Store, tenant: &str, id: EntityId) {
    let atts = from.attestations(id).expect("attestations");
    let serials: Vec<u64> = atts.iter().map(|a| a.serial).collect();
    let certs: Vec<SignedCertificate> = from.certificates(tenant, &serials).expect("certs");
    to.learn_certificates(tenant, &certs).expect("learn");
    to.add_attestations(id, atts).expect("add attestations");
    let changes = from.changes_since(id, &[]).expect("changes");
    to.apply_changes(id, changes).expect("apply");
}
