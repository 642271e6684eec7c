//! The listing (`GET /v1/entities` with `q`, `status`, `alarm`, `limit`,
//! `cursor`) and the alarms (`GET /v1/alarms`), driven in-process with
//! `oneshot` over a real sled store. One router serves every request, so the
//! index of what the listing read of documents lives across them, as on a
//! running node: a change must show on the next request.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use permitsync::node::{rest_router, Auth, Devices, Hub, Metrics, NodeState};
use permitsync::store::{Store, SystemClock};
use permitsync::wire::Limits;
use serde_json::{json, Value};
use tower::ServiceExt;

const ACME: &str = "acme-rw-token";
const ACME_RO: &str = "acme-ro-token";
const GLOBEX: &str = "globex-rw-token";

struct Node {
    app: Router,
    _dir: tempfile::TempDir,
}

fn node() -> Node {
    let tokens = serde_json::from_value(json!([
        {"token": ACME, "tenant": "acme", "device": "tablet-1", "mode": "read-write"},
        {"token": ACME_RO, "tenant": "acme", "device": "wall-screen", "mode": "read-only"},
        {"token": GLOBEX, "tenant": "globex", "device": "tablet-9", "mode": "read-write"},
    ]))
    .expect("token entries");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    let devices = Devices::load(&store).expect("devices");
    let state = NodeState {
        store,
        auth: Auth::from_tokens(tokens),
        hub: Hub::new(),
        metrics: Metrics::default(),
        devices,
        peer_id: "test".into(),
        limits: Limits::default(),
        clock: Arc::new(SystemClock),
        quotas: Default::default(),
        rate: Default::default(),
        admin_token: None,
        cluster: Default::default(),
    };
    Node {
        app: rest_router(Arc::new(state)),
        _dir: dir,
    }
}

impl Node {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("infallible");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn get(&self, uri: &str, token: &str) -> Value {
        let (status, v) = self.call(Method::GET, uri, token, None).await;
        assert_eq!(status, StatusCode::OK, "GET {uri}: {v}");
        v
    }

    async fn write(&self, method: Method, uri: &str, body: Value) -> Value {
        let (status, v) = self.call(method.clone(), uri, ACME, Some(body)).await;
        assert!(status.is_success(), "{method} {uri}: {status} {v}");
        v
    }

    async fn create(&self, body: Value) -> String {
        let v = self.write(Method::POST, "/v1/entities", body).await;
        v["id"].as_str().expect("an id").to_string()
    }

    async fn patch(&self, id: &str, body: Value) -> Value {
        self.write(Method::PATCH, &format!("/v1/entities/{id}"), body)
            .await
    }

    async fn reading(&self, id: &str, gas: &str, value: f64, unit: &str, max: f64) {
        self.write(
            Method::POST,
            &format!("/v1/entities/{id}/gas-readings"),
            json!({"gas": gas, "value": value, "unit": unit, "min": 0, "max": max}),
        )
        .await;
    }

