//! Who may do what, on real sled stores: a relay store is the tenant
//! authority, device stores enroll with certificates for their roles, sign
//! their writes, and judge each other's changes by the attestations that
//! travel beside them (DESIGN.md, "Who may do what").

use std::collections::BTreeSet;

use permitsync::identity::{Attestation, NodeKey, Role};
use permitsync::model::EntityId;
use permitsync::store::Store;
use permitsync::write::{Edit, NewPermit};
use permitsync::Error;

mod support;

const TENANT: &str = "acme";

fn roles(rs: &[Role]) -> BTreeSet<Role> {
    rs.iter().copied().collect()
}

/// A device store enrolled with `relay` for `rs`, as `device`.
fn enrolled(relay: &Store, dir: &tempfile::TempDir, device: &str, rs: &[Role]) -> Store {
    let person = format!("{device} person");
    support::identity::enrolled(relay, dir.path(), TENANT, device, &person, rs)
}

/// Copy document `id` with what vouches for it from `from` to `to`.
fn carry(from: &Store, to: &Store, id: EntityId) {
    support::identity::carry(from, to, TENANT, id);
}

fn permit(store: &Store) -> EntityId {
    store
        .create_permit(NewPermit {
            id: None,
            title: "Hot work on line 4".into(),
            location: "Bay 2".into(),
            work_type: "general".into(),
            description: String::new(),
            ppe_requirements: vec![],
            safety_checklist: vec![],
        })
        .expect("create")
}

fn status(store: &Store, id: EntityId) -> String {
    store
        .view(id)
        .expect("view")
        .str_field("status")
        .expect("status")
        .to_string()
}

fn set(store: &Store, id: EntityId, to: &str) -> Result<(), Error> {
    store.edit(id, Edit::SetStatus(to.into())).map(|_| ())
}

#[test]
fn a_performer_cannot_approve_and_an_issuer_can_wherever_the_change_goes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    relay.ensure_authority().expect("authority");
    let performer = enrolled(&relay, &dir, "tablet-p", &[Role::Performer]);
    let issuer = enrolled(&relay, &dir, "tablet-i", &[Role::Issuer]);
    assert_eq!(
        performer.identity_status().expect("status").mode,
        "enforced"
    );

    let id = permit(&performer);
    set(&performer, id, "submitted").expect("a performer may submit");
    let refused = set(&performer, id, "approved").expect_err("a performer may not approve");
    assert_eq!(
        refused.to_string(),
        "not authorized: approving a permit needs the role issuer"
    );
    assert_eq!(status(&performer, id), "submitted", "nothing was written");

    // the issuer gets it peer to peer (no relay in between) and approves
    carry(&performer, &issuer, id);
    assert_eq!(status(&issuer, id), "submitted");
    set(&issuer, id, "approved").expect("an issuer may approve");
    carry(&issuer, &performer, id);
    let v = performer.view(id).expect("view");
    assert_eq!(status(&performer, id), "approved", "{:?}", v.rejected);
    let history = performer.view(id).expect("view");
    assert!(history.rejected.is_empty(), "{:?}", history.rejected);

    // the relay judges the same (in the tenant's id space, as its
    // connections of that tenant do)
    let relay = relay.in_tenant(TENANT);
    assert!(relay.claim(id, TENANT).expect("claim"));
    carry(&performer, &relay, id);
    assert_eq!(status(&relay, id), "approved");
}

#[test]
fn an_unsigned_or_forged_approval_is_not_authorized_and_revocation_flags_what_was_signed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    relay.ensure_authority().expect("authority");
    let issuer = enrolled(&relay, &dir, "tablet-i", &[Role::Issuer]);
    let performer = enrolled(&relay, &dir, "tablet-p", &[Role::Performer]);
    // an open store (never enrolled) approves whatever it likes locally
    let rogue = Store::open(dir.path().join("rogue")).expect("rogue");
    assert_eq!(rogue.identity_status().expect("status").mode, "open");

    let id = permit(&issuer);
    set(&issuer, id, "submitted").expect("submit");
    carry(&issuer, &rogue, id);
    set(&rogue, id, "approved").expect("open mode authorizes everything");

    // the rogue's approval reaches the performer unsigned
    carry(&issuer, &performer, id);
    performer
        .apply_changes(id, rogue.changes_since(id, &[]).expect("changes"))
        .expect("apply");
    assert_eq!(status(&performer, id), "submitted");
    let view = performer.view(id).expect("view");
    let r = view
        .rejected
        .iter()
        .find(|r| r.reason == "not_authorized")
        .expect("a not_authorized rejection");
    assert_eq!(r.field, "status");
    assert!(r.detail.contains("needs the role issuer"), "{}", r.detail);
    assert!(r.detail.contains("no valid signature"), "{}", r.detail);

    // a forged delivery attestation: it names the relay's serial and the
    // issuer role, but is signed with another key, so it counts for nothing
    let rogue_change = rogue.heads(id).expect("heads")[0];
    let relay_serial = relay
        .own_certificate(TENANT)
        .expect("cert")
        .expect("the relay's own")
        .certificate
        .serial;
    let forged = Attestation::delivery(
        rogue_change,
        relay_serial,
        "tablet-i".into(),
        roles(&[Role::Issuer]),
        &NodeKey::generate(),
    );
    assert_eq!(
        performer.add_attestations(id, vec![forged]).expect("kept"),
        1
    );
    assert_eq!(status(&performer, id), "submitted");

    // now the issuer approves for real, and is then revoked: the approval
    // is flagged on every replica that learns the revocation list
    let id2 = permit(&issuer);
    set(&issuer, id2, "submitted").expect("submit");
    set(&issuer, id2, "approved").expect("approve");
    carry(&issuer, &performer, id2);
    assert_eq!(status(&performer, id2), "approved");
    let list = relay
        .revoke_device(TENANT, "tablet-i")
        .expect("revoke")
        .expect("a new list");
    assert!(performer
        .learn_revocation_list(TENANT, &list)
        .expect("learn"));
    // the issuer signed the submission too: both are flagged
    assert_eq!(status(&performer, id2), "draft");
    let listed = performer.summary(id2).expect("summary").expect("some");
    assert_eq!(listed.status.as_deref(), Some("draft"), "summary rewritten");
    let view = performer.view(id2).expect("view");
    assert!(view
        .rejected
        .iter()
        .any(|r| r.reason == "not_authorized" && r.detail.contains("signed by tablet-i")));

    // reopened, the judgement holds
    drop(performer);
    let again = Store::open(dir.path().join("tablet-p")).expect("reopen");
    assert_eq!(status(&again, id2), "draft");
    // the revoked issuer had submitted the first permit too
    assert_eq!(status(&again, id), "draft");
}

#[test]
fn a_relay_attests_a_tokens_writes_and_uploads_for_its_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    relay.ensure_authority().expect("authority");
    let as_performer = relay
        .acting_as("js-client")
        .with_roles(roles(&[Role::Performer]));
    let as_issuer = relay
        .acting_as("js-issuer")
        .with_roles(roles(&[Role::Issuer]));
    let id = permit(&as_performer);
    set(&as_performer, id, "submitted").expect("submit");
    let refused = set(&as_performer, id, "approved").expect_err("performer");
    assert!(refused.to_string().contains("needs the role issuer"));
    set(&as_issuer, id, "approved").expect("issuer approves");
    assert_eq!(status(&as_issuer, id), "approved");
    let atts = as_issuer.attestations(id).expect("atts");
    assert_eq!(atts.len(), 3, "each write attested once: {atts:?}");
}
