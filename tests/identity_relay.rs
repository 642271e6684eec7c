//! Who may do what, with real processes: a relay with roles in its tokens
//! file certifies the devices that sync with it; a device with `issuer`
//! approves offline and its approval counts on a device that got it peer to
//! peer before either saw the relay; a `performer` cannot approve, neither
//! from the CLI nor from an unmodified JavaScript automerge-repo client;
//! removing a device revokes its certificates and flags its approvals on
//! every replica; a relay's `--role-table` that lets performers approve
//! holds on every replica, and taking it back (SIGHUP) re-judges.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{cli, install_js_deps, node_js_installed, repo_root, run_cli, run_js, NodeProcess};

const P: &str = "performer-secret";
const I: &str = "issuer-secret";
const JS_ISSUER: &str = "js-issuer-secret";
const JS_PERFORMER: &str = "js-performer-secret";

fn tokens(dir: &Path) -> String {
    let t = json!({"tokens": [
        {"token": P, "tenant": "acme", "device": "tablet-p", "mode": "read-write",
         "roles": ["performer"], "person": "P. Jones"},
        {"token": I, "tenant": "acme", "device": "tablet-i", "mode": "read-write",
         "roles": ["issuer"], "person": "J. Smith"},
        {"token": JS_ISSUER, "tenant": "acme", "device": "js-issuer", "mode": "read-write",
         "roles": ["issuer"]},
        {"token": JS_PERFORMER, "tenant": "acme", "device": "js-performer",
         "mode": "read-write", "roles": ["performer"]},
    ]});
    let path = dir.join("tokens.json");
    std::fs::write(&path, t.to_string()).expect("tokens");
    path.to_str().expect("utf-8").to_string()
}

fn sync(data: &Path, url: &str) {
    cli(data, &["sync", url, "--timeout", "60"]);
}

fn show(data: &Path, id: &str) -> Value {
    serde_json::from_str(&cli(data, &["--json", "show", id])).expect("view JSON")
}

fn create_submitted(data: &Path, title: &str) -> String {
    let id = cli(data, &["permit", "create", "--title", title])
        .trim()
        .to_string();
    cli(data, &["permit", "status", &id, "submitted"]);
    id
}

struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Http {
        Http {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client: reqwest::Client::new(),
        }
    }

    fn call(&self, method: reqwest::Method, url: &str, token: &str) -> (u16, Value) {
        self.rt.block_on(async {
            let res = self
                .client
                .request(method, url)
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            let status = res.status().as_u16();
            let text = res.text().await.expect("body");
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    fn view(&self, relay: &NodeProcess, id: &str) -> Value {
        let (status, v) = self.call(
            reqwest::Method::GET,
            &format!("{}/v1/entities/{id}", relay.base),
            P,
        );
        assert_eq!(status, 200, "{v}");
        v
    }
}

fn not_authorized(view: &Value) -> Vec<String> {
    view["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["reason"] == "not_authorized")
        .map(|r| r["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn roles_hold_across_devices_peer_to_peer_relays_and_revocation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let tokens = tokens(dir);
    let relay = NodeProcess::start(&dir.join("relay"), &["--tokens", &tokens]);
    let (dp, di) = (dir.join("tablet-p"), dir.join("tablet-i"));

    // enrollment: the first sync with a token certifies the device's roles
    sync(&dp, &relay.sync_url_with_token(P));
    sync(&di, &relay.sync_url_with_token(I));
    let id_p: Value = serde_json::from_str(&cli(&dp, &["--json", "identity"])).expect("json");
    assert_eq!(id_p["mode"], "enforced", "{id_p}");
    assert_eq!(id_p["tenant"], "acme", "{id_p}");
    assert_eq!(id_p["certificate"]["roles"], json!(["performer"]), "{id_p}");
    assert_eq!(id_p["certificate"]["person"], "P. Jones", "{id_p}");
    let text = cli(&di, &["identity"]);
    assert!(
        text.contains("issuer") && text.contains("J. Smith"),
        "{text}"
    );

    // a performer submits, and cannot approve: nothing is written
    let id = create_submitted(&dp, "Hot work on line 4");
    let refused = run_cli(&dp, &["permit", "status", &id, "approved"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("not authorized: approving a permit needs the role issuer"),
        "{stderr}"
    );
    assert_eq!(show(&dp, &id)["fields"]["status"], "submitted");

    // peer to peer, no relay: the issuer's tablet gets it, approves offline,
    // and the performer's tablet takes the approval as valid
    let tablet_i = NodeProcess::start(&di, &[]);
    sync(&dp, &tablet_i.sync_url());
    drop(tablet_i);
    cli(&di, &["permit", "status", &id, "approved"]);
    let tablet_i = NodeProcess::start(&di, &[]);
    sync(&dp, &tablet_i.sync_url());
    drop(tablet_i);
    let on_p = show(&dp, &id);
    assert_eq!(on_p["fields"]["status"], "approved", "{on_p}");
    assert!(not_authorized(&on_p).is_empty(), "{on_p}");
    let shown = cli(&dp, &["show", &id]);
    assert!(
        shown.contains("approved   J. Smith on tablet-i, signed")
            && shown.contains("submitted  P. Jones on tablet-p, signed"),
        "{shown}"
    );

    // the relay judges the same once it gets it
    sync(&dp, &relay.sync_url_with_token(P));
    let http = Http::new();
    let on_relay = http.view(&relay, &id);
    assert_eq!(on_relay["fields"]["status"], "approved", "{on_relay}");

    // an unmodified JavaScript client: an issuer token approves, a
    // performer token cannot
    if js_ready() {
        let a = create_submitted(&dp, "Approved by a JS issuer");
        let b = create_submitted(&dp, "Approved by a JS performer");
        sync(&dp, &relay.sync_url_with_token(P));
        js_approve(&relay, JS_ISSUER, &a, dir);
        js_approve(&relay, JS_PERFORMER, &b, dir);
        let va = http.view(&relay, &a);
        assert_eq!(va["fields"]["status"], "approved", "{va}");
        let vb = http.view(&relay, &b);
        assert_eq!(vb["fields"]["status"], "submitted", "{vb}");
        let why = not_authorized(&vb);
        assert!(
            why.iter()
                .any(|d| d.contains("needs the role issuer") && d.contains("js-performer")),
            "{vb}"
        );
        // and a device that syncs judges alike
        sync(&dp, &relay.sync_url_with_token(P));
        assert_eq!(show(&dp, &a)["fields"]["status"], "approved");
        assert_eq!(show(&dp, &b)["fields"]["status"], "submitted");
    }

    // removing the issuer's tablet revokes its certificates: its approval
    // is flagged on the relay, and on the performer's tablet after a sync
    let (status, body) = http.call(
        reqwest::Method::DELETE,
        &format!("{}/v1/devices/tablet-i", relay.base),
        P,
    );
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = http.view(&relay, &id);
        if v["fields"]["status"] == "submitted" {
            assert!(
                not_authorized(&v)
                    .iter()
                    .any(|d| d.contains("tablet-i") && d.contains("revoked")),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "still {v}\n{}", relay.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    sync(&dp, &relay.sync_url_with_token(P));
    let flagged = show(&dp, &id);
    assert_eq!(flagged["fields"]["status"], "submitted", "{flagged}");
}

#[test]
fn a_relays_role_table_lets_performers_approve_on_every_replica() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let tokens = tokens(dir);
    let table = dir.join("role-table.json");
    let write_table = |rows: Value| {
        std::fs::write(&table, json!({ "acme": rows }).to_string()).expect("role table")
    };
    write_table(json!({"permit submitted -> approved": ["issuer", "performer"]}));
    let relay = NodeProcess::start(
        &dir.join("relay"),
        &[
            "--tokens",
            &tokens,
            "--role-table",
            table.to_str().expect("utf-8"),
        ],
    );
    let (dp, di) = (dir.join("tablet-p"), dir.join("tablet-i"));
    sync(&dp, &relay.sync_url_with_token(P));
    sync(&di, &relay.sync_url_with_token(I));

    // the performer's tablet got the table when it enrolled: it approves
    let text = cli(&dp, &["identity"]);
    assert!(
        text.contains("role table  version 1")
            && text.contains("permit submitted -> approved: performer or issuer"),
        "{text}"
    );
    let id = create_submitted(&dp, "Approved by a performer");
    cli(&dp, &["permit", "status", &id, "approved"]);
    assert_eq!(show(&dp, &id)["fields"]["status"], "approved");
    sync(&dp, &relay.sync_url_with_token(P));
    let http = Http::new();
    let on_relay = http.view(&relay, &id);
    assert_eq!(on_relay["fields"]["status"], "approved", "{on_relay}");
    assert!(not_authorized(&on_relay).is_empty(), "{on_relay}");
    // and the dashboard offers the performer's token the approval
    let moves = |relay: &NodeProcess| {
        let (status, body) = http.call(
            reqwest::Method::GET,
            &format!("{}/v1/status", relay.base),
            P,
        );
        assert_eq!(status, 200, "{body}");
        body["access"]["transitions"]["submitted"].clone()
    };
    assert_eq!(moves(&relay), json!(["draft", "approved"]));
    sync(&di, &relay.sync_url_with_token(I));
    let on_i = show(&di, &id);
    assert_eq!(on_i["fields"]["status"], "approved", "{on_i}");
    assert!(not_authorized(&on_i).is_empty(), "{on_i}");
    assert_eq!(on_i["authorship"]["approved_by"]["device"], "tablet-p");

    // back to the default table on SIGHUP: the relay signs a new version and
    // judges again at once; the devices after their next sync
    write_table(json!({}));
    relay.sighup();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = http.view(&relay, &id);
        if v["fields"]["status"] == "submitted" {
            assert!(
                not_authorized(&v)
                    .iter()
                    .any(|d| d.contains("approving a permit needs the role issuer")),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "still {v}\n{}", relay.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(moves(&relay), json!(["draft"]));
    sync(&di, &relay.sync_url_with_token(I));
    assert_eq!(show(&di, &id)["fields"]["status"], "submitted");
    sync(&dp, &relay.sync_url_with_token(P));
    assert_eq!(show(&dp, &id)["fields"]["status"], "submitted");
    let id2 = create_submitted(&dp, "Not approved by a performer");
    let refused = run_cli(&dp, &["permit", "status", &id2, "approved"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("not authorized: approving a permit needs the role issuer"),
        "{stderr}"
    );
}

fn js_ready() -> bool {
    if !node_js_installed() {
        assert_eq!(
            std::env::var("PERMITSYNC_SKIP_JS_INTEROP").as_deref(),
            Ok("1"),
            "`node` is not installed: run scripts/ensure-node.sh (or set PERMITSYNC_SKIP_JS_INTEROP=1)"
        );
        return false;
    }
    if !repo_root().join("tests/js/node_modules").is_dir() {
        install_js_deps(&[], "tests/js/node_modules");
    }
    true
}

fn js_approve(relay: &NodeProcess, token: &str, id: &str, dir: &Path) {
    let (code, stdout, stderr) = run_js(
        &repo_root().join("tests/js/roles.mjs"),
        dir,
        &[&relay.base, token, id],
        Duration::from_secs(60),
    );
    assert_eq!(
        code,
        Some(0),
        "roles.mjs failed\n{stdout}\n{stderr}\n{}",
        relay.log_tail()
    );
}
