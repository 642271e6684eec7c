//! A tenant's own role table, on real sled stores: the relay store (the
//! tenant authority) signs it, sync sessions carry it to the devices after
//! the handshake and live, bundles carry it, and every replica judges by it
//! (DESIGN.md, "Who may do what"; docs/identity.md, "Role tables").

mod support;

use std::collections::BTreeSet;

use permitsync::bundle;
use permitsync::identity::{NodeKey, Role, RoleRows, RoleTable, SignedRoleTable, TableOp};
use permitsync::model::EntityId;
use permitsync::node::Access;
use permitsync::store::{CertificateRequest, Store};
use permitsync::sync::{Role as Side, Session};
use permitsync::wire;
use permitsync::write::{Edit, NewPermit};
use permitsync::Error;

use support::session::{pump, session};

const TENANT: &str = "acme";

fn roles(rs: &[Role]) -> BTreeSet<Role> {
    rs.iter().copied().collect()
}

fn approve_by(rs: &[Role]) -> RoleRows {
    [(TableOp::PermitApprove, roles(rs))].into_iter().collect()
}

fn access(device: &str, rs: &[Role]) -> Access {
    Access {
        tenant: TENANT.into(),
        device: device.into(),
        read_only: false,
        roles: Some(roles(rs)),
        person: None,
    }
}

/// A device's connection to the relay with a token of `rs`: the two
/// sessions, as a relay's WebSocket endpoint and a dialing device make them.
fn sessions(device: &Store, name: &str, relay: &Store, rs: &[Role]) -> (Session, Session) {
    let client = session(device, Side::Client, name, Access::open("relay"));
    let as_token = relay
        .in_tenant(TENANT)
        .acting_as(name)
        .with_roles(roles(rs));
    let server = session(&as_token, Side::Server, "relay", access(name, rs));
    (client, server)
}

/// One sync of `device` with the relay, until both sides are quiet.
fn sync(device: &Store, name: &str, relay: &Store, rs: &[Role]) {
    let (mut c, mut s) = sessions(device, name, relay, rs);
    let t = pump(&mut c, &mut s);
    assert!(t.closed().is_none(), "{t:?}");
}

fn permit(store: &Store) -> EntityId {
    store
        .create_permit(NewPermit {
            title: "Hot work on line 4".into(),
            safety_checklist: vec!["check".into()],
            ..Default::default()
        })
        .expect("create")
}

fn set(store: &Store, id: EntityId, to: &str) -> Result<(), Error> {
    store.edit(id, Edit::SetStatus(to.into())).map(|_| ())
}

fn status(store: &Store, id: EntityId) -> String {
    store
        .view(id)
        .expect("view")
        .str_field("status")
        .expect("status")
        .to_string()
}

fn json(store: &Store, id: EntityId) -> String {
    store.view(id).expect("view").to_json_string()
}

fn not_authorized(store: &Store, id: EntityId) -> Vec<String> {
    store
        .view(id)
        .expect("view")
        .rejected
        .iter()
        .filter(|r| r.reason == "not_authorized")
        .map(|r| r.detail.clone())
        .collect()
}

