//! Who did what, as history, views and bundles show it, on real sled
//! stores: a relay store is the tenant authority, device stores enroll, sign
//! their writes and carry attestations to each other (as in
//! `tests/authority.rs`). The author shown is the verified one; a change
//! note's device is only a claim (docs/identity.md, "What history and views
//! show").

use permitsync::bundle;
use permitsync::identity::{NodeKey, Role};
use permitsync::model::EntityId;
use permitsync::store::Store;
use permitsync::view::{audit_trail, Act, ChangeRecord};
use permitsync::write::{ChangeNote, Edit, NewPermit};
use permitsync::Error;
use sha2::{Digest, Sha256};

mod support;

const TENANT: &str = "acme";

/// A device store enrolled with `relay` for `rs`, as `device` used by `person`.
fn enrolled(
    relay: &Store,
    dir: &tempfile::TempDir,
    device: &str,
    person: &str,
    rs: &[Role],
) -> Store {
    support::identity::enrolled(relay, dir.path(), TENANT, device, person, rs)
}

/// Copy document `id` with what vouches for it from `from` to `to`.
fn carry(from: &Store, to: &Store, id: EntityId) {
    support::identity::carry(from, to, TENANT, id);
}

fn permit(store: &Store) -> EntityId {
    store
        .create_permit(NewPermit {
            id: None,
            title: "Replace valve V-12".into(),
            location: "Bay 2".into(),
            work_type: "general".into(),
            description: String::new(),
            ppe_requirements: vec![],
            safety_checklist: vec!["area barriered".into()],
        })
        .expect("create")
}

fn edit(store: &Store, id: EntityId, e: Edit) {
    store.edit(id, e).expect("edit");
}

fn set_status(store: &Store, id: EntityId, to: &str) {
    edit(store, id, Edit::SetStatus(to.into()));
}

fn history(store: &Store, id: EntityId) -> Vec<ChangeRecord> {
    store
        .with_doc(id, |d| audit_trail(d.doc(), d.history()))
        .expect("history")
}

/// `(device, person, verification)` of an act.
fn who(act: &Option<Act>) -> (Option<&str>, Option<&str>, &str) {
    let a = act.as_ref().expect("an act");
    (
        a.device.as_deref(),
        a.person.as_deref(),
        a.verification.as_str(),
    )
}

#[test]
fn views_and_history_show_the_verified_author_and_a_notes_device_only_as_a_claim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    relay.ensure_authority().expect("authority");
    let holder = enrolled(&relay, &dir, "tablet-1", "P. Jones", &[Role::Performer]);
    let liar = enrolled(&relay, &dir, "tablet-2", "A. Liar", &[Role::Performer]);
    let issuer = enrolled(&relay, &dir, "tablet-3", "J. Smith", &[Role::Issuer]);

    let id = permit(&holder);
    set_status(&holder, id, "submitted");
    carry(&holder, &issuer, id);
    set_status(&issuer, id, "approved");
    edit(
        &issuer,
        id,
        Edit::Tick {
            field: "safety_checklist".into(),
            item: "area barriered".into(),
            ticked: true,
        },
    );
    set_status(&issuer, id, "active");
    // tablet-2 writes with a note that names tablet-1
    carry(&issuer, &liar, id);
    edit(
        &liar.acting_as("tablet-1"),
        id,
        Edit::SetField {
            field: "location".into(),
            value: "Bay 9".into(),
        },
    );
    carry(&liar, &issuer, id);
    carry(&issuer, &holder, id);

    let view = holder.view(id).expect("view");
    assert_eq!(
        view.str_field("status"),
        Some("active"),
        "{:?}",
        view.rejected
    );
    let a = &view.authorship;
    assert_eq!(
        who(&a.created_by),
        (Some("tablet-1"), Some("P. Jones"), "signed")
    );
    assert_eq!(
        who(&a.submitted_by),
        (Some("tablet-1"), Some("P. Jones"), "signed")
    );
    assert_eq!(
        who(&a.approved_by),
        (Some("tablet-3"), Some("J. Smith"), "signed")
    );
    assert_eq!(
        who(&a.activated_by),
        (Some("tablet-3"), Some("J. Smith"), "signed")
    );
    let approved = a.approved_by.as_ref().expect("approved");
    assert!(
        history(&holder, id)
            .iter()
            .any(|r| r.change == approved.change && r.ops.iter().any(|o| o.value == "approved")),
        "approved_by names the change that approved"
    );

    // the forged note is a claim; the author is who signed
    let forged = history(&holder, id)
        .into_iter()
        .find(|r| {
            r.ops
                .iter()
                .any(|o| o.field == "location" && o.value == "Bay 9")
        })
        .expect("the forged change");
    let note = ChangeNote::parse(forged.message.as_deref().expect("a note")).expect("note");
    assert_eq!(note.device, "tablet-1");
    assert_eq!(forged.author.device.as_deref(), Some("tablet-2"));
    assert_eq!(forged.author.person.as_deref(), Some("A. Liar"));
    assert_eq!(forged.author.verification, "signed");

    // every replica holding the same inputs shows the same view
    carry(&holder, &issuer, id);
    assert_eq!(
        issuer.view(id).expect("view").to_json_string(),
        view.to_json_string()
    );
    let json: serde_json::Value = serde_json::from_str(&view.to_json_string()).expect("json");
    assert_eq!(json["authorship"]["approved_by"]["person"], "J. Smith");
    assert_eq!(json["authorship"]["approved_by"]["verification"], "signed");
}

