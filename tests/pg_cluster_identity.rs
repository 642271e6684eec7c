//! Who may do what, across relays over one real PostgreSQL database
//! (`scripts/test.sh` starts one; `tests/support/pg.rs`), with real
//! `permitsync serve` processes and real CLI devices: relays started
//! together over a new database are one authority; a device certified by
//! one relay approves, and another relay judges the approval authorized; the
//! device removed through the first relay has its approval flagged
//! `not_authorized` on the second, woken by the database's notification
//! (the feed poll is set to a minute); and `permitsync migrate` carries a
//! sled relay's authority key, certificates and attestations into the
//! database, so the relay over it judges as before.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;

use support::pg::TestDatabase;
use support::{cli, run_cli, NodeProcess};

const PERFORMER: &str = "performer-token";
const ISSUER: &str = "issuer-token";
const LATECOMER: &str = "latecomer-token";

fn write_tokens(dir: &Path) -> String {
    let path = dir.join("tokens.json");
    let tokens = json!({"tokens": [
        {"token": PERFORMER, "tenant": "acme", "device": "tablet-p", "mode": "read-write",
         "roles": ["performer"], "person": "P. Jones"},
        {"token": ISSUER, "tenant": "acme", "device": "tablet-i", "mode": "read-write",
         "roles": ["issuer"], "person": "J. Smith"},
        {"token": LATECOMER, "tenant": "acme", "device": "tablet-q", "mode": "read-write",
         "roles": ["performer"]},
    ]});
    std::fs::write(&path, tokens.to_string()).expect("tokens");
    path.to_string_lossy().into_owned()
}

/// A relay over the database at `url` (a feed poll of a minute: only the
/// notifications wake it within a test).
fn relay(dir: &Path, name: &str, url: &str, tokens: &str) -> support::NodeOptions {
    NodeProcess::options(&dir.join(name))
        .name(name)
        .args(&["--database-url", url, "--tokens", tokens])
        .args(&["--cluster-poll-ms", "60000"])
        .log_level("info")
}

/// One sync of the CLI device in `data` with `relay` under `token`.
fn sync(data: &Path, relay: &NodeProcess, token: &str) {
    cli(
        data,
        &["sync", &relay.sync_url_with_token(token), "--timeout", "60"],
    );
}

/// The authority (hex) the CLI device in `data` enrolled with.
fn authority_of(data: &Path) -> String {
    let id: Value = serde_json::from_str(&cli(data, &["--json", "identity"])).expect("JSON");
    assert_eq!(id["mode"], "enforced", "{id}");
    id["authority"].as_str().expect("an authority").to_string()
}

/// A permit created, submitted and approved on the CLI device in `data`
/// (an issuer's: each change signed with its certificate).
fn approved_permit(data: &Path, title: &str) -> String {
    let id = cli(data, &["permit", "create", "--title", title])
        .trim()
        .to_string();
    cli(data, &["permit", "status", &id, "submitted"]);
    cli(data, &["permit", "status", &id, "approved"]);
    id
}

/// The relay's view of entity `id` (REST, as a performer's token reads it).
async fn view(relay: &NodeProcess, id: &str) -> Value {
    let res = reqwest::Client::new()
        .get(format!("{}/v1/entities/{id}", relay.base))
        .bearer_auth(PERFORMER)
        .send()
        .await
        .expect("GET the entity");
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.expect("view JSON")
}

