//! Per-tenant id spaces against a real `permitsync serve` process (issue 11,
//! hole 7): a tenant that learned another tenant's document id can create
//! "it" first over REST, classic and WebSocket, and only ever makes its own
//! document of that id; the rightful tenant keeps its documents and can still
//! create and upload the id in its own space; a create answers the same for
//! another tenant's id as for an unknown one; and a store written before id
//! spaces existed keeps working.

mod support;

use std::path::Path;
use std::time::Duration;

use automerge::sync::{ChunkList, Message as SyncMessage, MessageVersion, SyncDoc};
use automerge::{AutoCommit, Automerge, ReadDoc};
use futures_util::{SinkExt, StreamExt};
use permitsync::model::EntityId;
use permitsync::store::{MemBackend, Store, StoreOptions};
use permitsync::wire::{self, DocumentId, Limits, Message, PeerId};
use permitsync::write::NewPermit;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::NodeProcess;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const TOKENS: &str = r#"{"tokens": [
  {"token": "acme-a", "tenant": "acme", "device": "tablet-a", "mode": "read-write"},
  {"token": "acme-b", "tenant": "acme", "device": "tablet-b", "mode": "read-write"},
  {"token": "globex", "tenant": "globex", "device": "g-tablet", "mode": "read-write"},
  {"token": "globex-2", "tenant": "globex", "device": "g-tablet-2", "mode": "read-write"}
]}"#;

const CLASSIC: &str = "/api/v1/ptw/sync-offline-data/";

/// A relay with the tokens above on the store in `dir/data`.
fn relay(dir: &Path) -> NodeProcess {
    let tokens = dir.join("tokens.json");
    std::fs::write(&tokens, TOKENS).expect("tokens");
    let tokens = tokens.to_string_lossy().into_owned();
    NodeProcess::start(&dir.join("data"), &["--tokens", &tokens])
}

async fn call(
    node: &NodeProcess,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{}{path}", node.addr()))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn create_permit(
    node: &NodeProcess,
    token: &str,
    id: EntityId,
    title: &str,
) -> (StatusCode, Value) {
    let body = json!({"type": "permit", "id": id.to_string(), "title": title});
    call(node, Method::POST, "/v1/entities", token, Some(body)).await
}

/// The title `token`'s tenant sees for `id` over REST, or the status.
async fn title(node: &NodeProcess, token: &str, id: EntityId) -> Result<String, StatusCode> {
    let (status, view) = call(
        node,
        Method::GET,
        &format!("/v1/entities/{id}"),
        token,
        None,
    )
    .await;
    if status != StatusCode::OK {
        return Err(status);
    }
    assert_eq!(
        view["id"],
        id.to_string(),
        "views name the id the tenant knows"
    );
    Ok(view["fields"]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// The JSON's shape: its structure with every leaf replaced by its type.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => Value::Null,
    }
}

/// A permit document as a device makes it, with a random id.
fn permit_doc(title: &str) -> (EntityId, AutoCommit) {
    let store = Store::with_backend(
        std::sync::Arc::new(MemBackend::default()),
        StoreOptions::default(),
    )
    .expect("store");
    let id = store
        .create_permit(NewPermit {
            title: title.into(),
            ..Default::default()
        })
        .expect("permit");
    let doc = AutoCommit::load(&store.save_doc(id).expect("save")).expect("load");
    (id, doc)
}

async fn send(ws: &mut Ws, msg: &Message) {
    ws.send(WsMessage::Binary(wire::encode(msg).into()))
        .await
        .expect("send");
}

async fn next_message(ws: &mut Ws) -> Message {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a reply in time")
            .expect("still open")
            .expect("a frame");
        if let WsMessage::Binary(b) = frame {
            return wire::decode(&b, &Limits::default()).expect("decodable");
        }
    }
}

/// A hand-driven automerge-repo client of `token`; the socket and the
/// relay's peer id.
async fn join(node: &NodeProcess, token: &str, name: &str) -> (Ws, PeerId) {
    let (mut ws, _) = tokio_tungstenite::connect_async(node.sync_url_with_token(token))
        .await
        .expect("connect");
    let join = Message::Join {
        sender_id: PeerId::new(name),
        peer_metadata: None,
        supported_protocol_versions: vec!["1".into()],
    };
    send(&mut ws, &join).await;
    match next_message(&mut ws).await {
        Message::Peer { sender_id, .. } => (ws, sender_id),
        other => panic!("expected peer, got {other:?}"),
    }
}

