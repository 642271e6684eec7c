//! The hard interlocks on every write interface of a real node: activation
//! needs every isolation point verified and the work type's gas test, closing
//! needs a completed closeout. A refused move writes nothing and names what is
//! missing; a move merged from another device is never refused and shows as a
//! violation instead (tests/store.rs, `cross_document_rules_are_reported_as_violations`).

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{run_cli, NodeProcess};

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .client
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, v)
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (s, v) = self.send(method, path, body).await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    async fn patch(&self, id: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PATCH, &format!("/v1/entities/{id}"), body)
            .await
    }

    async fn create(&self, body: Value) -> String {
        let v = self.ok(reqwest::Method::POST, "/v1/entities", body).await;
        v["id"].as_str().expect("id").to_string()
    }

    async fn view(&self, id: &str) -> Value {
        let res = self
            .client
            .get(format!("{}/v1/entities/{id}", self.base))
            .send()
            .await
            .expect("get");
        res.json().await.expect("json")
    }
}

fn assert_interlock(status: StatusCode, body: &Value, needles: &[&str]) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "rejected", "{body}");
    assert_eq!(body["reason"], "interlock", "{body}");
    let detail = body["detail"].as_str().expect("detail");
    for n in needles {
        assert!(detail.contains(n), "{n:?} not in {detail:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_refuses_activation_and_closing_until_the_rules_hold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeProcess::start(&dir.path().join("relay"), &[]);
    let http = Http {
        client: reqwest::Client::new(),
        base: node.base.clone(),
    };
    let p = http
        .create(
            json!({"type": "permit", "title": "Weld flange", "location": "Bay 3",
                       "work_type": "Hot Work", "safety_checklist": ["fire watch"]}),
        )
        .await;
    let iso = http
        .create(json!({"type": "isolation_point", "permit_id": p,
                       "description": "Breaker 4", "lock_ids": ["L-1"]}))
        .await;
    for body in [
        json!({"status": "submitted"}),
        json!({"status": "approved", "checklist": {"fire watch": true}}),
    ] {
        let (s, v) = http.patch(&p, body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let before = http.view(&p).await;

    // neither verified isolation nor a gas test: both named, nothing written
    let (s, v) = http.patch(&p, json!({"status": "active"})).await;
    assert_interlock(
        s,
        &v,
        &[
            "cannot activate the permit",
            "isolation point \"Breaker 4\" is assigned, not verified",
            "work type Hot Work needs a gas test and none is recorded",
        ],
    );
    assert_eq!(http.view(&p).await, before, "a refused move writes nothing");

    // verified isolation, still no gas test
    for st in ["isolated", "verified"] {
        let (s, v) = http.patch(&iso, json!({"status": st})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = http.patch(&p, json!({"status": "active"})).await;
    assert_interlock(s, &v, &["needs a gas test"]);
    assert!(
        !v["detail"].as_str().unwrap_or("").contains("Breaker 4"),
        "{v}"
    );

    http.ok(
        reqwest::Method::POST,
        &format!("/v1/entities/{p}/gas-readings"),
        json!({"gas": "LEL", "value": 1.0, "unit": "%", "min": 0.0, "max": 10.0}),
    )
    .await;
    let (s, v) = http.patch(&p, json!({"status": "active"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["fields"]["status"], "active");

    // closing needs a completed closeout
    let (s, v) = http.patch(&p, json!({"status": "completed"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = http.patch(&p, json!({"status": "closed"})).await;
    assert_interlock(
        s,
        &v,
        &["cannot close the permit: the permit has no completed closeout"],
    );
    let c = http
        .create(json!({"type": "closeout", "permit_id": p, "checklist": ["tools removed"]}))
        .await;
    let (s, v) = http.patch(&p, json!({"status": "closed"})).await;
    assert_interlock(s, &v, &["no completed closeout"]);
    let (s, v) = http
        .patch(
            &c,
            json!({"checklist": {"tools removed": true}, "completed": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = http.patch(&p, json!({"status": "closed"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["fields"]["status"], "closed");
    assert_eq!(v["violations"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_classic_api_rejects_an_interlocked_move() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeProcess::start(&dir.path().join("relay"), &[]);
    let http = Http {
        client: reqwest::Client::new(),
        base: node.base.clone(),
    };
    let p = http
        .create(
            json!({"type": "permit", "title": "Tank entry", "location": "T-4",
                       "work_type": "confined_space", "safety_checklist": ["ventilated"]}),
        )
        .await;
    for body in [
        json!({"status": "submitted"}),
        json!({"status": "approved", "checklist": {"ventilated": true}}),
    ] {
        let (s, v) = http.patch(&p, body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let version = http.view(&p).await["version"].as_u64().expect("version");
    let batch = json!({"device_id": "tab-classic-1", "client_time": 1_763_000_000_000u64,
        "changes": [{"entity": "permit", "op": "update_status", "offline_id": "s-1",
                     "server_id": p, "client_version": version,
                     "data": {"status": "active"}}]});
    let r = http
        .ok(
            reqwest::Method::POST,
            "/api/v1/ptw/sync-offline-data/",
            batch,
        )
        .await;
    let rejected = &r["rejected"][0];
    assert_eq!(rejected["reason"], "invalid_transition", "{r}");
    assert!(
        rejected["detail"]
            .as_str()
            .unwrap_or("")
            .contains("cannot activate the permit: work type confined_space needs a gas test"),
        "{r}"
    );
    assert_eq!(http.view(&p).await["fields"]["status"], "approved");
}

/// Through the CLI on the store in `data` (with `extra` global flags first):
/// a permit of `work_type` with one checklist item, ticked, submitted and
/// approved. Its id.
fn approved_permit(data: &std::path::Path, extra: &[&str], work_type: &str) -> String {
    let run = |args: &[&str]| {
        let mut all = extra.to_vec();
        all.extend_from_slice(args);
        let out = run_cli(data, &all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let p = run(&[
        "permit",
        "create",
        "--title",
        "Line break",
        "--work-type",
        work_type,
        "--check",
        "drained",
    ])
    .trim()
    .to_string();
    for args in [
        ["permit", "tick", &p, "drained"],
        ["permit", "status", &p, "submitted"],
        ["permit", "status", &p, "approved"],
    ] {
        run(&args);
    }
    p
}

#[test]
fn the_cli_refuses_an_interlocked_move_and_names_what_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();
    let run = |args: &[&str]| run_cli(data, args);
    let p = approved_permit(data, &[], "mechanical");
    let out = run(&[
        "isolation",
        "create",
        "--permit",
        &p,
        "--description",
        "Suction valve V-12",
    ]);
    assert!(out.status.success());
    let out = run(&["permit", "status", &p, "active"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).expect("utf-8");
    assert_eq!(
        err.trim(),
        "error: cannot activate the permit: isolation point \"Suction valve V-12\" is assigned, not verified"
    );
    let out = run(&["--json", "show", &p]);
    let view: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(view["fields"]["status"], "approved");
}

#[test]
fn require_gas_configures_which_gases_a_work_type_needs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();
    let rule = ["--require-gas", "line break=O2, H2S"];
    let run = |args: &[&str]| {
        let mut all = rule.to_vec();
        all.extend_from_slice(args);
        run_cli(data, &all)
    };
    let p = approved_permit(data, &rule, "Line Break");
    let out = run(&[
        "permit", "gas", &p, "--gas", "O2", "--value", "20.9", "--unit", "%", "--min", "19.5",
        "--max", "23.5",
    ]);
    assert!(out.status.success());
    let out = run(&["permit", "status", &p, "active"]);
    let err = String::from_utf8(out.stderr).expect("utf-8");
    assert_eq!(
        err.trim(),
        "error: cannot activate the permit: work type Line Break needs a reading of gas H2S"
    );
    // without the rule, a line break needs no gas test
    assert!(run_cli(data, &["permit", "status", &p, "active"])
        .status
        .success());
    // a malformed rule is refused before anything is opened
    let out = run_cli(data, &["--require-gas", "no rule", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--require-gas"));
}