/// The details of the view's `not_authorized` rejections.
fn not_authorized(view: &Value) -> Vec<String> {
    view["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["reason"] == "not_authorized")
        .map(|r| r["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Remove `device` through `relay` (`DELETE /v1/devices/{id}`).
async fn remove_device(relay: &NodeProcess, device: &str) {
    let res = reqwest::Client::new()
        .delete(format!("{}/v1/devices/{device}", relay.base))
        .bearer_auth(PERFORMER)
        .send()
        .await
        .expect("DELETE the device");
    let status = res.status().as_u16();
    assert_eq!(status, 200, "{}", res.text().await.unwrap_or_default());
}

/// Poll `relay`'s view of `id` every 100 ms until `done` takes it, or fail
/// with `what` and the relay's log after 30 s.
async fn view_until(
    relay: &NodeProcess,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = view(relay, id).await;
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v}\n{}",
            relay.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until `relay` shows permit `id` approved with nothing refused, its
/// approval signed by the issuer's tablet.
async fn approved_on(relay: &NodeProcess, id: &str, what: &str) {
    let v = view_until(relay, id, what, |v| {
        v["fields"]["status"] == "approved" && not_authorized(v).is_empty()
    })
    .await;
    let by = &v["authorship"]["approved_by"];
    assert_eq!(by["verification"], "signed", "{v}");
    assert_eq!(by["device"], "tablet-i", "{v}");
}

/// Wait until `relay` no longer shows permit `id` approved: the issuer's
/// certificate is revoked, so what it signed is refused.
async fn revoked_on(relay: &NodeProcess, id: &str, what: &str) {
    let v = view_until(relay, id, what, |v| v["fields"]["status"] != "approved").await;
    assert!(
        not_authorized(&v)
            .iter()
            .any(|d| d.contains("tablet-i") && d.contains("revoked")),
        "{v}\n{}",
        relay.log_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_certified_and_removed_through_one_relay_is_judged_alike_on_another() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let tokens = write_tokens(tmp.path());
    // started together over the new database: one node key, one authority
    let (r0, r1) = (
        relay(tmp.path(), "relay0", &db.url, &tokens),
        relay(tmp.path(), "relay1", &db.url, &tokens),
    );
    let (relay0, relay1) = std::thread::scope(|s| {
        let a = s.spawn(|| r0.start());
        let b = s.spawn(|| r1.start());
        (a.join().expect("relay0"), b.join().expect("relay1"))
    });
    let (dp, di) = (tmp.path().join("tablet-p"), tmp.path().join("tablet-i"));

    // the performer enrolls with relay 1 and writes a permit there; relay 1
    // judges it (its tenant's authority is cached from now on)
    sync(&dp, &relay1, PERFORMER);
    let theirs = cli(&dp, &["permit", "create", "--title", "Isolation, pump 3"])
        .trim()
        .to_string();
    sync(&dp, &relay1, PERFORMER);
    let before = view(&relay1, &theirs).await;
    assert_eq!(
        before["authorship"]["created_by"]["verification"], "signed",
        "{before}"
    );

    // the issuer is certified by relay 0, by the same authority, and
    // approves through relay 0; relay 1 judges its signatures valid
    sync(&di, &relay0, ISSUER);
    assert_eq!(authority_of(&di), authority_of(&dp));
    let id = approved_permit(&di, "Hot work on line 4");
    sync(&di, &relay0, ISSUER);
    approved_on(&relay1, &id, "relay 1 to take relay 0's certificate").await;

    // the issuer's tablet is removed through relay 0: relay 1 flags its
    // approval too
    remove_device(&relay0, "tablet-i").await;
    revoked_on(&relay1, &id, "relay 1 to take relay 0's revocation").await;
    revoked_on(&relay0, &id, "relay 0 to flag the approval").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_carries_the_authority_certificates_and_attestations() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let tokens = write_tokens(tmp.path());
    let sled_dir = tmp.path().join("relay");
    let mut sled_relay = NodeProcess::start(&sled_dir, &["--tokens", &tokens]);
    let (dp, di) = (tmp.path().join("tablet-p"), tmp.path().join("tablet-i"));
    sync(&dp, &sled_relay, PERFORMER);
    sync(&di, &sled_relay, ISSUER);
    let id = approved_permit(&di, "Confined space entry, tank 2");
    sync(&di, &sled_relay, ISSUER);
    approved_on(&sled_relay, &id, "the sled relay to take the approval").await;
    let authority = authority_of(&dp);
    sled_relay.sigkill();

    let out = run_cli(
        tmp.path(),
        &[
            "migrate",
            "--from-data",
            &sled_dir.to_string_lossy(),
            "--database-url",
            &db.url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // the relay over the database is the same authority: the approval
    // stands, and a device certified now is certified by the same key
    let pg_relay = relay(tmp.path(), "pg-relay", &db.url, &tokens).start();
    approved_on(&pg_relay, &id, "the relay over the database to judge alike").await;
    let dq = tmp.path().join("tablet-q");
    sync(&dq, &pg_relay, LATECOMER);
    assert_eq!(authority_of(&dq), authority);
    // and it revokes the certificate the sled relay issued
    remove_device(&pg_relay, "tablet-i").await;
    revoked_on(&pg_relay, &id, "the relay over the database to revoke").await;
}