/// Upload `doc` as document `id` over a new connection of `token`; the
/// relay's first answer about it.
async fn upload(node: &NodeProcess, token: &str, id: EntityId, doc: &mut AutoCommit) -> Message {
    let (mut ws, relay) = join(node, token, &format!("up-{token}")).await;
    let msg = SyncMessage {
        heads: doc.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: ChunkList::from(doc.save()),
        flags: None,
        version: MessageVersion::V1,
    };
    let frame = Message::Sync {
        sender_id: PeerId::new(format!("up-{token}")),
        target_id: relay,
        document_id: DocumentId::from(id.uuid()),
        data: msg.encode(),
    };
    send(&mut ws, &frame).await;
    loop {
        let m = next_message(&mut ws).await;
        if matches!(
            m,
            Message::Sync { .. } | Message::DocUnavailable { .. } | Message::Error { .. }
        ) {
            return m;
        }
    }
}

/// What a fresh device of `token` gets when it asks for document `id` over
/// WebSocket: the document's title, or `None` for `doc-unavailable`.
async fn fetch_title(node: &NodeProcess, token: &str, id: EntityId) -> Option<String> {
    let me = format!("fetch-{token}");
    let (mut ws, relay) = join(node, token, &me).await;
    let mut doc = Automerge::new();
    let mut state = automerge::sync::State::new();
    let first = doc
        .generate_sync_message(&mut state)
        .expect("a first message");
    let request = Message::Request {
        sender_id: PeerId::new(&me),
        target_id: relay.clone(),
        document_id: DocumentId::from(id.uuid()),
        data: first.encode(),
    };
    send(&mut ws, &request).await;
    for _ in 0..20 {
        match next_message(&mut ws).await {
            Message::DocUnavailable { document_id, .. }
                if document_id == DocumentId::from(id.uuid()) =>
            {
                return None
            }
            Message::Sync {
                document_id, data, ..
            } if document_id == DocumentId::from(id.uuid()) => {
                let msg = SyncMessage::decode(&data).expect("a sync message");
                doc.receive_sync_message(&mut state, msg).expect("apply");
                if let Ok(Some((v, obj))) = doc.get(automerge::ROOT, "title") {
                    return Some(match v {
                        automerge::Value::Object(_) => doc.text(&obj).expect("text"),
                        v => v.as_str().unwrap_or_default().to_string(),
                    });
                }
                if let Some(reply) = doc.generate_sync_message(&mut state) {
                    let frame = Message::Sync {
                        sender_id: PeerId::new(&me),
                        target_id: relay.clone(),
                        document_id: DocumentId::from(id.uuid()),
                        data: reply.encode(),
                    };
                    send(&mut ws, &frame).await;
                }
            }
            _ => {}
        }
    }
    panic!("no title for {id} after 20 messages")
}

