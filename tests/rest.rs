//! The REST API, driven in-process with `oneshot` over a real sled store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use permitsync::node::{
    rest_router, Access, Auth, Devices, Direction, Hub, HubEvent, Metrics, NodeState, PeerStats,
};
use permitsync::store::{Store, SystemClock};
use permitsync::wire::Limits;
use serde_json::{json, Value};
use tower::ServiceExt;

const ACME: &str = "acme-rw-token";
const ACME_RO: &str = "acme-ro-token";
const GLOBEX: &str = "globex-rw-token";
const ACME_DEVICE: &str = "tablet-1";

struct Node {
    state: Arc<NodeState>,
    _dir: tempfile::TempDir,
}

fn node() -> Node {
    let tokens = serde_json::from_value(json!([
        {"token": ACME, "tenant": "acme", "device": "tablet-1", "mode": "read-write"},
        {"token": ACME_RO, "tenant": "acme", "device": "wall-screen", "mode": "read-only"},
        {"token": GLOBEX, "tenant": "globex", "device": "tablet-9", "mode": "read-write"},
    ]))
    .expect("token entries");
    node_with(Auth::from_tokens(tokens))
}

fn node_with(auth: Auth) -> Node {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    let devices = Devices::load(&store).expect("devices");
    let state = NodeState {
        store,
        auth,
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
        state: Arc::new(state),
        _dir: dir,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
}

impl Node {
    fn app(&self) -> Router {
        rest_router(self.state.clone())
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.app().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
        }
    }

    async fn raw(&self, method: Method, uri: &str, token: Option<&str>, body: &str) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if !body.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        self.send(req.body(Body::from(body.to_string())).expect("request"))
            .await
    }

    async fn get(&self, uri: &str, token: &str) -> Reply {
        self.raw(Method::GET, uri, Some(token), "").await
    }

    async fn post(&self, uri: &str, token: &str, body: Value) -> Reply {
        self.raw(Method::POST, uri, Some(token), &body.to_string())
            .await
    }

    async fn patch(&self, uri: &str, token: &str, body: Value) -> Reply {
        self.raw(Method::PATCH, uri, Some(token), &body.to_string())
            .await
    }

    /// Create a permit as `token`'s tenant; returns its id.
    async fn permit(&self, token: &str, title: &str) -> String {
        let r = self
            .post(
                "/v1/entities",
                token,
                json!({"type": "permit", "title": title, "location": "Pump house 2",
                       "work_type": "mechanical", "safety_checklist": ["isolation confirmed"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json()["id"].as_str().expect("id").to_string()
    }
}

fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.json()["error"], code, "{}", r.text);
    assert!(r.json()["detail"].is_string(), "{}", r.text);
}

#[tokio::test]
async fn a_permit_goes_through_the_workflow() {
    let n = node();
    let id = n.permit(ACME, "Replace pump seal").await;
    let uri = format!("/v1/entities/{id}");

    let r = n.get(&uri, ACME).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["type"], "permit");
    assert_eq!(v["fields"]["title"], "Replace pump seal");
    assert_eq!(v["fields"]["status"], "draft");
    assert_eq!(
        v["fields"]["safety_checklist"],
        json!({"isolation confirmed": false})
    );

    let r = n
        .patch(
            &uri,
            ACME,
            json!({"status": "submitted", "title": "Replace pump seal P-201",
                   "description": "Seal leaks", "ppe_add": ["gloves", "helmet"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["fields"]["status"], "submitted");
    assert_eq!(v["fields"]["title"], "Replace pump seal P-201");
    assert_eq!(v["fields"]["description"], "Seal leaks");
    assert_eq!(v["fields"]["ppe_requirements"], json!(["gloves", "helmet"]));

    let r = n.patch(&uri, ACME, json!({"status": "approved"})).await;
    assert_eq!(r.json()["fields"]["status"], "approved");
    // the guard: not every checklist item is ticked yet
    let r = n.patch(&uri, ACME, json!({"status": "active"})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "rejected");
    assert_eq!(r.json()["reason"], "guard_failed");

    let r = n
        .patch(
            &uri,
            ACME,
            json!({"checklist": {"isolation confirmed": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = n.patch(&uri, ACME, json!({"status": "active"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["fields"]["status"], "active");
    assert_eq!(
        r.json()["fields"]["ppe_requirements"],
        json!(["gloves", "helmet"])
    );

    // a PATCH that changes nothing is fine and writes nothing
    let heads = r.json()["heads"].clone();
    let r = n.patch(&uri, ACME, json!({"status": "active"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["heads"], heads);

    // an empty PATCH, and one that sets deleted to false, are refused
    let r = n.patch(&uri, ACME, json!({})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input");
    let r = n.patch(&uri, ACME, json!({"deleted": false})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input");
}

#[tokio::test]
async fn an_invalid_write_is_422_and_changes_nothing() {
    let n = node();
    let id = n.permit(ACME, "Hot work").await;
    let uri = format!("/v1/entities/{id}");
    let before = n.get(&uri, ACME).await.json();

    // a valid title change and an invalid transition: all or nothing
    let r = n
        .patch(&uri, ACME, json!({"title": "Changed", "status": "active"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"error": "rejected", "detail": "invalid transition draft -> active",
               "reason": "invalid_transition"})
    );
    assert_eq!(n.get(&uri, ACME).await.json(), before);

    // a field the entity does not have
    let r = n.patch(&uri, ACME, json!({"lock_add": ["L-1"]})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(n.get(&uri, ACME).await.json(), before);
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let n = node();
    let id = n.permit(ACME, "Scaffold").await;

    let r = n
        .raw(Method::POST, "/v1/entities", Some(ACME), "{not json")
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");
    let r = n
        .post(
            "/v1/entities",
            ACME,
            json!({"type": "permit", "title": "x", "colour": "red"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");
    assert!(r.json()["detail"]
        .as_str()
        .expect("detail")
        .contains("colour"));
    let r = n
        .post(
            "/v1/entities",
            ACME,
            json!({"type": "ladder", "title": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");
    let r = n
        .post(
            "/v1/entities",
            ACME,
            json!({"type": "permit", "title": "  "}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input");
    let r = n
        .patch(&format!("/v1/entities/{id}"), ACME, json!({"titel": "x"}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");

    let unknown = uuid::Uuid::new_v4();
    let r = n.get(&format!("/v1/entities/{unknown}"), ACME).await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_entity");
    let r = n
        .patch(
            &format!("/v1/entities/{unknown}"),
            ACME,
            json!({"title": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_entity");
    let r = n.get("/v1/entities/not-a-uuid", ACME).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input");
    let r = n.get("/v1/entities?type=ladder", ACME).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input");
    let r = n.get("/v1/entities?since=abc", ACME).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input");
    let r = n.get("/v1/nothing-here", ACME).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");

    // the same id again from the device that created it: a retry, 200 with
    // the entity as it is (nothing new is written)
    let r = n
        .post(
            "/v1/entities",
            ACME,
            json!({"type": "permit", "id": id, "title": "again"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_ne!(r.json()["fields"]["title"], "again");
    // the same id as another type: taken
    let r = n
        .post(
            "/v1/entities",
            ACME,
            json!({"type": "closeout", "id": id, "permit_id": id}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "already_exists");
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let n = node();
    let r = n.raw(Method::GET, "/v1/entities", None, "").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
    let r = n.get("/v1/entities", "wrong-token").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = n
        .raw(Method::GET, &format!("/v1/entities?token={ACME}"), None, "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = n
        .raw(Method::GET, "/v1/entities?token=wrong", None, "")
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");

    // open routes
    let r = n.raw(Method::GET, "/healthz", None, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));
    let r = n.raw(Method::GET, "/metrics", None, "").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_read_only_token_reads_but_cannot_write() {
    let n = node();
    let id = n.permit(ACME, "Confined space").await;
    let uri = format!("/v1/entities/{id}");

    let r = n.get(&uri, ACME_RO).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = n.get("/v1/entities", ACME_RO).await;
    assert_eq!(r.json()["entities"].as_array().map(Vec::len), Some(1));

    let r = n
        .post(
            "/v1/entities",
            ACME_RO,
            json!({"type": "permit", "title": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "read_only");
    let r = n.patch(&uri, ACME_RO, json!({"title": "x"})).await;
    assert_error(&r, StatusCode::FORBIDDEN, "read_only");
    let r = n
        .post(
            &format!("{uri}/gas-readings"),
            ACME_RO,
            json!({"gas": "O2", "value": 20.9, "unit": "%", "min": 19.5, "max": 23.5}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "read_only");
    // refused before the body is read: bad JSON from a read-only token is 403 too
    let r = n.raw(Method::PATCH, &uri, Some(ACME_RO), "{oops").await;
    assert_error(&r, StatusCode::FORBIDDEN, "read_only");
    assert_eq!(
        n.get(&uri, ACME).await.json()["fields"]["title"],
        "Confined space"
    );
}

#[tokio::test]
async fn tenants_never_see_each_others_entities() {
    let n = node();
    let permit = n.permit(ACME, "Acme permit").await;
    let uri = format!("/v1/entities/{permit}");
    for patch in [
        json!({"status": "submitted"}),
        json!({"status": "approved", "checklist": {"isolation confirmed": true}}),
        json!({"status": "active"}),
    ] {
        let r = n.patch(&uri, ACME, patch).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // an isolation point added to the active permit, not yet verified: a
    // violation (activating with it in place is refused by the interlock)
    let r = n
        .post(
            "/v1/entities",
            ACME,
            json!({"type": "isolation_point", "permit_id": permit,
                   "description": "Breaker 4", "lock_ids": ["L-1"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["fields"]["status"], "assigned");
    let conflicts = n.get("/v1/conflicts", ACME).await.json();
    let listed = conflicts["entities"].as_array().expect("entities");
    assert_eq!(listed.len(), 1, "{conflicts}");
    assert_eq!(listed[0]["id"], permit.as_str());
    assert_eq!(listed[0]["violations"][0]["rule"], "isolation_not_verified");
    let r = n.get("/v1/conflicts?type=isolation_point", ACME).await;
    assert_eq!(r.json()["entities"], json!([]));

    // tenant B with a guessed id: the same answer as for an id nobody has
    let foreign = n.get(&uri, GLOBEX).await;
    assert_error(&foreign, StatusCode::NOT_FOUND, "unknown_entity");
    assert_eq!(foreign.json()["detail"], format!("unknown entity {permit}"));
    let r = n.patch(&uri, GLOBEX, json!({"title": "mine now"})).await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_entity");
    let r = n
        .post(
            &format!("{uri}/gas-readings"),
            GLOBEX,
            json!({"gas": "O2", "value": 20.9, "unit": "%", "min": 19.5, "max": 23.5}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_entity");
    // nor a child of A's permit
    for ty in ["isolation_point", "closeout"] {
        let r = n
            .post(
                "/v1/entities",
                GLOBEX,
                json!({"type": ty, "permit_id": permit}),
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "unknown_entity");
    }

    let list = n.get("/v1/entities", GLOBEX).await.json();
    assert_eq!(list["entities"], json!([]), "{list}");
    assert_eq!(
        n.get("/v1/conflicts", GLOBEX).await.json()["entities"],
        json!([])
    );
    let status = n.get("/v1/status", GLOBEX).await.json();
    assert_eq!(status["documents"], 0);
    assert_eq!(status["peer_id"], "test");
    let status = n.get("/v1/status", ACME).await.json();
    assert_eq!(status["documents"], 2);
    assert_eq!(status["peers"], json!([]));

    // A's permit is unchanged
    assert_eq!(
        n.get(&uri, ACME).await.json()["fields"]["title"],
        "Acme permit"
    );

    // an entity with A's id: B's own document of that id (each tenant has
    // its own id space), created as for any unknown id; A's stays A's
    let r = n
        .post(
            "/v1/entities",
            GLOBEX,
            json!({"type": "permit", "id": permit, "title": "squat"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["id"], permit.as_str());
    assert_eq!(n.get(&uri, GLOBEX).await.json()["fields"]["title"], "squat");
    assert_eq!(
        n.get(&uri, ACME).await.json()["fields"]["title"],
        "Acme permit"
    );
    // B's child of "its" permit belongs to B's permit, not A's
    let r = n
        .post(
            "/v1/entities",
            GLOBEX,
            json!({"type": "isolation_point", "permit_id": permit, "description": "B's"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let conflicts = n.get("/v1/conflicts", ACME).await.json();
    assert_eq!(conflicts["entities"].as_array().map(Vec::len), Some(1));
    let r = n
        .post(
            "/v1/entities",
            GLOBEX,
            json!({"type": "permit", "id": permit, "title": "again"}),
        )
        .await;
    // the same device again: a retry of its own create
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["fields"]["title"], "squat");
    let list = n.get("/v1/entities", GLOBEX).await.json();
    assert_eq!(list["entities"].as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(n.get("/v1/status", ACME).await.json()["documents"], 2);
}

#[tokio::test]
async fn entities_are_listed_from_the_feed_in_pages() {
    let n = node();
    let a = n.permit(ACME, "one").await;
    let b = n.permit(ACME, "two").await;
    let c = n.permit(ACME, "three").await;
    n.permit(GLOBEX, "not acme's").await;
    let r = n
        .post(
            "/v1/entities",
            ACME,
            json!({"type": "closeout", "permit_id": a, "checklist": ["site clean"], "notes": "ok"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let closeout = r.json()["id"].as_str().expect("id").to_string();
    let r = n
        .patch(
            &format!("/v1/entities/{closeout}"),
            ACME,
            json!({"checklist": {"site clean": true}, "completed": true, "notes": "all ok"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["fields"]["completed"], true);
    assert_eq!(r.json()["fields"]["notes"], "all ok");

    let page = n.get("/v1/entities?limit=2", ACME).await.json();
    let ids: Vec<&str> = page["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [a.as_str(), b.as_str()]);
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_u64().expect("cursor");

    let page = n
        .get(&format!("/v1/entities?since={cursor}&limit=10"), ACME)
        .await
        .json();
    let ids: Vec<&str> = page["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [c.as_str(), closeout.as_str()]);
    assert_eq!(page["has_more"], false);
    let end = page["next_cursor"].as_u64().expect("cursor");
    let page = n
        .get(&format!("/v1/entities?since={end}"), ACME)
        .await
        .json();
    assert_eq!(page["entities"], json!([]));
    assert_eq!(page["next_cursor"], end);

    let page = n.get("/v1/entities?type=closeout", ACME).await.json();
    assert_eq!(page["entities"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["entities"][0]["completed"], true);
    let page = n.get("/v1/entities?status=draft", ACME).await.json();
    assert_eq!(page["entities"].as_array().map(Vec::len), Some(3));

    // a deleted entity stays in the feed, marked deleted
    let r = n
        .patch(&format!("/v1/entities/{b}"), ACME, json!({"deleted": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let page = n
        .get(&format!("/v1/entities?since={end}"), ACME)
        .await
        .json();
    assert_eq!(page["entities"][0]["id"], b.as_str());
    assert_eq!(page["entities"][0]["deleted"], true);
}

#[tokio::test]
async fn gas_readings_are_appended() {
    let n = node();
    let id = n.permit(ACME, "Tank entry").await;
    let uri = format!("/v1/entities/{id}/gas-readings");
    let reading_id = uuid::Uuid::new_v4();
    let reading = json!({"id": reading_id, "gas": "H2S", "value": 2.0, "unit": "ppm",
                         "min": 0.0, "max": 5.0, "taken_at": 1_700_000_000_000_i64});
    let r = n.post(&uri, ACME, reading.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let entry = &r.json()["fields"]["gas_readings"][reading_id.to_string()];
    assert_eq!(entry["gas"], "H2S");
    assert_eq!(entry["value"], 2.0);
    assert_eq!(entry["unit"], "ppm");
    // the author is the token's device, not the node
    assert_eq!(entry["taken_by"], ACME_DEVICE);
    assert_eq!(r.json()["fields"]["created_by"], ACME_DEVICE);

    // the same reading again (a retry): nothing new
    let r = n.post(&uri, ACME, reading).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // the same id with other values: append-only
    let r = n
        .post(
            &uri,
            ACME,
            json!({"id": reading_id, "gas": "H2S", "value": 9.0, "unit": "ppm",
                   "min": 0.0, "max": 5.0}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "rejected");
    assert_eq!(r.json()["reason"], "append_only");
    let r = n
        .post(
            &uri,
            ACME,
            json!({"gas": "O2", "value": 20.0, "unit": "%", "min": 23.0, "max": 19.0}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input");
    let r = n.post(&uri, ACME, json!({"gas": "O2"})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");

    let r = n
        .post(
            &uri,
            ACME,
            json!({"gas": "O2", "value": 20.9, "unit": "%", "min": 19.5, "max": 23.5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let readings = r.json()["fields"]["gas_readings"].clone();
    assert_eq!(readings.as_object().map(|m| m.len()), Some(2));
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let n = node();
    n.permit(ACME, "Counted").await;
    n.get("/v1/entities", "wrong").await;
    let r = n.raw(Method::GET, "/metrics", None, "").await;
    assert_eq!(r.status, StatusCode::OK);
    let ct = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    for name in [
        "permitsync_peers_connected 0",
        "permitsync_documents 1",
        "permitsync_changes_applied_total 1",
        "permitsync_bytes_in_total",
        "permitsync_bytes_out_total",
        "permitsync_sync_messages_total{direction=\"in\"}",
        "permitsync_sync_messages_total{direction=\"out\"}",
        "permitsync_rejected_operations_total",
        "permitsync_http_requests_total",
        "permitsync_sync_duration_seconds_bucket{le=\"+Inf\"}",
        "permitsync_errors_total{kind=\"auth\"} 1",
    ] {
        assert!(r.text.contains(name), "missing {name} in\n{}", r.text);
    }
}

/// Every metric family `/metrics` serves (name and type) and every series
/// (name and labels), in order: what dashboards and alerts depend on.
#[tokio::test]
async fn the_metric_names_types_and_labels_are_pinned() {
    let n = node();
    let r = n.raw(Method::GET, "/metrics", None, "").await;
    assert_eq!(r.status, StatusCode::OK);
    let types: Vec<&str> = r
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .collect();
    assert_eq!(
        types,
        [
            "permitsync_peers_connected gauge",
            "permitsync_documents gauge",
            "permitsync_changes_applied_total counter",
            "permitsync_bytes_in_total counter",
            "permitsync_bytes_out_total counter",
            "permitsync_sync_messages_total counter",
            "permitsync_rejected_operations_total counter",
            "permitsync_http_requests_total counter",
            "permitsync_sync_duration_seconds histogram",
            "permitsync_errors_total counter",
        ],
        "{}",
        r.text
    );
    let series: Vec<&str> = r
        .text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _value)| series))
        .collect();
    assert_eq!(
        series,
        [
            "permitsync_peers_connected",
            "permitsync_documents",
            "permitsync_changes_applied_total",
            "permitsync_bytes_in_total",
            "permitsync_bytes_out_total",
            "permitsync_sync_messages_total{direction=\"in\"}",
            "permitsync_sync_messages_total{direction=\"out\"}",
            "permitsync_rejected_operations_total",
            "permitsync_http_requests_total",
            "permitsync_sync_duration_seconds_bucket{le=\"0.001\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"0.005\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"0.01\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"0.05\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"0.1\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"0.25\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"0.5\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"1\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"2.5\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"10\"}",
            "permitsync_sync_duration_seconds_bucket{le=\"+Inf\"}",
            "permitsync_sync_duration_seconds_sum",
            "permitsync_sync_duration_seconds_count",
            "permitsync_errors_total{kind=\"auth\"}",
            "permitsync_errors_total{kind=\"decode\"}",
            "permitsync_errors_total{kind=\"protocol\"}",
            "permitsync_errors_total{kind=\"storage\"}",
            "permitsync_errors_total{kind=\"sync\"}",
            "permitsync_errors_total{kind=\"http\"}",
            "permitsync_errors_total{kind=\"other\"}",
        ],
        "{}",
        r.text
    );
}

#[tokio::test]
async fn devices_are_listed_and_removed_per_tenant() {
    let n = node();
    n.get("/v1/entities", ACME).await;
    n.get("/v1/entities", ACME_RO).await;
    n.get("/v1/entities", GLOBEX).await;

    let r = n.get("/v1/devices", ACME).await;
    assert_eq!(r.status, StatusCode::OK);
    let devices = r.json()["devices"].clone();
    let names: Vec<&str> = devices
        .as_array()
        .expect("devices")
        .iter()
        .filter_map(|d| d["device"].as_str())
        .collect();
    assert_eq!(names, ["tablet-1", "wall-screen"]);
    assert_eq!(devices[0]["tenant"], "acme");
    assert_eq!(devices[0]["connected"], false);
    assert!(devices[0]["first_seen_ms"].as_i64().unwrap_or(0) > 0);

    // another tenant cannot remove it; a read-only token cannot either
    let r = n
        .raw(Method::DELETE, "/v1/devices/wall-screen", Some(GLOBEX), "")
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_device");
    let r = n
        .raw(Method::DELETE, "/v1/devices/wall-screen", Some(ACME_RO), "")
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "read_only");

    let r = n
        .raw(Method::DELETE, "/v1/devices/wall-screen", Some(ACME), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["removed"], "wall-screen");
    let r = n
        .raw(Method::DELETE, "/v1/devices/wall-screen", Some(ACME), "")
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_device");
    let r = n.get("/v1/devices", ACME).await;
    assert_eq!(r.json()["devices"].as_array().map(Vec::len), Some(1));

    // the registry is persisted in the store
    let reloaded = Devices::load(&n.state.store).expect("reload");
    let acme: Vec<String> = reloaded
        .list("acme")
        .into_iter()
        .map(|d| d.device)
        .collect();
    assert_eq!(acme, ["tablet-1"]);
    assert_eq!(reloaded.list("globex").len(), 1);
}

#[tokio::test]
async fn an_open_node_needs_no_token() {
    let n = node_with(Auth::open());
    let r = n
        .raw(
            Method::POST,
            "/v1/entities",
            None,
            &json!({"type": "permit", "title": "Open"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json()["id"].as_str().expect("id").to_string();
    let r = n
        .raw(Method::GET, &format!("/v1/entities/{id}"), None, "")
        .await;
    assert_eq!(r.json()["fields"]["title"], "Open");
    let r = n.raw(Method::GET, "/v1/entities", None, "").await;
    assert_eq!(r.json()["entities"].as_array().map(Vec::len), Some(1));
    let r = n.raw(Method::GET, "/v1/status", None, "").await;
    assert_eq!(r.json()["documents"], 1);
    // REST requests of an open node register no device
    let r = n.raw(Method::GET, "/v1/devices", None, "").await;
    assert_eq!(r.json()["devices"], json!([]));
}

#[tokio::test]
async fn writes_reach_live_connections_and_removal_closes_them() {
    let n = node();
    let access = Access {
        tenant: "acme".into(),
        device: "tablet-1".into(),
        read_only: false,
        roles: None,
        person: None,
    };
    let (conn, mut events) = n.state.hub.register(
        "peer-tablet-1".into(),
        access,
        Direction::Inbound,
        None,
        Arc::new(PeerStats::default()),
    );
    // a permitsync peer: it hears of every change of its tenant
    n.state.hub.set_wants_all(conn, true);
    let id = n.permit(ACME, "Announced").await;
    let r = n
        .patch(
            &format!("/v1/entities/{id}"),
            ACME,
            json!({"title": "Again"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id: permitsync::EntityId = id.parse().expect("id");
    assert_eq!(events.try_recv().ok(), Some(HubEvent::DocChanged(id)));
    assert_eq!(events.try_recv().ok(), Some(HubEvent::DocChanged(id)));
    assert!(events.try_recv().is_err());

    let status = n.get("/v1/status", ACME).await.json();
    assert_eq!(status["peers"][0]["connection"], conn);
    assert_eq!(status["peers"][0]["device"], "tablet-1");
    assert_eq!(n.get("/v1/status", GLOBEX).await.json()["peers"], json!([]));
    let devices = n.get("/v1/devices", ACME).await.json();
    assert_eq!(devices["devices"][0]["device"], "tablet-1");
    assert_eq!(devices["devices"][0]["connected"], true);

    let r = n
        .raw(Method::DELETE, "/v1/devices/tablet-1", Some(ACME), "")
        .await;
    assert_eq!(r.json()["disconnected"], 1, "{}", r.text);
    assert!(matches!(events.try_recv(), Ok(HubEvent::Close(_))));
}
