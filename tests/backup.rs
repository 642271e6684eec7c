//! Backups and restores between real processes: a relay (`permitsync serve`
//! on sled, with tokens of two tenants and an admin token), devices that
//! are sled stores of their own syncing with `permitsync sync`, a backup
//! taken through the running relay (`permitsync backup --node URL`) while
//! devices and REST clients write, more writes after it, then the older
//! backup restored into a new relay on the same address with the same
//! identity. The devices reconnect; since the restored relay announces a new
//! epoch, they forget their cursors and sync states for it and push again
//! what it lost: in the end the relay holds every change the devices hold,
//! and the tenants, their devices and the documents' owners are the backup's.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use permitsync::store::Store;
use serde_json::Value;
use support::{cli, run_cli, NodeProcess};

const TOKENS: &str = r#"{"tokens": [
  {"token": "tablet-1-secret", "tenant": "acme", "device": "tablet-1", "mode": "read-write"},
  {"token": "tablet-2-secret", "tenant": "acme", "device": "tablet-2", "mode": "read-write"},
  {"token": "office-secret", "tenant": "acme", "device": "office", "mode": "read-write"},
  {"token": "other-secret", "tenant": "other", "device": "other-1", "mode": "read-write"}
]}"#;
const ADMIN: &str = "admin-token-for-backups-0123456789";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `permitsync --data DEVICE sync ws://RELAY/v1/sync?token=TOKEN`.
fn sync(device: &Path, relay: &NodeProcess, token: &str) {
    cli(device, &["sync", &relay.sync_url_with_token(token)]);
}

/// A new permit on `device`: its id.
fn create(device: &Path, title: &str) -> String {
    let out = cli(device, &["--json", "permit", "create", "--title", title]);
    let view: Value = serde_json::from_str(out.trim()).expect("JSON view");
    view["id"].as_str().expect("id").to_string()
}

fn edit(device: &Path, id: &str, description: &str) {
    cli(device, &["permit", "set", id, "--description", description]);
}

/// Every document of a stopped store: id -> sorted heads.
fn heads(store: &Path) -> BTreeMap<String, Vec<String>> {
    let store = Store::open(store).expect("open a stopped store");
    store
        .summaries()
        .expect("summaries")
        .into_iter()
        .map(|s| {
            let mut h = s.heads.clone();
            h.sort();
            (s.id.to_string(), h)
        })
        .collect()
}

/// The verified authors of document `id`'s changes on `relay` (device,
/// verification), each once, leaving out unverified ones (changes made before
/// the device first enrolled).
async fn authors(relay: &NodeProcess, id: &str, token: &str) -> Vec<(String, String)> {
    let (status, history) = get(relay, &format!("/v1/entities/{id}/history"), token).await;
    assert_eq!(status, 200, "{history}");
    let mut seen: Vec<(String, String)> = Vec::new();
    for e in history["entries"].as_array().expect("entries") {
        let a = &e["author"];
        if a["verification"] == "unverified" {
            continue;
        }
        let who = (
            a["device"].as_str().unwrap_or("?").to_string(),
            a["verification"].as_str().unwrap_or("?").to_string(),
        );
        if !seen.contains(&who) {
            seen.push(who);
        }
    }
    seen
}