#[test]
fn without_attestations_the_value_written_is_shown_unverified_and_a_revoked_signer_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    relay.ensure_authority().expect("authority");
    let issuer = enrolled(&relay, &dir, "tablet-3", "J. Smith", &[Role::Issuer]);
    let reader = enrolled(&relay, &dir, "tablet-9", "R. Reader", &[]);
    // an open store writes without signing
    let open = Store::open(dir.path().join("open")).expect("open");
    let id = permit(&open.acting_as("laptop-4"));
    set_status(&open.acting_as("laptop-4"), id, "submitted");
    carry(&open, &reader, id);
    let view = reader.view(id).expect("view");
    assert_eq!(
        who(&view.authorship.created_by),
        (Some("laptop-4"), None, "unverified"),
        "the created_by written, marked unverified"
    );
    // an unverified submission is not authorized: the permit stays a draft
    assert_eq!(view.str_field("status"), Some("draft"));
    assert_eq!(view.authorship.submitted_by, None);
    let entries = history(&reader, id);
    assert!(entries.iter().all(|r| r.author.device.is_none()
        && r.author.verification == "unverified"
        && r.author.refused.is_none()));

    // the issuer's signature stops counting once revoked, but still names him
    let id2 = permit(&issuer);
    set_status(&issuer, id2, "submitted");
    set_status(&issuer, id2, "approved");
    carry(&issuer, &reader, id2);
    assert_eq!(
        who(&reader.view(id2).expect("view").authorship.approved_by),
        (Some("tablet-3"), Some("J. Smith"), "signed")
    );
    let list = relay
        .revoke_device(TENANT, "tablet-3")
        .expect("revoke")
        .expect("a list");
    assert!(reader.learn_revocation_list(TENANT, &list).expect("learn"));
    let view = reader.view(id2).expect("view");
    assert_eq!(view.str_field("status"), Some("draft"));
    assert_eq!(view.authorship.approved_by, None, "no approval stands");
    let created = view.authorship.created_by.expect("created_by");
    assert_eq!(
        (
            created.device.as_deref(),
            created.verification.as_str(),
            created.refused.as_deref()
        ),
        (Some("tablet-3"), "unverified", Some("revoked"))
    );
    let json: serde_json::Value =
        serde_json::to_value(&history(&reader, id2)[0].author).expect("json");
    assert_eq!(json["refused"], "revoked");
}

#[test]
fn a_bundle_carries_attestations_certificates_and_the_revocation_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    relay.ensure_authority().expect("authority");
    let issuer = enrolled(&relay, &dir, "tablet-3", "J. Smith", &[Role::Issuer]);
    let gone = enrolled(&relay, &dir, "tablet-5", "Ex Employee", &[Role::Issuer]);
    let site_b = enrolled(&relay, &dir, "tablet-8", "B. Site", &[]);

    let approved = permit(&issuer);
    set_status(&issuer, approved, "submitted");
    set_status(&issuer, approved, "approved");
    let flagged = permit(&gone);
    set_status(&gone, flagged, "submitted");
    carry(&gone, &issuer, flagged);
    let list = relay
        .revoke_device(TENANT, "tablet-5")
        .expect("revoke")
        .expect("a list");
    assert!(issuer.learn_revocation_list(TENANT, &list).expect("learn"));

    let bytes = bundle::export(&issuer, None, 0).expect("export");
    let report = bundle::import(&site_b, &bytes).expect("import");
    assert_eq!(report.documents, 2);
    assert!(report.certificates >= 2, "{report:?}");
    assert_eq!(report.revocation_lists, 1);
    assert!(report.attestations >= 4, "{report:?}");
    for id in [approved, flagged] {
        assert_eq!(
            site_b.view(id).expect("view").to_json_string(),
            issuer.view(id).expect("view").to_json_string(),
            "the same view after import"
        );
    }
    assert_eq!(
        site_b.view(approved).expect("view").str_field("status"),
        Some("approved")
    );
    assert_eq!(
        site_b.view(flagged).expect("view").str_field("status"),
        Some("draft")
    );

    // importing it again changes nothing
    let again = bundle::import(&site_b, &bytes).expect("again");
    assert_eq!(
        (
            again.new_changes,
            again.attestations,
            again.certificates,
            again.revocation_lists
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn a_bundle_of_an_open_store_stays_version_1_and_old_bundles_still_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = Store::open(dir.path().join("open")).expect("open");
    let id = permit(&open);
    let bytes = bundle::export(&open, None, 0).expect("export");
    assert_eq!(
        bytes[8], 1,
        "nothing to carry beside the changes: version 1"
    );
    let decoded = bundle::decode_bundle(&bytes).expect("decode");
    assert_eq!(decoded.entries.len(), 1);
    assert!(decoded.attestations.is_empty() && decoded.tenants.is_empty());
    let other = Store::open(dir.path().join("other")).expect("other");
    let report = bundle::import(&other, &bytes).expect("import");
    assert_eq!((report.documents, report.created), (1, 1));
    assert_eq!(
        other.view(id).expect("view").to_json_string(),
        open.view(id).expect("view").to_json_string()
    );
}

#[test]
fn a_bundle_cannot_smuggle_in_a_certificate_its_tenants_authority_did_not_sign() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    relay.ensure_authority().expect("authority");
    let issuer = enrolled(&relay, &dir, "tablet-3", "J. Smith", &[Role::Issuer]);
    let site_b = enrolled(&relay, &dir, "tablet-8", "B. Site", &[]);
    let id = permit(&issuer);
    set_status(&issuer, id, "submitted");
    set_status(&issuer, id, "approved");

    // the issuer's certificate, re-signed by another key
    let mut b =
        bundle::decode_bundle(&bundle::export(&issuer, None, 0).expect("export")).expect("decode");
    assert_eq!(b.tenants.len(), 1);
    let forger = NodeKey::generate();
    for c in &mut b.tenants[0].certificates {
        *c = c.certificate.clone().sign(&forger);
    }
    let report =
        bundle::import(&site_b, &bundle::encode_bundle(&b).expect("encode")).expect("import");
    assert_eq!(report.certificates, 0, "{report:?}");
    let view = site_b.view(id).expect("view");
    assert_eq!(view.str_field("status"), Some("draft"));
    assert_eq!(view.authorship.approved_by, None);
    assert!(view.rejected.iter().any(|r| r.reason == "not_authorized"));

    // the real certificate arriving later authorizes what it signed
    assert_eq!(
        bundle::import(&site_b, &bundle::export(&issuer, None, 0).expect("export"))
            .expect("import")
            .certificates,
        1
    );
    assert_eq!(
        site_b.view(id).expect("view").to_json_string(),
        issuer.view(id).expect("view").to_json_string()
    );
}