    /// An active mechanical permit with one verified isolation point and an
    /// in-range H2S reading; returns (permit, isolation point).
    async fn active_permit(&self, title: &str) -> (String, String) {
        let id = self
            .create(
                json!({"type": "permit", "title": title, "location": "Pump house 2",
                           "work_type": "mechanical", "safety_checklist": ["isolation confirmed"]}),
            )
            .await;
        let point = self
            .create(
                json!({"type": "isolation_point", "permit_id": id, "description": "Main breaker"}),
            )
            .await;
        for st in ["isolated", "verified"] {
            self.patch(&point, json!({"status": st})).await;
        }
        self.reading(&id, "H2S", 2.0, "ppm", 10.0).await;
        self.patch(&id, json!({"checklist": {"isolation confirmed": true}}))
            .await;
        for st in ["submitted", "approved", "active"] {
            self.patch(&id, json!({"status": st})).await;
        }
        (id, point)
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["entities"]
        .as_array()
        .unwrap_or_else(|| panic!("entities in {page}"))
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

fn rules(alarms: &Value) -> Vec<&str> {
    alarms
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["rule"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn more_than_a_hundred_permits_are_paged_by_cursor_and_searched() {
    let n = node();
    let mut made = Vec::new();
    for i in 0..120 {
        let (location, work_type) = if i % 3 == 0 {
            ("Tank farm", "hot_work")
        } else {
            ("Pump house 2", "mechanical")
        };
        let description = if i == 77 {
            "Replace the cracked flange gasket"
        } else {
            "Routine work"
        };
        let id = n
            .create(json!({"type": "permit", "title": format!("Permit {i:03}"),
                           "location": location, "work_type": work_type,
                           "description": description}))
            .await;
        made.push(id);
    }
    let other = n
        .create(json!({"type": "isolation_point", "permit_id": made[0], "description": "Valve"}))
        .await;
    for st in ["submitted", "approved"] {
        n.patch(&made[5], json!({"status": st})).await;
    }
    n.patch(&made[7], json!({"status": "submitted"})).await;

    // pages of 50 over every permit, each once, approved first, then
    // submitted, then drafts newest first
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = n
            .get(
                &format!("/v1/entities?type=permit&limit=50&cursor={cursor}"),
                ACME,
            )
            .await;
        pages += 1;
        assert_eq!(page["total"], 120, "{page}");
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 50);
        seen.extend(page_ids);
        if page["has_more"] == false {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        }
        cursor = page["next_cursor"].as_str().expect("a cursor").to_string();
        assert!(pages < 5, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        120,
        "no permit twice"
    );
    assert!(!seen.contains(&other), "type=permit lists permits only");
    assert_eq!(
        seen[..3],
        [made[5].clone(), made[7].clone(), made[119].clone()]
    );
    assert_eq!(seen[119], made[0], "the oldest draft last");

    // the first page's items: summary fields, location and work type, alarms
    let page = n
        .get("/v1/entities?type=permit&cursor=&limit=1", ACME)
        .await;
    let first = &page["entities"][0];
    assert_eq!(first["title"], "Permit 005");
    assert_eq!(first["status"], "approved");
    assert_eq!(first["location"], "Pump house 2");
    assert_eq!(first["work_type"], "mechanical");
    assert_eq!(first["alarms"], json!([]));
    assert_eq!(page["counts"]["statuses"]["draft"], 118, "{page}");
    assert_eq!(page["counts"]["statuses"]["approved"], 1, "{page}");

    // search: title, location, work type, description, id; all words must match
    let q = |q: &str| format!("/v1/entities?type=permit&limit=200&q={q}");
    assert_eq!(
        ids(&n.get(&q("permit%20042"), ACME).await),
        [made[42].clone()]
    );
    assert_eq!(n.get(&q("tank%20farm"), ACME).await["total"], 40);
    assert_eq!(n.get(&q("HOT_WORK"), ACME).await["total"], 40);
    assert_eq!(ids(&n.get(&q("flange"), ACME).await), [made[77].clone()]);
    assert_eq!(
        ids(&n.get(&q("flange%20tank"), ACME).await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&n.get(&q(&made[9][..13]), ACME).await),
        [made[9].clone()]
    );
    // status filter with a search; counts ignore the status filter
    let page = n
        .get(&format!("{}&status=submitted", q("pump")), ACME)
        .await;
    assert_eq!(ids(&page), [made[7].clone()]);
    assert_eq!(page["counts"]["statuses"]["draft"], 78, "{page}");
    // an edit is searchable on the next request
    n.patch(&made[100], json!({"location": "Boiler room B"}))
        .await;
    assert_eq!(ids(&n.get(&q("boiler"), ACME).await), [made[100].clone()]);
    // a deleted permit leaves the listing
    n.patch(&made[100], json!({"deleted": true})).await;
    assert_eq!(n.get(&q("boiler"), ACME).await["total"], 0);

    // another tenant lists only its own; a read-only token may list
    assert_eq!(
        n.get("/v1/entities?type=permit&cursor=", GLOBEX).await["total"],
        0
    );
    assert_eq!(
        n.get("/v1/entities?type=permit&q=permit", ACME_RO).await["total"],
        119
    );

    // the feed is unchanged: a numeric cursor, deleted entities included
    let feed = n.get("/v1/entities?limit=2", ACME).await;
    assert!(feed["next_cursor"].is_u64(), "{feed}");
    assert!(feed.get("total").is_none(), "{feed}");

    // bad parameters are 400 invalid_input
    for bad in [
        "/v1/entities?cursor=nope",
        "/v1/entities?alarm=maybe",
        "/v1/entities?q=x&status=activ",
        "/v1/entities?q=x&limit=0",
        "/v1/entities?q=x&since=3",
    ] {
        let (status, body) = n.call(Method::GET, bad, ACME, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_input", "{bad}: {body}");
    }
}

#[tokio::test]
async fn alarms_name_isolation_points_and_gases_and_clear_when_resolved() {
    let n = node();
    let (id, point) = n.active_permit("Replace pump seal").await;
    let (quiet, _) = n.active_permit("Quiet permit").await;
    n.create(json!({"type": "permit", "title": "A draft"}))
        .await;
    let status = n.get("/v1/status", ACME_RO).await;
    let access = &status["access"];
    assert_eq!(
        (&access["tenant"], &access["device"], &access["read_only"]),
        (&json!("acme"), &json!("wall-screen"), &json!(true)),
        "{access}"
    );
    // a read-only token may move no permit, whatever its roles
    let moves = access["transitions"].as_object().expect("transitions");
    assert!(
        moves
            .values()
            .all(|m| m.as_array().is_some_and(Vec::is_empty)),
        "{access}"
    );

    let alarms = n.get("/v1/alarms", ACME).await;
    assert_eq!(alarms, json!({"permits": [], "alarms": 0}));

    // an out-of-range reading on the active permit, and a new isolation point
    // not yet verified: both are alarms, named by gas and description
    n.reading(&id, "H2S", 12.5, "ppm", 10.0).await;
    let valve = n
        .create(json!({"type": "isolation_point", "permit_id": id, "description": "Suction valve V-12"}))
        .await;
    let alarms = n.get("/v1/alarms", ACME).await;
    assert_eq!(alarms["alarms"], 2, "{alarms}");
    let permits = alarms["permits"].as_array().expect("permits");
    assert_eq!(permits.len(), 1, "{alarms}");
    let p = &permits[0];
    assert_eq!(p["id"], id.as_str());
    assert_eq!(p["title"], "Replace pump seal");
    assert_eq!(p["location"], "Pump house 2");
    assert_eq!(
        rules(&p["alarms"]),
        ["isolation_not_verified", "gas_reading_out_of_range"]
    );
    let iso = &p["alarms"][0];
    assert_eq!(
        iso["detail"],
        "Isolation point \"Suction valve V-12\" is assigned, not verified"
    );
    assert_eq!(iso["isolation_point"]["id"], valve.as_str());
    assert_eq!(iso["isolation_point"]["description"], "Suction valve V-12");
    let gas = &p["alarms"][1];
    assert_eq!(
        gas["detail"],
        "Gas H2S: latest reading 12.5 ppm, allowed 0–10 ppm"
    );
    assert_eq!(gas["gas"]["unit"], "ppm");
    assert!(!iso["detail"].as_str().unwrap_or("").contains(&valve));
    // the view reports the same rules
    let view = n.get(&format!("/v1/entities/{id}"), ACME).await;
    let mut view_rules = rules(&view["violations"]);
    view_rules.sort();
    assert_eq!(
        view_rules,
        ["gas_reading_out_of_range", "isolation_not_verified"]
    );

    // the listing carries the alarms and filters on them
    let page = n.get("/v1/entities?type=permit&alarm=true", ACME).await;
    assert_eq!(ids(&page), [id.as_str()]);
    assert_eq!(page["counts"]["alarm"], 1);
    assert_eq!(rules(&page["entities"][0]["alarms"]).len(), 2);
    let page = n.get("/v1/entities?type=permit&alarm=false", ACME).await;
    assert_eq!(page["total"], 2, "{page}");
    assert!(ids(&page).contains(&quiet));
    let page = n
        .get("/v1/entities?type=permit&alarm=true&status=draft", ACME)
        .await;
    assert_eq!(page["total"], 0);

    // another tenant sees none of it
    assert_eq!(n.get("/v1/alarms", GLOBEX).await["alarms"], 0);

    // resolved: a new in-range reading, the valve verified
    n.reading(&id, "H2S", 4.0, "ppm", 10.0).await;
    let alarms = n.get("/v1/alarms", ACME).await;
    assert_eq!(
        rules(&alarms["permits"][0]["alarms"]),
        ["isolation_not_verified"]
    );
    for st in ["isolated", "verified"] {
        n.patch(&valve, json!({"status": st})).await;
    }
    assert_eq!(n.get("/v1/alarms", ACME).await["alarms"], 0);

    // a deisolated point on the active permit is an alarm again, by description
    n.patch(&point, json!({"status": "deisolated"})).await;
    let alarms = n.get("/v1/alarms", ACME).await;
    assert_eq!(
        alarms["permits"][0]["alarms"][0]["detail"],
        "Isolation point \"Main breaker\" is deisolated, not verified"
    );
}