/// Whether the relay's answer to an upload took it (a sync reply, not
/// `doc-unavailable` or an error).
fn taken(answer: &Message) -> bool {
    matches!(answer, Message::Sync { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squatted_ids_stay_the_rightful_tenants_on_every_interface() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(dir.path());

    // REST: Globex learned the id of Acme's permit before Acme created it
    let rest_id = EntityId::new_random();
    let (status, body) = create_permit(&node, "globex", rest_id, "squat").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Acme still creates it: its own document, Globex's untouched
    let (status, body) = create_permit(&node, "acme-a", rest_id, "Acme boiler").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], rest_id.to_string());
    assert_eq!(
        title(&node, "acme-b", rest_id).await,
        Ok("Acme boiler".into())
    );
    assert_eq!(title(&node, "globex", rest_id).await, Ok("squat".into()));
    // a second create by Acme is Acme's own conflict
    let (status, _) = create_permit(&node, "acme-b", rest_id, "again").await;
    assert_eq!(status, StatusCode::CONFLICT);

    // classic: Globex creates naming the id, then Acme does
    let classic_id = EntityId::new_random();
    for (token, device, title) in [
        ("globex", "g-tablet", "squat"),
        ("acme-a", "tablet-a", "Acme tank"),
    ] {
        let (status, body) = call(
            &node,
            Method::POST,
            CLASSIC,
            token,
            Some(json!({"device_id": device, "changes": [{
                "entity": "permit", "op": "create", "offline_id": "c-1",
                "server_id": classic_id.to_string(), "data": {"title": title}
            }]})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["summary"]["applied"], 1, "{token}: {body}");
        assert_eq!(body["applied"][0]["server_id"], classic_id.to_string());
    }
    assert_eq!(
        title(&node, "acme-a", classic_id).await,
        Ok("Acme tank".into())
    );
    assert_eq!(title(&node, "globex", classic_id).await, Ok("squat".into()));

    // WebSocket: Globex uploads a document under the id of Acme's permit
    // before Acme's tablet does; both uploads are taken, each in its tenant
    let (ws_id, mut acme_doc) = permit_doc("Acme tank entry");
    let (_, mut squat_doc) = permit_doc("mine now");
    assert!(taken(&upload(&node, "globex", ws_id, &mut squat_doc).await));
    let answer = upload(&node, "acme-a", ws_id, &mut acme_doc).await;
    assert!(taken(&answer), "Acme's upload was refused: {answer:?}");
    // every device of each tenant syncs its own document of that id
    assert_eq!(
        fetch_title(&node, "acme-b", ws_id).await.as_deref(),
        Some("Acme tank entry")
    );
    assert_eq!(
        fetch_title(&node, "globex-2", ws_id).await.as_deref(),
        Some("mine now")
    );
    // and the REST id the same way
    assert_eq!(
        fetch_title(&node, "acme-b", rest_id).await.as_deref(),
        Some("Acme boiler")
    );

    // both tenants edit their own documents of the same id independently
    for (token, location) in [("acme-b", "Tank 3"), ("globex", "elsewhere")] {
        let (status, body) = call(
            &node,
            Method::PATCH,
            &format!("/v1/entities/{ws_id}"),
            token,
            Some(json!({"location": location})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, acme) = call(
        &node,
        Method::GET,
        &format!("/v1/entities/{ws_id}"),
        "acme-a",
        None,
    )
    .await;
    let (_, globex) = call(
        &node,
        Method::GET,
        &format!("/v1/entities/{ws_id}"),
        "globex",
        None,
    )
    .await;
    assert_eq!(acme["fields"]["location"], "Tank 3");
    assert_eq!(acme["fields"]["title"], "Acme tank entry");
    assert_eq!(globex["fields"]["location"], "elsewhere");
    assert_eq!(globex["fields"]["title"], "mine now");
    // a classic update by Acme reaches Acme's document only
    let version = acme["version"].as_u64().expect("version");
    let (_, body) = call(
        &node,
        Method::POST,
        CLASSIC,
        "acme-a",
        Some(json!({"device_id": "tablet-a", "changes": [{
            "entity": "permit", "op": "update", "offline_id": "u-1",
            "server_id": ws_id.to_string(), "client_version": version,
            "data": {"work_type": "confined_space"}
        }]})),
    )
    .await;
    assert_eq!(body["summary"]["applied"], 1, "{body}");
    let (_, globex) = call(
        &node,
        Method::GET,
        &format!("/v1/entities/{ws_id}"),
        "globex",
        None,
    )
    .await;
    assert_eq!(globex["fields"]["work_type"], "");

    // lists: each tenant lists each id once, as its own
    for (token, title) in [("acme-a", "Acme tank entry"), ("globex", "mine now")] {
        let (_, page) = call(&node, Method::GET, "/v1/entities", token, None).await;
        let mine: Vec<&Value> = page["entities"]
            .as_array()
            .expect("entities")
            .iter()
            .filter(|e| e["id"] == ws_id.to_string())
            .collect();
        assert_eq!(mine.len(), 1, "{page}");
        assert_eq!(mine[0]["title"], title);
    }
    // the classic pull names the id the tenant knows
    let (_, pulled) = call(
        &node,
        Method::GET,
        "/api/v1/sync/changes?limit=100",
        "globex",
        None,
    )
    .await;
    let ids: Vec<&str> = pulled["changes"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(ids.contains(&ws_id.to_string().as_str()), "{pulled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answers_alike_for_another_tenants_id_and_an_unknown_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = relay(dir.path());
    let theirs = EntityId::new_random();
    let (status, _) = create_permit(&node, "acme-a", theirs, "Acme boiler").await;
    assert_eq!(status, StatusCode::CREATED);
    let unknown = EntityId::new_random();

    // REST
    let mut answers = Vec::new();
    for id in [theirs, unknown] {
        let (status, body) = create_permit(&node, "globex", id, "probe").await;
        answers.push((status, shape(&body), body["fields"]["title"].clone()));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, StatusCode::CREATED);
    // REST, isolation point under either permit: the same 201
    let mut answers = Vec::new();
    for id in [theirs, unknown] {
        let body =
            json!({"type": "isolation_point", "permit_id": id.to_string(), "description": "valve"});
        let (status, body) = call(&node, Method::POST, "/v1/entities", "globex", Some(body)).await;
        answers.push((status, shape(&body)));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, StatusCode::CREATED);

    // classic, naming the id
    let (theirs2, unknown2) = (EntityId::new_random(), EntityId::new_random());
    let (status, _) = create_permit(&node, "acme-a", theirs2, "Acme tank").await;
    assert_eq!(status, StatusCode::CREATED);
    let mut answers = Vec::new();
    for (n, id) in [theirs2, unknown2].into_iter().enumerate() {
        let (status, body) = call(
            &node,
            Method::POST,
            CLASSIC,
            "globex",
            Some(json!({"device_id": "g-tablet", "changes": [{
                "entity": "permit", "op": "create", "offline_id": format!("p-{n}"),
                "server_id": id.to_string(), "data": {"title": "probe"}
            }]})),
        )
        .await;
        answers.push((status, shape(&body), body["summary"]["applied"].clone()));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].2, 1);

    // WebSocket upload
    let (theirs3, mut acme_doc) = permit_doc("Acme valve");
    assert!(taken(
        &upload(&node, "acme-a", theirs3, &mut acme_doc).await
    ));
    let (unknown3, _) = permit_doc("x");
    let mut answers = Vec::new();
    for id in [theirs3, unknown3] {
        let (_, mut doc) = permit_doc("probe");
        answers.push(taken(&upload(&node, "globex", id, &mut doc).await));
    }
    assert_eq!(answers, [true, true]);

    // Acme's documents are as they were
    assert_eq!(
        title(&node, "acme-a", theirs).await,
        Ok("Acme boiler".into())
    );
    assert_eq!(
        title(&node, "acme-a", theirs2).await,
        Ok("Acme tank".into())
    );
    assert_eq!(
        title(&node, "acme-b", theirs3).await,
        Ok("Acme valve".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_before_id_spaces_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (owned, unowned) = (EntityId::new_random(), EntityId::new_random());
    {
        // what the previous version wrote for a REST create (a claim, then the
        // document under its own id) and for the CLI (no owner)
        let store = Store::open(dir.path().join("data")).expect("store");
        assert!(store.claim(owned, "acme").expect("claim"));
        store
            .create_permit(NewPermit {
                id: Some(owned),
                title: "Acme boiler".into(),
                ..Default::default()
            })
            .expect("create");
        store
            .create_permit(NewPermit {
                id: Some(unowned),
                title: "the CLI's".into(),
                ..Default::default()
            })
            .expect("create");
        store.flush().expect("flush");
    }
    let node = relay(dir.path());
    assert_eq!(
        title(&node, "acme-a", owned).await,
        Ok("Acme boiler".into())
    );
    assert_eq!(
        title(&node, "globex", owned).await,
        Err(StatusCode::NOT_FOUND)
    );
    assert_eq!(
        title(&node, "globex", unowned).await,
        Err(StatusCode::NOT_FOUND)
    );
    let (status, body) = call(
        &node,
        Method::PATCH,
        &format!("/v1/entities/{owned}"),
        "acme-b",
        Some(json!({"location": "Tank 3"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        fetch_title(&node, "acme-b", owned).await.as_deref(),
        Some("Acme boiler")
    );
    // Globex may now hold the same ids as its own documents
    let (status, _) = create_permit(&node, "globex", owned, "Globex's").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = create_permit(&node, "globex", unowned, "Globex's too").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        title(&node, "acme-a", owned).await,
        Ok("Acme boiler".into())
    );
    assert_eq!(title(&node, "globex", owned).await, Ok("Globex's".into()));
    assert_eq!(
        fetch_title(&node, "globex-2", owned).await.as_deref(),
        Some("Globex's")
    );
    drop(node);
    // and the CLI on the store still sees its own document, and Acme's
    let out = support::run_cli(&dir.path().join("data"), &["show", &unowned.to_string()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the CLI's"),
        "{out:?}"
    );
}
