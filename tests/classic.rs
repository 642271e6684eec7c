//! The classic sync API (`POST /api/v1/ptw/sync-offline-data/`, `GET
//! /api/v1/sync/changes`) against real `permitsync serve` processes on real
//! sled stores, mixed with ordinary REST writers and CRDT device nodes.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{eventually, NodeProcess};

const SYNC: &str = "/api/v1/ptw/sync-offline-data/";
const CLASSIC_DEVICE: &str = "tab-classic-7";

struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(node: &NodeProcess) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: node.base.clone(),
            token: None,
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, v)
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.json(reqwest::Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn patch(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.json(reqwest::Method::PATCH, path, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Post one batch from the classic device.
    async fn batch(&self, changes: Vec<Value>) -> Value {
        let body = json!({"device_id": CLASSIC_DEVICE, "client_time": 1_763_000_000_000u64, "changes": changes});
        let (s, v) = self.json(reqwest::Method::POST, SYNC, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Post one change; its single outcome and the section it is in.
    async fn one(&self, change: Value) -> (&'static str, Value) {
        let r = self.batch(vec![change]).await;
        for section in ["applied", "conflicts", "rejected"] {
            if let Some(item) = r[section].as_array().and_then(|a| a.first()) {
                return (section, item.clone());
            }
        }
        panic!("no outcome in {r}");
    }
}

fn fields(view: &Value) -> &Value {
    &view["fields"]
}

fn set_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn classic_changes_apply_merge_conflict_and_reject() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = NodeProcess::start(&dir.path().join("relay"), &[]);
    let api = Api::new(&node);

    // create: applied, with a server id and version 1
    let (section, created) = api
        .one(
            json!({"entity": "permit", "op": "create", "offline_id": "c-1",
                    "data": {"title": "Hot work", "location": "Bay 3", "work_type": "hot_work",
                             "description": "Weld the flange",
                             "ppe_requirements": ["gloves"],
                             "safety_checklist": {"gas test": false, "fire watch": false}}}),
        )
        .await;
    assert_eq!(section, "applied", "{created}");
    assert_eq!(created["status"], "applied");
    let id = created["server_id"]
        .as_str()
        .expect("server_id")
        .to_string();
    let v1 = created["new_version"].as_u64().expect("version");
    assert!(v1 >= 1);
    let view = api.get(&format!("/v1/entities/{id}")).await;
    assert_eq!(fields(&view)["title"], "Hot work");
    assert_eq!(fields(&view)["created_by"], CLASSIC_DEVICE);
    assert_eq!(
        view["version"], v1,
        "the view shows the version the client got"
    );

    // meanwhile a supervisor (another writer, through REST) edits the permit
    api.patch(
        &format!("/v1/entities/{id}"),
        json!({"title": "Hot work, bay 3", "ppe_add": ["helmet"], "checklist": {"gas test": true},
               "description": "Weld the north flange"}),
    )
    .await;

    // a stale scalar someone else changed: a conflict, nothing applied
    let (section, conflict) = api
        .one(
            json!({"entity": "permit", "op": "update", "offline_id": "u-1", "server_id": id,
                    "client_version": v1, "data": {"title": "Hot work (revised)"}}),
        )
        .await;
    assert_eq!(section, "conflicts", "{conflict}");
    assert_eq!(conflict["reason"], "stale_version");
    assert_eq!(conflict["client_version"], v1);
    assert!(conflict["server_version"].as_u64().expect("server_version") > v1);
    assert_eq!(conflict["fields"]["title"]["client"], "Hot work (revised)");
    assert_eq!(conflict["fields"]["title"]["server"], "Hot work, bay 3");
    assert_eq!(conflict["fields"]["title"]["merge_hint"], "last_write_wins");
    assert_eq!(conflict["server_state"]["title"], "Hot work, bay 3");
    let view = api.get(&format!("/v1/entities/{id}")).await;
    assert_eq!(
        fields(&view)["title"],
        "Hot work, bay 3",
        "a conflict changes nothing"
    );

    // set-merge, true-wins and text merge with the same stale version
    let (section, merged) = api
        .one(
            json!({"entity": "permit", "op": "update", "offline_id": "u-2", "server_id": id,
                    "client_version": v1,
                    "data": {"ppe_requirements": ["gloves", "goggles"],
                             "safety_checklist": {"gas test": false, "fire watch": true},
                             "description": "Weld the flange, then grind"}}),
        )
        .await;
    assert_eq!(section, "applied", "{merged}");
    assert_eq!(
        merged["merged"]["ppe_requirements"]["merge_hint"],
        "set_merge"
    );
    assert_eq!(
        merged["merged"]["safety_checklist"]["merge_hint"],
        "true_wins"
    );
    assert_eq!(merged["merged"]["description"]["merge_hint"], "text_merge");
    let view = api.get(&format!("/v1/entities/{id}")).await;
    let f = fields(&view);
    assert_eq!(
        set_of(&f["ppe_requirements"]),
        ["gloves", "goggles", "helmet"]
    );
    assert_eq!(
        f["safety_checklist"],
        json!({"gas test": true, "fire watch": true})
    );
    assert_eq!(f["description"], "Weld the north flange, then grind");
    let v_now = merged["new_version"].as_u64().expect("version");

    // a fresh version: the scalar applies
    let (section, fresh) = api
        .one(
            json!({"entity": "permit", "op": "update", "offline_id": "u-3", "server_id": id,
                    "client_version": v_now, "data": {"title": "Hot work (revised)"}}),
        )
        .await;
    assert_eq!(section, "applied", "{fresh}");
    assert!(fresh["new_version"].as_u64().expect("v") > v_now);

    // a photo, appended twice with the same offline id: one photo
    let photo = json!({"entity": "permit_photo", "op": "append", "offline_id": "ph-1",
                       "server_id": id,
                       "data": {"sha256": "ab".repeat(32), "mime": "image/jpeg", "size": 1234,
                                "caption": "flange before", "taken_at": 1_763_000_000_000i64}});
    let (section, first) = api.one(photo.clone()).await;
    assert_eq!(section, "applied", "{first}");
    let (section, again) = api.one(photo.clone()).await;
    assert_eq!(section, "applied", "{again}");
    assert_eq!(again["status"], "already_applied");
    assert_eq!(again["new_version"], first["new_version"]);
    let view = api.get(&format!("/v1/entities/{id}")).await;
    assert_eq!(
        fields(&view)["photos"].as_object().expect("photos").len(),
        1
    );

    // a gas reading
    let (section, gas) = api
        .one(
            json!({"entity": "gas_reading", "op": "append", "offline_id": "g-1", "server_id": id,
                    "data": {"gas": "H2S", "value": 2.5, "unit": "ppm", "min": 0, "max": 10}}),
        )
        .await;
    assert_eq!(section, "applied", "{gas}");

    // invalid status transition: rejected, nothing changes
    let status = |to: &str, offline: &str, version: u64| {
        json!({"entity": "permit", "op": "update_status", "offline_id": offline, "server_id": id,
               "client_version": version, "data": {"status": to}})
    };
    let v_gas = gas["new_version"].as_u64().expect("v");
    let (section, bad) = api.one(status("active", "s-1", v_gas)).await;
    assert_eq!(section, "rejected", "{bad}");
    assert_eq!(bad["reason"], "invalid_transition");
    assert!(
        bad["detail"]
            .as_str()
            .expect("detail")
            .contains("draft -> active"),
        "{bad}"
    );
    let (section, ok) = api.one(status("submitted", "s-2", v_gas)).await;
    assert_eq!(section, "applied", "{ok}");
    let view = api.get(&format!("/v1/entities/{id}")).await;
    assert_eq!(fields(&view)["status"], "submitted");

    // missing client_version
    let (section, missing) = api
        .one(
            json!({"entity": "permit", "op": "update", "offline_id": "u-4", "server_id": id,
                    "data": {"location": "Bay 4"}}),
        )
        .await;
    assert_eq!(section, "rejected", "{missing}");
    assert_eq!(missing["reason"], "missing_client_version");

    // isolation status never goes back
    let (s, iso) = api
        .json(
            reqwest::Method::POST,
            "/v1/entities",
            Some(json!({"type": "isolation_point", "permit_id": id, "description": "valve V-12"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{iso}");
    let iso_id = iso["id"].as_str().expect("id").to_string();
    let iso_update = |to: &str, offline: &str, version: u64| {
        json!({"entity": "isolation_point", "op": "update", "offline_id": offline,
               "server_id": iso_id, "client_version": version, "data": {"status": to}})
    };
    let (section, up) = api.one(iso_update("verified", "i-1", 1)).await;
    assert_eq!(section, "applied", "{up}");
    let (section, down) = api
        .one(iso_update(
            "isolated",
            "i-2",
            up["new_version"].as_u64().expect("v"),
        ))
        .await;
    assert_eq!(section, "rejected", "{down}");
    assert_eq!(down["reason"], "invalid_transition");
    let view = api.get(&format!("/v1/entities/{iso_id}")).await;
    assert_eq!(fields(&view)["status"], "verified");

    // malformed changes are rejected one by one; the batch goes on
    let r = api
        .batch(vec![
            json!({"entity": "permit", "op": "update"}),
            json!({"entity": "permit", "op": "explode", "offline_id": "x-1"}),
            json!({"entity": "permit", "op": "update", "offline_id": "x-2", "server_id": id,
                   "client_version": 1, "data": {"colour": "red"}}),
            json!({"entity": "permit", "op": "update", "offline_id": "x-3",
                   "server_id": "00000000-0000-4000-8000-000000000000",
                   "client_version": 1, "data": {"title": "x"}}),
            json!({"entity": "closeout", "op": "update", "offline_id": "x-4", "server_id": id,
                   "client_version": 1, "data": {"completed": true}}),
        ])
        .await;
    assert_eq!(r["summary"]["rejected"], 5, "{r}");
    for item in r["rejected"].as_array().expect("rejected") {
        assert_eq!(item["reason"], "validation_error", "{item}");
        assert!(!item["detail"].as_str().expect("detail").is_empty());
    }
    // a body that is not the payload: 400 and nothing
    let (s, v) = api
        .json(
            reqwest::Method::POST,
            SYNC,
            Some(json!({"changes": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].is_string());

    // after a restart (SIGKILL), the same changes are already applied
    let before = api.get(&format!("/v1/entities/{id}")).await;
    node.restart();
    let api = Api::new(&node);
    let r = api
        .batch(vec![
            json!({"entity": "permit", "op": "create", "offline_id": "c-1",
                   "data": {"title": "Hot work"}}),
            photo,
            status("submitted", "s-2", v_gas),
        ])
        .await;
    assert_eq!(r["summary"]["already_applied"], 3, "{r}");
    assert_eq!(r["applied"][0]["server_id"], id.as_str());
    let after = api.get(&format!("/v1/entities/{id}")).await;
    assert_eq!(
        after["heads"], before["heads"],
        "already_applied changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn classic_clients_and_crdt_devices_see_each_others_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let relay = NodeProcess::start(&dir.path().join("relay"), &[]);
    let device = NodeProcess::start(
        &dir.path().join("device"),
        &["--device", "tablet-crdt", "--connect", &relay.sync_url()],
    );
    let classic = Api::new(&relay);
    let tablet = Api::new(&device);

    // a classic create shows up on the CRDT device
    let (section, created) = classic
        .one(
            json!({"entity": "permit", "op": "create", "offline_id": "m-1",
                    "data": {"title": "Confined space entry", "ppe_requirements": ["harness"]}}),
        )
        .await;
    assert_eq!(section, "applied", "{created}");
    let id = created["server_id"].as_str().expect("id").to_string();
    eventually(Duration::from_secs(30), "the permit on the device", || {
        let (tablet, id) = (&tablet, id.clone());
        async move {
            let (s, v) = tablet
                .json(reqwest::Method::GET, &format!("/v1/entities/{id}"), None)
                .await;
            (s == StatusCode::OK && v["fields"]["title"] == "Confined space entry").then_some(())
        }
    })
    .await;

    // the device edits; the classic pull shows it, with a version to send back
    tablet
        .patch(
            &format!("/v1/entities/{id}"),
            json!({"location": "Tank 4", "ppe_add": ["gas monitor"]}),
        )
        .await;
    let item = eventually(
        Duration::from_secs(30),
        "the device's edit in the pull",
        || {
            let (classic, id) = (&classic, id.clone());
            async move {
                let page = classic
                    .get("/api/v1/sync/changes?since=0&types=permit")
                    .await;
                page["changes"]
                    .as_array()?
                    .iter()
                    .find(|c| c["id"] == id.as_str() && c["data"]["location"] == "Tank 4")
                    .cloned()
            }
        },
    )
    .await;
    assert_eq!(item["entity"], "permit");
    assert_eq!(item["deleted"], false);
    let version = item["version"].as_u64().expect("version");

    // an update against that version applies without conflict and reaches the device
    let (section, up) = classic
        .one(
            json!({"entity": "permit", "op": "update", "offline_id": "m-2", "server_id": id,
                    "client_version": version,
                    "data": {"title": "Confined space entry, tank 4",
                             "ppe_requirements": ["harness", "gas monitor", "radio"]}}),
        )
        .await;
    assert_eq!(section, "applied", "{up}");
    eventually(
        Duration::from_secs(30),
        "the classic update on the device",
        || {
            let (tablet, id) = (&tablet, id.clone());
            async move {
                let v = tablet.get(&format!("/v1/entities/{id}")).await;
                let f = &v["fields"];
                (f["title"] == "Confined space entry, tank 4"
                    && set_of(&f["ppe_requirements"]) == ["gas monitor", "harness", "radio"])
                .then_some(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pull_pages_filters_and_shows_tombstones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeProcess::start(&dir.path().join("relay"), &[]);
    let api = Api::new(&node);
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, c) = api
            .one(
                json!({"entity": "permit", "op": "create", "offline_id": format!("p-{i}"),
                        "data": {"title": format!("permit {i}")}}),
            )
            .await;
        ids.push(c["server_id"].as_str().expect("id").to_string());
    }
    let (s, iso) = api
        .json(
            reqwest::Method::POST,
            "/v1/entities",
            Some(json!({"type": "isolation_point", "permit_id": ids[0]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{iso}");
    api.patch(
        &format!("/v1/entities/{}", ids[1]),
        json!({"deleted": true}),
    )
    .await;

    // pages of 2 over everything: 6 entities, no repeats, last page says no more
    let (mut since, mut seen) = (0u64, Vec::new());
    loop {
        let page = api
            .get(&format!("/api/v1/sync/changes?since={since}&limit=2"))
            .await;
        for c in page["changes"].as_array().expect("changes") {
            seen.push(c["id"].as_str().expect("id").to_string());
        }
        assert!(page["next_cursor"].as_u64().expect("cursor") >= since);
        since = page["next_cursor"].as_u64().expect("cursor");
        if page["has_more"] == false {
            break;
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    let page = api
        .get("/api/v1/sync/changes?since=0&types=isolation_point")
        .await;
    assert_eq!(page["changes"].as_array().expect("changes").len(), 1);
    assert_eq!(page["changes"][0]["entity"], "isolation_point");
    let page = api.get("/api/v1/sync/changes?since=0&limit=100").await;
    let tomb = page["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["id"] == ids[1].as_str())
        .expect("the deleted permit is in the pull");
    assert_eq!(tomb["deleted"], true);
    // nothing after the end
    let end = api
        .get(&format!("/api/v1/sync/changes?since={since}"))
        .await;
    assert_eq!(end["changes"], json!([]));
    assert_eq!(end["has_more"], false);
    // bad parameters
    let (s, v) = api
        .json(
            reqwest::Method::GET,
            "/api/v1/sync/changes?types=rocket",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = api
        .json(reqwest::Method::GET, "/api/v1/sync/changes?since=-4", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_bind_the_classic_device() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens.json");
    std::fs::write(
        &tokens,
        json!({"tokens": [
            {"token": "t-classic", "tenant": "acme", "device": CLASSIC_DEVICE, "mode": "read-write"},
            {"token": "t-other", "tenant": "acme", "device": "tab-2", "mode": "read-write"},
            {"token": "t-ro", "tenant": "acme", "device": "screen", "mode": "read-only"},
            {"token": "t-globex", "tenant": "globex", "device": CLASSIC_DEVICE, "mode": "read-write"},
        ]})
        .to_string(),
    )
    .expect("tokens");
    let node = NodeProcess::start(
        &dir.path().join("relay"),
        &["--tokens", tokens.to_str().expect("utf-8 path")],
    );
    let mut api = Api::new(&node);
    let change = json!({"entity": "permit", "op": "create", "offline_id": "t-1",
                        "data": {"title": "Scaffold"}});
    let body = json!({"device_id": CLASSIC_DEVICE, "changes": [change]});
    let (s, v) = api
        .json(reqwest::Method::POST, SYNC, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    for (token, status, code) in [
        ("t-other", StatusCode::FORBIDDEN, "device_mismatch"),
        ("t-ro", StatusCode::FORBIDDEN, "read_only"),
    ] {
        api.token = Some(token.into());
        let (s, v) = api
            .json(reqwest::Method::POST, SYNC, Some(body.clone()))
            .await;
        assert_eq!(s, status, "{v}");
        assert_eq!(v["error"], code, "{v}");
    }
    api.token = Some("t-classic".into());
    let (s, v) = api.json(reqwest::Method::POST, SYNC, Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["summary"]["applied"], 1, "{v}");
    let acme_id = v["applied"][0]["server_id"]
        .as_str()
        .expect("id")
        .to_string();
    // the read-only token may pull
    api.token = Some("t-ro".into());
    let page = api.get("/api/v1/sync/changes").await;
    assert_eq!(page["changes"].as_array().expect("changes").len(), 1);

    // another tenant with a device of the same name and the same offline id:
    // its own create, not acme's answer
    api.token = Some("t-globex".into());
    let r = api.batch(vec![change]).await;
    assert_eq!(r["summary"]["applied"], 1, "{r}");
    let globex_id = r["applied"][0]["server_id"].as_str().expect("id");
    assert_ne!(globex_id, acme_id);
    // and acme's permit is unknown to it: an update is rejected, a pull shows
    // only its own
    let r = api
        .batch(vec![
            json!({"entity": "permit", "op": "update", "offline_id": "t-2",
                           "server_id": acme_id, "client_version": 1,
                           "data": {"title": "taken over"}}),
        ])
        .await;
    assert_eq!(r["rejected"][0]["reason"], "validation_error", "{r}");
    let page = api.get("/api/v1/sync/changes").await;
    assert_eq!(page["changes"].as_array().expect("changes").len(), 1);
    assert_eq!(page["changes"][0]["id"], globex_id);
    api.token = Some("t-classic".into());
    let view = api.get(&format!("/v1/entities/{acme_id}")).await;
    assert_eq!(view["fields"]["title"], "Scaffold");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_racing_each_other_apply_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeProcess::start(&dir.path().join("relay"), &[]);
    let api = Api::new(&node);
    let (_, created) = api
        .one(
            json!({"entity": "permit", "op": "create", "offline_id": "r-1",
                    "data": {"title": "Race", "description": "base"}}),
        )
        .await;
    let id = created["server_id"].as_str().expect("id").to_string();
    let v1 = created["new_version"].as_u64().expect("version");
    // someone else edits the text, so the client's stale edit merges
    api.patch(
        &format!("/v1/entities/{id}"),
        json!({"description": "base, edited"}),
    )
    .await;
    let change = json!({"entity": "permit", "op": "update", "offline_id": "r-2",
                        "server_id": id, "client_version": v1,
                        "data": {"description": "X base"}});
    // the same batch four times at once (a client retrying on a flaky network)
    let replies =
        futures_util::future::join_all((0..4).map(|_| api.batch(vec![change.clone()]))).await;
    let applied = replies
        .iter()
        .filter(|r| r["applied"][0]["status"] == "applied")
        .count();
    let already = replies
        .iter()
        .filter(|r| r["applied"][0]["status"] == "already_applied")
        .count();
    assert_eq!((applied, already), (1, 3), "{replies:?}");
    let view = api.get(&format!("/v1/entities/{id}")).await;
    assert_eq!(view["fields"]["description"], "X base, edited");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_sending_whole_records_conflicts_only_on_what_it_changed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeProcess::start(&dir.path().join("relay"), &[]);
    let api = Api::new(&node);
    let (_, created) = api
        .one(
            json!({"entity": "permit", "op": "create", "offline_id": "w-1",
                    "data": {"title": "Whole", "location": "Bay 1", "work_type": "electrical"}}),
        )
        .await;
    let id = created["server_id"].as_str().expect("id").to_string();
    let v1 = created["new_version"].as_u64().expect("version");
    api.patch(&format!("/v1/entities/{id}"), json!({"location": "Bay 2"}))
        .await;
    // the whole record as the client had it, with only the title changed
    let (section, r) = api
        .one(
            json!({"entity": "permit", "op": "update", "offline_id": "w-2", "server_id": id,
                    "client_version": v1,
                    "data": {"title": "Whole, revised", "location": "Bay 1",
                             "work_type": "electrical", "version": v1,
                             "updated_at": 1_763_000_000_000u64}}),
        )
        .await;
    assert_eq!(section, "applied", "{r}");
    let view = api.get(&format!("/v1/entities/{id}")).await;
    assert_eq!(view["fields"]["title"], "Whole, revised");
    assert_eq!(
        view["fields"]["location"], "Bay 2",
        "the stale location did not win"
    );
    // a batch over the limit: 413, nothing applied
    let many: Vec<Value> = (0..1001)
        .map(|i| {
            json!({"entity": "permit", "op": "create", "offline_id": format!("m-{i}"),
                        "data": {"title": "many"}})
        })
        .collect();
    let (s, v) = api
        .json(
            reqwest::Method::POST,
            SYNC,
            Some(json!({"device_id": CLASSIC_DEVICE, "changes": many})),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"], "too_many_changes");
    let page = api.get("/api/v1/sync/changes?limit=1000").await;
    assert_eq!(page["changes"].as_array().expect("changes").len(), 1);
}
