//! The operator's routes against real node processes: settling a conflict
//! (`POST /v1/entities/{id}/resolve`) reaches every replica, and the audit
//! trail (`GET /v1/entities/{id}/history`) says who changed what.

mod support;

use std::time::Duration;

use permitsync::store::{Store, StoreOptions};
use permitsync::write::{Edit, NewPermit};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{eventually, NodeProcess};

/// Two stores holding one permit whose title two devices set concurrently.
fn conflicting_stores(a: &std::path::Path, b: &std::path::Path) -> String {
    let opts = |device: &str| StoreOptions {
        device: Some(device.into()),
        ..StoreOptions::default()
    };
    let sa = Store::open_with(a, opts("tablet-a")).expect("store a");
    let sb = Store::open_with(b, opts("tablet-b")).expect("store b");
    let id = sa
        .create_permit(NewPermit {
            title: "Hot work".into(),
            ..Default::default()
        })
        .expect("permit");
    sb.apply_changes(id, sa.changes_since(id, &[]).expect("changes"))
        .expect("copy");
    for (store, title) in [(&sa, "Hot work, bay 3"), (&sb, "Hot work, north bay")] {
        store
            .edit(
                id,
                Edit::SetField {
                    field: "title".into(),
                    value: title.into(),
                },
            )
            .expect("edit");
    }
    sa.apply_changes(id, sb.changes_since(id, &[]).expect("b"))
        .expect("merge into a");
    sb.apply_changes(id, sa.changes_since(id, &[]).expect("a"))
        .expect("merge into b");
    assert_eq!(sa.view(id).expect("a").conflicts.len(), 1);
    id.to_string()
}

async fn get(http: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let res = http.get(url).send().await.expect("GET");
    let status = res.status();
    (status, res.json().await.expect("JSON"))
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let res = http.post(url).json(&body).send().await.expect("POST");
    let status = res.status();
    (status, res.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resolution_reaches_every_replica_and_is_audited() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("relay"), dir.path().join("device"));
    let id = conflicting_stores(&a, &b);
    let relay = NodeProcess::start(&a, &[]);
    let device = NodeProcess::start(&b, &["--connect", &relay.sync_url()]);
    let http = reqwest::Client::new();
    let entity = |node: &NodeProcess| format!("{}/v1/entities/{id}", node.base);

    let (s, view) = get(&http, entity(&device)).await;
    assert_eq!(s, StatusCode::OK);
    let conflict = &view["conflicts"][0];
    assert_eq!(conflict["field"], "title");
    assert_eq!(conflict["values"].as_array().expect("values").len(), 2);

    // bad resolutions change nothing
    for (body, status, code) in [
        (
            json!({"field": "title", "resolution": "shrug"}),
            400,
            "invalid_input",
        ),
        (
            json!({"field": "title", "resolution": "merge"}),
            400,
            "invalid_input",
        ),
        (
            json!({"field": "location", "resolution": "use_server"}),
            409,
            "no_conflict",
        ),
        (
            json!({"field": "status", "resolution": "merge", "value": "active"}),
            400,
            "invalid_input",
        ),
        (json!({"field": "title"}), 400, "bad_json"),
    ] {
        let (s, v) = post(&http, format!("{}/resolve", entity(&relay)), body.clone()).await;
        assert_eq!(s.as_u16(), status, "{body} -> {v}");
        assert_eq!(v["error"], code, "{body} -> {v}");
    }
    let (s, v) = post(
        &http,
        format!(
            "{}/v1/entities/00000000-0000-4000-8000-000000000000/resolve",
            relay.base
        ),
        json!({"field": "title", "resolution": "use_server"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // a merged value, written on the relay
    let (s, resolved) = post(
        &http,
        format!("{}/resolve", entity(&relay)),
        json!({"field": "title", "resolution": "merge", "value": "Hot work, bay 3 (north)"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["fields"]["title"], "Hot work, bay 3 (north)");
    assert_eq!(resolved["conflicts"], json!([]));
    // ... and gone on the device too
    eventually(
        Duration::from_secs(30),
        "the resolution on the device",
        || {
            let (http, url) = (&http, entity(&device));
            async move {
                let (_, v) = get(http, url).await;
                (v["conflicts"] == json!([]) && v["fields"]["title"] == "Hot work, bay 3 (north)")
                    .then_some(())
            }
        },
    )
    .await;

    // the audit trail: the create, both edits, the resolution
    let (s, history) = get(&http, format!("{}/history", entity(&device))).await;
    assert_eq!(s, StatusCode::OK, "{history}");
    let entries = history["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 4, "{history}");
    assert_eq!(entries[0]["device"], "tablet-a");
    let devices: Vec<&str> = entries[1..3]
        .iter()
        .map(|e| e["device"].as_str().expect("device"))
        .collect();
    assert!(
        devices.contains(&"tablet-a") && devices.contains(&"tablet-b"),
        "{history}"
    );
    let last = &entries[3];
    assert_eq!(last["via"], "resolve");
    assert_eq!(last["resolution"]["field"], "title");
    assert_eq!(last["resolution"]["resolution"], "merge");
    assert_eq!(
        last["resolution"]["replaced"]
            .as_array()
            .expect("replaced")
            .len(),
        2
    );
    assert_eq!(last["ops"][0]["field"], "title");
    assert_eq!(last["ops"][0]["value"], "Hot work, bay 3 (north)");
    assert!(last["time"].as_i64().expect("time") > 1_600_000_000);
    let (s, v) = get(
        &http,
        format!(
            "{}/v1/entities/00000000-0000-4000-8000-000000000000/history",
            relay.base
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}