#[test]
fn the_authoritys_table_reaches_devices_by_sync_and_every_replica_judges_by_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    relay.ensure_authority().expect("authority");
    let performers_approve = approve_by(&[Role::Performer, Role::Issuer]);
    let v1 = relay
        .configure_role_table(TENANT, &performers_approve)
        .expect("configure")
        .expect("a new table");
    assert_eq!(v1.table.version, 1);
    assert_eq!(
        relay
            .configure_role_table(TENANT, &performers_approve)
            .expect("again"),
        None,
        "the same rows sign nothing new"
    );

    // two performers' tablets enroll; the table comes with the enrollment
    let p = Store::open(dir.path().join("tablet-p")).expect("p");
    let d = Store::open(dir.path().join("tablet-d")).expect("d");
    sync(&p, "tablet-p", &relay, &[Role::Performer]);
    sync(&d, "tablet-d", &relay, &[Role::Performer]);
    assert_eq!(p.role_table(TENANT).expect("table"), Some(v1.clone()));
    assert_eq!(d.role_table(TENANT).expect("table"), Some(v1.clone()));

    // by the tenant's table a performer approves, offline and locally checked
    let id = permit(&p);
    set(&p, id, "submitted").expect("submit");
    set(&p, id, "approved").expect("the table lets performers approve");
    assert_eq!(status(&p, id), "approved");
    sync(&p, "tablet-p", &relay, &[Role::Performer]);
    sync(&d, "tablet-d", &relay, &[Role::Performer]);
    let on_relay = relay.in_tenant(TENANT);
    for (who, store) in [("relay", &on_relay), ("tablet-d", &d)] {
        assert_eq!(status(store, id), "approved", "on {who}");
        assert!(not_authorized(store, id).is_empty(), "on {who}");
    }
    assert_eq!(json(&p, id), json(&d, id));
    assert_eq!(json(&p, id), json(&on_relay, id));

    // the authority takes approving back from performers while tablet-d is
    // connected: the new table reaches it live, and both judge again
    let (mut c, mut s) = sessions(&d, "tablet-d", &relay, &[Role::Performer]);
    assert!(pump(&mut c, &mut s).closed().is_none());
    let v2 = relay
        .configure_role_table(TENANT, &approve_by(&[Role::Issuer]))
        .expect("configure")
        .expect("a new table");
    assert_eq!(v2.table.version, 2);
    let news = s.on_identity_changed();
    assert_eq!(news.send.len(), 1, "one permitsync-identity");
    let mut learnt = false;
    for m in news.send {
        learnt |= c.on_frame(&wire::encode(&m)).identity_changed;
    }
    assert!(learnt, "the device learnt the table live");
    assert_eq!(d.role_table(TENANT).expect("table"), Some(v2.clone()));
    for (who, store) in [("relay", &on_relay), ("tablet-d", &d)] {
        assert_eq!(status(store, id), "submitted", "on {who}");
        let why = not_authorized(store, id);
        assert!(
            why.iter()
                .any(|w| w.contains("approving a permit needs the role issuer")),
            "on {who}: {why:?}"
        );
    }
    // the summary (what listings show) was judged again too
    let listed = d.summary(id).expect("summary").expect("some");
    assert_eq!(listed.status.as_deref(), Some("submitted"));

    // an older version arriving later replaces nothing; a forged one neither
    assert!(!d.learn_role_table(TENANT, &v1).expect("learn"));
    let forged = RoleTable::new(TENANT, 9, &performers_approve)
        .expect("valid")
        .sign(&NodeKey::generate());
    assert!(!d.learn_role_table(TENANT, &forged).expect("learn"));
    assert_eq!(d.role_table(TENANT).expect("table"), Some(v2.clone()));
    assert_eq!(status(&d, id), "submitted");

    // tablet-p, still on v1, shows the approval until it syncs; then it
    // refuses a performer's approval locally, as the table now says
    assert_eq!(status(&p, id), "approved");
    sync(&p, "tablet-p", &relay, &[Role::Performer]);
    assert_eq!(p.role_table(TENANT).expect("table"), Some(v2.clone()));
    assert_eq!(json(&p, id), json(&d, id));
    assert_eq!(json(&p, id), json(&on_relay, id));
    let id2 = permit(&p);
    set(&p, id2, "submitted").expect("submit");
    let refused = set(&p, id2, "approved").expect_err("performers may not approve now");
    assert_eq!(
        refused.to_string(),
        "not authorized: approving a permit needs the role issuer"
    );
    assert_eq!(status(&p, id2), "submitted", "nothing was written");

    // reopened, a device judges by the table it kept
    drop((c, s, d));
    let d = Store::open(dir.path().join("tablet-d")).expect("reopen");
    assert_eq!(d.role_table(TENANT).expect("table"), Some(v2));
    assert_eq!(status(&d, id), "submitted");
}