#[test]
fn a_bundle_with_a_malformed_attestation_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = Store::open(dir.path().join("open")).expect("open");
    let id = permit(&open);
    let doc = open.save_doc(id).expect("save");
    let mut body = b"PSBUNDLE".to_vec();
    body.push(2);
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    body.extend_from_slice(&(doc.len() as u32).to_be_bytes());
    body.extend_from_slice(&doc);
    body.extend_from_slice(&1u32.to_be_bytes()); // one attestation
    body.extend_from_slice(&3u32.to_be_bytes());
    body.extend_from_slice(&[1, 2, 3]);
    body.extend_from_slice(&0u32.to_be_bytes()); // no tenants
    let digest = Sha256::digest(&body);
    body.extend_from_slice(&digest);

    let other = Store::open(dir.path().join("other")).expect("other");
    let err = bundle::import(&other, &body).expect_err("a malformed attestation");
    assert!(
        matches!(&err, Error::Bundle(why) if why.contains("malformed attestation")),
        "{err}"
    );
    assert!(
        other.summary(id).expect("summary").is_none(),
        "nothing stored"
    );
}

#[test]
fn authorship_follows_the_path_to_the_status_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    relay.ensure_authority().expect("authority");
    let holder = enrolled(&relay, &dir, "tablet-1", "P. Jones", &[Role::Performer]);
    let issuer = enrolled(&relay, &dir, "tablet-3", "J. Smith", &[Role::Issuer]);
    let relief = enrolled(&relay, &dir, "tablet-4", "K. Relief", &[Role::Issuer]);
    let id = permit(&holder);
    set_status(&holder, id, "submitted");
    carry(&holder, &issuer, id);
    // sent back, then submitted again by the issuer: the latest submission counts
    set_status(&issuer, id, "draft");
    set_status(&issuer, id, "submitted");
    set_status(&issuer, id, "approved");
    edit(
        &issuer,
        id,
        Edit::Tick {
            field: "safety_checklist".into(),
            item: "area barriered".into(),
            ticked: true,
        },
    );
    set_status(&issuer, id, "active");
    set_status(&issuer, id, "suspended");
    carry(&issuer, &relief, id);
    // a resume is not an issue: the first activation stays
    set_status(&relief, id, "active");
    let view = relief.view(id).expect("view");
    assert_eq!(
        view.str_field("status"),
        Some("active"),
        "{:?}",
        view.rejected
    );
    let a = &view.authorship;
    assert_eq!(who(&a.created_by).0, Some("tablet-1"));
    assert_eq!(who(&a.submitted_by).0, Some("tablet-3"));
    assert_eq!(who(&a.approved_by).0, Some("tablet-3"));
    assert_eq!(who(&a.activated_by).0, Some("tablet-3"));
    let times: Vec<i64> = [&a.submitted_by, &a.approved_by, &a.activated_by]
        .iter()
        .map(|x| x.as_ref().expect("act").time)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}