async fn get(relay: &NodeProcess, path: &str, token: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(format!("{}{path}", relay.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_older_backup_loses_nothing_the_devices_still_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let tokens = root.join("tokens.json");
    std::fs::write(&tokens, TOKENS).expect("tokens");
    let admin = root.join("admin-token");
    std::fs::write(&admin, format!("{ADMIN}\n")).expect("admin token");
    let relay_args = ["--tokens", s(&tokens), "--admin-token-file", s(&admin)];
    let mut relay = NodeProcess::start(&root.join("relay"), &relay_args);
    let (tablet1, tablet2, other) = (
        root.join("tablet1"),
        root.join("tablet2"),
        root.join("other"),
    );

    // before the backup: documents on both tablets and in another tenant
    let early1 = create(&tablet1, "Replace pump seal");
    let early2 = create(&tablet2, "Scaffold on tank 4");
    let foreign = create(&other, "Other tenant's permit");
    sync(&tablet1, &relay, "tablet-1-secret");
    sync(&tablet2, &relay, "tablet-2-secret");
    sync(&other, &relay, "other-secret");
    sync(&tablet1, &relay, "tablet-1-secret");

    // the backup, taken while a REST client and a tablet write
    let writer = {
        let base = relay.base.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..40 {
                let res = client
                    .post(format!("{base}/v1/entities"))
                    .bearer_auth("office-secret")
                    .json(&serde_json::json!({"type": "permit", "title": format!("office {i}")}))
                    .send()
                    .await
                    .expect("POST");
                assert_eq!(res.status(), 201);
            }
        })
    };
    let tablet2_writes = {
        let (tablet2, url) = (
            tablet2.clone(),
            relay.sync_url_with_token("tablet-2-secret"),
        );
        tokio::task::spawn_blocking(move || {
            for i in 0..3 {
                create(&tablet2, &format!("during the backup {i}"));
                cli(&tablet2, &["sync", &url]);
            }
        })
    };
    let backup = root.join("relay.backup");
    let out = {
        let (base, backup) = (relay.base.clone(), backup.clone());
        tokio::task::spawn_blocking(move || {
            run_cli(
                Path::new("unused"),
                &[
                    "backup",
                    "--node",
                    &base,
                    "--token",
                    ADMIN,
                    "--out",
                    s(&backup),
                ],
            )
        })
        .await
        .expect("backup")
    };
    assert!(
        out.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("records written"));
    writer.await.expect("REST writer");
    tablet2_writes.await.expect("tablet 2");

    // after the backup: new documents and edits of old ones, synced to the relay
    let late1 = create(&tablet1, "Hot work at the flare");
    edit(&tablet1, &early1, "seal kit 7 on the pallet");
    edit(&tablet2, &early2, "inspection tag green");
    sync(&tablet1, &relay, "tablet-1-secret");
    sync(&tablet2, &relay, "tablet-2-secret");
    let (status, listed) = get(&relay, &format!("/v1/entities/{late1}"), "tablet-2-secret").await;
    assert_eq!(status, 200, "the relay had the late document: {listed}");

    // the relay is lost; the older backup comes back on a new data directory
    let addr = relay.addr().to_string();
    relay.sigkill();
    let restored = root.join("restored");
    let out = run_cli(&restored, &["restore", "--from", s(&backup)]);
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("new epoch"));
    let relay = NodeProcess::options(&restored)
        .listen(&addr)
        .args(&relay_args)
        .start();

    // the backup's tenants, owners and devices came back with it
    let (status, _) = get(&relay, &format!("/v1/entities/{late1}"), "tablet-1-secret").await;
    assert_eq!(status, 404, "the late document is not in the older backup");
    let (status, _) = get(&relay, &format!("/v1/entities/{foreign}"), "other-secret").await;
    assert_eq!(status, 200, "the other tenant's document is its own");
    let (status, _) = get(
        &relay,
        &format!("/v1/entities/{foreign}"),
        "tablet-1-secret",
    )
    .await;
    assert_eq!(status, 404, "and still invisible to acme");
    let (_, devices) = get(&relay, "/v1/devices", "tablet-1-secret").await;
    let names: Vec<&str> = devices["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter_map(|d| d["device"].as_str())
        .collect();
    assert!(
        names.contains(&"tablet-2"),
        "the device registry: {devices}"
    );

    // the devices reconnect and push what the restored relay lacks
    sync(&tablet1, &relay, "tablet-1-secret");
    sync(&tablet2, &relay, "tablet-2-secret");
    sync(&tablet1, &relay, "tablet-1-secret");
    sync(&other, &relay, "other-secret");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // and who wrote what is still known: the restored relay is the same
    // authority (its key came back), so the tablet's edit made after the
    // backup, pushed again with its signature, is verified as the tablet's;
    // the REST writes it attested before the backup still are
    let found = authors(&relay, &early1, "tablet-1-secret").await;
    assert!(
        found.contains(&("tablet-1".to_string(), "signed".to_string())),
        "the tablet's signed edit after the restore: {found:?}"
    );
    let (_, offices) = get(&relay, "/v1/entities?q=office&limit=1", "office-secret").await;
    let office = offices["entities"][0]["id"]
        .as_str()
        .expect("an office permit");
    let found = authors(&relay, office, "office-secret").await;
    assert!(
        found.contains(&("office".to_string(), "relay_attested".to_string())),
        "a REST write attested before the backup: {found:?}"
    );
    let found = authors(&relay, &late1, "tablet-1-secret").await;
    assert!(
        found.contains(&("tablet-1".to_string(), "signed".to_string())),
        "a document the restored relay lacked, pushed again: {found:?}"
    );
    let mut relay = relay;
    relay.sigkill();
    let on_relay = heads(&restored);
    for device in [&tablet1, &tablet2, &other] {
        for (id, device_heads) in heads(device) {
            let relay_heads = on_relay.get(&id);
            assert_eq!(
                relay_heads,
                Some(&device_heads),
                "document {id} of {} is not on the restored relay as the device holds it",
                device.display()
            );
        }
    }
    assert!(on_relay.contains_key(&late1) && on_relay.contains_key(&early1));
}

#[tokio::test]
async fn backups_need_the_admin_token_and_restores_refuse_what_would_lose_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let tokens = root.join("tokens.json");
    std::fs::write(&tokens, TOKENS).expect("tokens");
    let admin = root.join("admin-token");
    std::fs::write(&admin, ADMIN).expect("admin token");
    let relay = NodeProcess::start(
        &root.join("relay"),
        &["--tokens", s(&tokens), "--admin-token-file", s(&admin)],
    );
    let post = |token: &'static str| {
        let url = format!("{}/v1/admin/backup", relay.base);
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("POST");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = post("tablet-1-secret").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("not_admin")));
    let out = run_cli(
        Path::new("unused"),
        &[
            "backup",
            "--node",
            &relay.base,
            "--token",
            "tablet-1-secret",
            "--out",
            s(&root.join("b")),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not_admin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root.join("b").exists() && !root.join("b.partial").exists());

    // a store the node holds is not read behind its back
    let out = run_cli(
        &root.join("relay"),
        &["backup", "--out", s(&root.join("c"))],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--node URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let good = root.join("good.backup");
    let out = run_cli(
        Path::new("unused"),
        &[
            "backup",
            "--node",
            &relay.base,
            "--token",
            ADMIN,
            "--out",
            s(&good),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // an existing file is not overwritten
    let again = run_cli(
        Path::new("unused"),
        &[
            "backup",
            "--node",
            &relay.base,
            "--token",
            ADMIN,
            "--out",
            s(&good),
        ],
    );
    assert!(!again.status.success());

    // a damaged backup restores nothing and leaves no store behind
    let mut bytes = std::fs::read(&good).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let damaged = root.join("damaged.backup");
    std::fs::write(&damaged, bytes).expect("write");
    let target = root.join("target");
    let out = run_cli(&target, &["restore", "--from", s(&damaged)]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a usable permitsync backup"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!target.exists(), "a refused restore leaves nothing");

    // a store with data is never restored over
    let out = run_cli(&root.join("relay"), &["restore", "--from", s(&good)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let (status, _) = post(ADMIN).await;
    assert_eq!(status, 200, "the relay is untouched and still answers");
}