#[test]
fn a_device_that_has_the_table_passes_it_on_peer_to_peer_and_in_bundles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = Store::open(dir.path().join("relay")).expect("relay");
    let authority = relay.ensure_authority().expect("authority");
    let table = relay
        .configure_role_table(TENANT, &approve_by(&[Role::Performer]))
        .expect("configure")
        .expect("a table");
    let p = Store::open(dir.path().join("tablet-p")).expect("p");
    sync(&p, "tablet-p", &relay, &[Role::Performer]);
    let id = permit(&p);
    set(&p, id, "submitted").expect("submit");
    set(&p, id, "approved").expect("approve");

    // a device enrolled before the table existed (by certificate, no sync)
    let enrolled = |name: &str| {
        let store = Store::open(dir.path().join(name)).expect("open");
        let cert = relay
            .issue_certificate(&CertificateRequest {
                tenant: TENANT.into(),
                device: name.into(),
                person: None,
                roles: roles(&[Role::Issuer]),
                public_key: store.public_key(),
            })
            .expect("issue");
        assert!(store.enroll(TENANT, authority, &cert).expect("enroll"));
        assert_eq!(store.role_table(TENANT).expect("table"), None);
        store
    };

    // peer to peer: p serves q, and q takes the table with p's changes
    let q = enrolled("tablet-q");
    let mut c = session(&q, Side::Client, "tablet-q", Access::open("tablet-p"));
    let mut s = session(&p, Side::Server, "tablet-p", Access::open("tablet-q"));
    assert!(pump(&mut c, &mut s).closed().is_none());
    assert_eq!(q.role_table(TENANT).expect("table"), Some(table.clone()));
    assert_eq!(status(&q, id), "approved");
    assert_eq!(json(&q, id), json(&p, id));

    // a bundle carries it: version 3, read back by a store that never synced
    let bytes = bundle::export(&p, None, 0).expect("export");
    assert_eq!(bytes[8], 3, "a tenant with a role table: version 3");
    let decoded = bundle::decode_bundle(&bytes).expect("decode");
    assert_eq!(decoded.tenants[0].role_table, Some(table.clone()));
    let r = enrolled("tablet-r");
    let report = bundle::import(&r, &bytes).expect("import");
    assert_eq!(report.role_tables, 1, "{report:?}");
    assert_eq!(r.role_table(TENANT).expect("table"), Some(table.clone()));
    assert_eq!(json(&r, id), json(&p, id));
    assert_eq!(
        bundle::import(&r, &bytes).expect("again").role_tables,
        0,
        "the same table is no news"
    );

    // a bundle whose table another key signed teaches nothing
    let mut forged = decoded;
    forged.tenants[0].role_table = Some(
        RoleTable::new(TENANT, 7, &RoleRows::new())
            .expect("valid")
            .sign(&NodeKey::generate()),
    );
    let report =
        bundle::import(&r, &bundle::encode_bundle(&forged).expect("encode")).expect("import");
    assert_eq!(report.role_tables, 0);
    assert_eq!(r.role_table(TENANT).expect("table"), Some(table));
    assert_eq!(status(&r, id), "approved");
}

#[test]
fn two_tables_of_one_version_settle_on_the_same_one_on_every_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    // two relays share the authority key, configured differently, and both
    // signed version 1: one signs here, the other's table is signed with
    // the same key
    let secret = NodeKey::generate();
    let other = Store::open(dir.path().join("relay")).expect("relay");
    let shared = other.use_authority_key(secret.secret()).expect("shared");
    let a = other
        .configure_role_table(TENANT, &approve_by(&[Role::Performer]))
        .expect("a")
        .expect("signed");
    let b: SignedRoleTable = RoleTable::new(TENANT, 1, &approve_by(&[Role::GasTester]))
        .expect("valid")
        .sign(&secret);
    assert_eq!((a.table.version, b.table.version), (1, 1));
    let winner = if a.to_bytes() > b.to_bytes() { &a } else { &b };
    for (i, order) in [[&a, &b], [&b, &a]].into_iter().enumerate() {
        let replica = Store::open(dir.path().join(format!("replica-{i}"))).expect("open");
        let cert = other
            .issue_certificate(&CertificateRequest {
                tenant: TENANT.into(),
                device: format!("replica-{i}"),
                person: None,
                roles: roles(&[Role::Issuer]),
                public_key: replica.public_key(),
            })
            .expect("issue");
        replica.enroll(TENANT, shared, &cert).expect("enroll");
        for t in order {
            replica.learn_role_table(TENANT, t).expect("learn");
        }
        assert_eq!(
            replica.role_table(TENANT).expect("table").as_ref(),
            Some(winner),
            "order {i}"
        );
    }
}
