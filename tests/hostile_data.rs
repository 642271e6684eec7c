//! Hostile data against a real `permitsync serve` process: a compression bomb
//! (issue 11, hole 2) and document ids squatted or probed across tenants
//! (hole 7). Each attack runs the way an attacker would, with one ordinary
//! read-write token.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use automerge::sync::{ChunkList, Message as SyncMessage, MessageVersion, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc};
use futures_util::{SinkExt, StreamExt};
use permitsync::model::EntityId;
use permitsync::store::{CostLimits, MemBackend, Store, StoreOptions};
use permitsync::wire::{self, DocumentId, Limits, Message, PeerId};
use permitsync::write::NewPermit;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const TOKENS: &str = r#"{"tokens": [
  {"token": "acme-a", "tenant": "acme", "device": "tablet-a", "mode": "read-write"},
  {"token": "acme-b", "tenant": "acme", "device": "tablet-b", "mode": "read-write"},
  {"token": "globex", "tenant": "globex", "device": "g-tablet", "mode": "read-write"}
]}"#;

const CLASSIC: &str = "/api/v1/ptw/sync-offline-data/";

/// A `permitsync serve` with the tokens above, killed when dropped. The
/// binary is `HOSTILE_BIN` when set (to measure another build), else the one
/// under test.
struct Relay {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Relay {
    fn start(args: &[&str]) -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens.json");
        std::fs::write(&tokens, TOKENS).expect("tokens");
        let log = std::fs::File::create(dir.path().join("relay.log")).expect("log");
        let bin = std::env::var("HOSTILE_BIN").unwrap_or_else(|_| support::BIN.to_string());
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0", "--tokens"])
            .arg(&tokens)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn permitsync serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let base = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("a `listening on` line");
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                break url.trim_end_matches('/').to_string();
            }
        };
        Relay {
            child,
            base,
            _dir: dir,
        }
    }

    fn sync_url(&self, token: &str) -> String {
        format!(
            "{}/v1/sync?token={token}",
            self.base.replacen("http://", "ws://", 1)
        )
    }

    /// The relay's resident memory (`VmRSS`), in bytes.
    fn rss(&self) -> u64 {
        self.memory("VmRSS:")
    }

    /// A memory figure of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), in bytes.
    fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kib * 1024
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("relay.log")).unwrap_or_default()
    }

    fn http(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    /// Status and JSON body of a request.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http(method, path, token);
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
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A hand-driven automerge-repo client; returns the socket and the relay's
/// peer id.
async fn join(url: &str, name: &str) -> (Ws, PeerId) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let join = Message::Join {
        sender_id: PeerId::new(name),
        peer_metadata: None,
        supported_protocol_versions: vec!["1".into()],
    };
    ws.send(WsMessage::Binary(wire::encode(&join).into()))
        .await
        .expect("join");
    match next_message(&mut ws).await {
        Message::Peer { sender_id, .. } => (ws, sender_id),
        other => panic!("expected peer, got {other:?}"),
    }
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

/// Send document `doc`'s whole history as one sync message about `id`.
async fn send_doc(ws: &mut Ws, me: &str, relay: &PeerId, id: EntityId, doc: &mut AutoCommit) {
    let msg = SyncMessage {
        heads: doc.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: ChunkList::from(doc.save()),
        flags: None,
        version: MessageVersion::V1,
    };
    let frame = Message::Sync {
        sender_id: PeerId::new(me),
        target_id: relay.clone(),
        document_id: DocumentId::from(id.uuid()),
        data: msg.encode(),
    };
    ws.send(WsMessage::Binary(wire::encode(&frame).into()))
        .await
        .expect("send");
}

/// A permit document as a device would make it, `chars` characters of
/// description added with Automerge (no permitsync limit on the way).
fn permit_doc(title: &str, chars: usize) -> (EntityId, AutoCommit) {
    let opts = StoreOptions {
        cost: CostLimits::UNLIMITED,
        ..Default::default()
    };
    let store =
        Store::with_backend(std::sync::Arc::new(MemBackend::default()), opts).expect("store");
    let id = store
        .create_permit(NewPermit {
            title: title.into(),
            description: "short".into(),
            ..Default::default()
        })
        .expect("permit");
    let mut doc = AutoCommit::load(&store.save_doc(id).expect("save")).expect("load");
    if chars > 0 {
        let (_, text) = doc
            .get(automerge::ROOT, "description")
            .expect("get")
            .expect("a description");
        doc.splice_text(&text, 0, 0, &"x".repeat(chars))
            .expect("splice");
        doc.commit();
    }
    (id, doc)
}

/// The relay's first answer about document `id`: an `error`, or a sync
/// message (what a relay that took the document sends).
async fn answer_about(ws: &mut Ws, id: EntityId) -> Message {
    let doc = DocumentId::from(id.uuid());
    loop {
        match next_message(ws).await {
            m @ Message::Error { .. } => return m,
            m @ Message::Sync { .. } if matches!(&m, Message::Sync { document_id, .. } if *document_id == doc) => {
                return m
            }
            _ => {}
        }
    }
}

/// Wait until `token` sees entity `id` over REST.
async fn visible(relay: &Relay, token: &str, id: EntityId) -> Value {
    for _ in 0..600 {
        let (status, body) = relay
            .call(
                reqwest::Method::GET,
                &format!("/v1/entities/{id}"),
                token,
                None,
            )
            .await;
        if status == StatusCode::OK {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "entity {id} never became visible to {token}\n{}",
        relay.log()
    );
}

// ---- hole 2: the compression bomb -----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_compression_bomb_is_refused_before_it_costs_memory() {
    const MIB: u64 = 1024 * 1024;
    let relay = Relay::start(&[]);
    // warm up: an honest permit synced, so that the baseline holds the
    // relay's working set
    let (mut ws, peer) = join(&relay.sync_url("acme-a"), "warm").await;
    let (warm, mut warm_doc) = permit_doc("warm-up", 0);
    send_doc(&mut ws, "warm", &peer, warm, &mut warm_doc).await;
    visible(&relay, "acme-a", warm).await;
    let before = relay.rss();

    // four permits, a million characters of description each, one per
    // connection, all at once
    let (_, mut bomb) = permit_doc("bomb", 1_000_000);
    let frame_bytes = bomb.save().len();
    assert!(frame_bytes < 16 * 1024, "the bomb is small: {frame_bytes}");
    let mut attackers = Vec::new();
    for i in 0..4 {
        let url = relay.sync_url("acme-a");
        let mut bomb = bomb.fork();
        attackers.push(tokio::spawn(async move {
            let me = format!("bomber-{i}");
            let (mut ws, peer) = join(&url, &me).await;
            let id = EntityId::new_random();
            send_doc(&mut ws, &me, &peer, id, &mut bomb).await;
            let answer = answer_about(&mut ws, id).await;
            (id, answer, ws)
        }));
    }
    let mut answers = Vec::new();
    for a in attackers {
        answers.push(a.await.expect("attacker"));
    }
    // what a dashboard then does: list the tenant's permits and open them
    let (_, list) = relay
        .call(reqwest::Method::GET, "/v1/entities", "acme-a", None)
        .await;
    for (bomb_id, _, _) in &answers {
        relay
            .call(
                reqwest::Method::GET,
                &format!("/v1/entities/{bomb_id}"),
                "acme-a",
                None,
            )
            .await;
    }
    eprintln!(
        "relay RSS: {} MiB before, {} MiB after four bombs (peak {} MiB); {} entities listed",
        before / MIB,
        relay.rss() / MIB,
        relay.memory("VmHWM:") / MIB,
        list["entities"].as_array().map_or(0, Vec::len)
    );
    for (i, (bomb_id, answer, mut ws)) in answers.into_iter().enumerate() {
        let Message::Error { message } = answer else {
            panic!("the relay took the bomb: {answer:?}");
        };
        assert!(message.contains("limit exceeded"), "{message}");
        assert!(message.contains("operations"), "{message}");
        let (status, _) = relay
            .call(
                reqwest::Method::GET,
                &format!("/v1/entities/{bomb_id}"),
                "acme-a",
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "nothing of the bomb is stored"
        );
        // the connection stays up: an honest document on it still syncs
        let me = format!("bomber-{i}");
        let (honest, mut doc) = permit_doc(&format!("honest {i}"), 100);
        send_doc(&mut ws, &me, &peer, honest, &mut doc).await;
        visible(&relay, "acme-a", honest).await;
    }
    // a large honest permit inside the limits is accepted
    let (big, mut big_doc) = permit_doc("long description", 150_000);
    send_doc(&mut ws, "warm", &peer, big, &mut big_doc).await;
    let view = visible(&relay, "acme-a", big).await;
    assert_eq!(view["fields"]["title"], "long description");
    let after = relay.rss();
    let growth = after.saturating_sub(before);
    eprintln!(
        "relay RSS: {} MiB before, {} MiB at the end ({} MiB growth, peak {} MiB)",
        before / MIB,
        after / MIB,
        growth / MIB,
        relay.memory("VmHWM:") / MIB
    );
    let peak = relay.memory("VmHWM:").saturating_sub(before);
    assert!(
        peak < 100 * MIB,
        "the relay's peak grew by {} MiB over the {} MiB before the bombs",
        peak / MIB,
        before / MIB
    );
    assert!(
        growth < 100 * MIB,
        "the relay grew by {} MiB (from {} to {} MiB)",
        growth / MIB,
        before / MIB,
        after / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_classic_writes_count_characters_before_writing() {
    let relay = Relay::start(&["--max-text-chars", "10000"]);
    let long = "y".repeat(20_000);
    let (status, body) = relay
        .call(
            reqwest::Method::POST,
            "/v1/entities",
            "acme-a",
            Some(json!({"type": "permit", "title": "t", "description": long})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = relay
        .call(
            reqwest::Method::POST,
            CLASSIC,
            "acme-a",
            Some(json!({"device_id": "tablet-a", "changes": [{
                "entity": "permit", "op": "create", "offline_id": "long-1",
                "data": {"title": "t", "description": long}
            }]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["summary"]["rejected"], 1, "{body}");
    let detail = body["rejected"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("limit exceeded"), "{body}");
    let (_, list) = relay
        .call(reqwest::Method::GET, "/v1/entities", "acme-a", None)
        .await;
    assert_eq!(list["entities"].as_array().map(Vec::len), Some(0), "{list}");
}

// ---- hole 7: squatting and probing ids across tenants -----------------------

/// `body` with every occurrence of `id` replaced, to compare two answers
/// about different ids.
fn without_id(body: &Value, id: EntityId) -> String {
    body.to_string().replace(&id.to_string(), "ID")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_id_answers_like_an_unknown_one() {
    let relay = Relay::start(&[]);
    let (status, created) = relay
        .call(
            reqwest::Method::POST,
            "/v1/entities",
            "acme-a",
            Some(json!({"type": "permit", "title": "Acme boiler"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let theirs: EntityId = created["id"].as_str().expect("id").parse().expect("uuid");
    let unknown = EntityId::new_random();
    let get = reqwest::Method::GET;
    let patch = reqwest::Method::PATCH;
    let post = reqwest::Method::POST;
    let probes: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (get.clone(), "/v1/entities/{id}".into(), None),
        (
            patch.clone(),
            "/v1/entities/{id}".into(),
            Some(json!({"title": "pwned"})),
        ),
        (
            post.clone(),
            "/v1/entities/{id}/gas-readings".into(),
            Some(json!({"gas": "H2S", "value": 1.0, "unit": "ppm", "min": 0.0, "max": 10.0})),
        ),
        (
            post.clone(),
            "/v1/entities".into(),
            Some(json!({"type": "isolation_point", "permit_id": "{id}", "description": "d"})),
        ),
    ];
    for (method, path, body) in &probes {
        let mut answers = Vec::new();
        for id in [theirs, unknown] {
            let path = path.replace("{id}", &id.to_string());
            let body = body.as_ref().map(|b| {
                serde_json::from_str(&b.to_string().replace("{id}", &id.to_string())).expect("json")
            });
            let (status, reply) = relay.call(method.clone(), &path, "globex", body).await;
            answers.push((status, without_id(&reply, id)));
        }
        assert_eq!(answers[0], answers[1], "{method} {path}");
        assert_eq!(answers[0].0, StatusCode::NOT_FOUND, "{method} {path}");
    }
    // classic: an update of another tenant's id, and of an unknown one
    let mut answers = Vec::new();
    for (n, id) in [theirs, unknown].into_iter().enumerate() {
        let (status, reply) = relay
            .call(
                post.clone(),
                CLASSIC,
                "globex",
                Some(json!({"device_id": "g-tablet", "changes": [{
                    "entity": "permit", "op": "update", "offline_id": format!("u-{n}"),
                    "server_id": id.to_string(), "client_version": 1,
                    "data": {"title": "pwned"}
                }]})),
            )
            .await;
        let item = &reply["rejected"][0];
        answers.push((
            status,
            item["reason"].clone(),
            without_id(&item["detail"], id),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    // WebSocket: a request for either id gets the same doc-unavailable
    let (mut ws, peer) = join(&relay.sync_url("globex"), "prober").await;
    let mut replies = Vec::new();
    for id in [theirs, unknown] {
        let data = automerge::Automerge::new()
            .generate_sync_message(&mut automerge::sync::State::new())
            .expect("a first message")
            .encode();
        let request = Message::Request {
            sender_id: PeerId::new("prober"),
            target_id: peer.clone(),
            document_id: DocumentId::from(id.uuid()),
            data,
        };
        ws.send(WsMessage::Binary(wire::encode(&request).into()))
            .await
            .expect("request");
        match next_message(&mut ws).await {
            Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            } => {
                assert_eq!(document_id, DocumentId::from(id.uuid()));
                replies.push((sender_id, target_id));
            }
            other => panic!("expected doc-unavailable, got {other:?}"),
        }
    }
    assert_eq!(replies[0], replies[1]);
    // a sync message without changes (what a client sends first about a
    // document it has): the same answer, an empty document's
    let (_, mut probe) = permit_doc("probe", 0);
    let probe = automerge::Automerge::load(&probe.save()).expect("load");
    let first = probe
        .generate_sync_message(&mut automerge::sync::State::new())
        .expect("a first message")
        .encode();
    let mut answers = Vec::new();
    for id in [theirs, EntityId::new_random()] {
        let frame = Message::Sync {
            sender_id: PeerId::new("prober"),
            target_id: peer.clone(),
            document_id: DocumentId::from(id.uuid()),
            data: first.clone(),
        };
        ws.send(WsMessage::Binary(wire::encode(&frame).into()))
            .await
            .expect("sync");
        match next_message(&mut ws).await {
            Message::Sync {
                document_id, data, ..
            } => {
                assert_eq!(document_id, DocumentId::from(id.uuid()));
                answers.push(data);
            }
            other => panic!("expected sync, got {other:?}"),
        }
    }
    assert_eq!(answers[0], answers[1]);
    // the rightful tenant's permit is untouched
    let (status, view) = relay
        .call(get, &format!("/v1/entities/{theirs}"), "acme-a", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["fields"]["title"], "Acme boiler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squatting_leaves_the_rightful_tenants_documents_working() {
    let relay = Relay::start(&[]);
    let post = reqwest::Method::POST;
    // classic: the squatter claims the id the old public formula gives for
    // Acme's next offline create, before Acme creates it
    let public = EntityId::from(uuid::Uuid::new_v5(
        &uuid::Uuid::from_u128(0x5f0e_4c1d_9a57_4a0b_b3e2_7c1f_a2d4_9e61),
        b"acme\0tablet-a\0permit-42",
    ));
    let (status, body) = relay
        .call(
            post.clone(),
            "/v1/entities",
            "globex",
            Some(json!({"type": "permit", "id": public.to_string(), "title": "squat"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let create = json!({"device_id": "tablet-a", "changes": [{
        "entity": "permit", "op": "create", "offline_id": "permit-42",
        "data": {"title": "Acme tank entry"}
    }]});
    let (status, body) = relay
        .call(post.clone(), CLASSIC, "acme-a", Some(create.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["summary"]["applied"], 1, "{body}");
    let server_id: EntityId = body["applied"][0]["server_id"]
        .as_str()
        .expect("server_id")
        .parse()
        .expect("uuid");
    assert_ne!(server_id, public, "classic ids are not the public formula");
    // a retry gets the same id; the permit works for its tenant
    let (_, again) = relay
        .call(post.clone(), CLASSIC, "acme-a", Some(create))
        .await;
    assert_eq!(
        again["applied"][0]["server_id"],
        server_id.to_string(),
        "{again}"
    );
    assert_eq!(again["applied"][0]["status"], "already_applied", "{again}");
    let view = visible(&relay, "acme-a", server_id).await;
    assert_eq!(view["fields"]["title"], "Acme tank entry");

    // REST: the squatter creates with Acme's (learned) id: in its own id
    // space that is a new document of its own (answered as for any unknown
    // id, see tests/tenant_ids.rs), and Acme's permit stays as it was
    let (status, body) = relay
        .call(
            post.clone(),
            "/v1/entities",
            "globex",
            Some(json!({"type": "permit", "id": server_id.to_string(), "title": "mine now"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // and over classic, naming the id: the squatter's device finishes its
    // own create (it made that id over REST), still nowhere near Acme's
    let (_, body) = relay
        .call(
            post.clone(),
            CLASSIC,
            "globex",
            Some(json!({"device_id": "g-tablet", "changes": [{
                "entity": "permit", "op": "create", "offline_id": "x",
                "server_id": server_id.to_string(), "data": {"title": "mine now"}
            }]})),
        )
        .await;
    assert_eq!(body["summary"]["applied"], 1, "{body}");

    // WebSocket: the squatter pushes another document under Acme's id: it
    // merges into the squatter's own document of that id, never Acme's
    let (mut ws, peer) = join(&relay.sync_url("globex"), "squatter").await;
    let (_, mut fake) = permit_doc("mine now", 0);
    send_doc(&mut ws, "squatter", &peer, server_id, &mut fake).await;
    match answer_about(&mut ws, server_id).await {
        Message::Sync { .. } => {}
        other => panic!("expected the squatter's own document's answer, got {other:?}"),
    }
    // Acme's permit: unchanged, and still editable by Acme over REST and classic
    let view = visible(&relay, "acme-a", server_id).await;
    assert_eq!(view["fields"]["title"], "Acme tank entry");
    let (status, body) = relay
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/entities/{server_id}"),
            "acme-b",
            Some(json!({"location": "Tank 3"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = relay
        .call(
            post,
            CLASSIC,
            "acme-a",
            Some(json!({"device_id": "tablet-a", "changes": [{
                "entity": "permit", "op": "update", "offline_id": "upd-1",
                "server_id": server_id.to_string(), "client_version": 2,
                "data": {"work_type": "confined_space"}
            }]})),
        )
        .await;
    assert_eq!(body["summary"]["applied"], 1, "{body}");
    let (status, view) = relay
        .call(
            reqwest::Method::GET,
            &format!("/v1/entities/{server_id}"),
            "acme-a",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["fields"]["title"], "Acme tank entry");
    assert_eq!(view["fields"]["location"], "Tank 3");
    assert_eq!(view["fields"]["work_type"], "confined_space");
    // the squatter sees only its own document of that id
    let (status, view) = relay
        .call(
            reqwest::Method::GET,
            &format!("/v1/entities/{server_id}"),
            "globex",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["fields"]["title"], "mine now");
    assert_eq!(view["fields"]["location"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_begun_under_the_old_formula_keeps_its_id() {
    // an older version derived the id publicly and crashed before writing
    // the idempotency record: the retry finishes the create under that id
    let relay = Relay::start(&[]);
    let public = EntityId::from(uuid::Uuid::new_v5(
        &uuid::Uuid::from_u128(0x5f0e_4c1d_9a57_4a0b_b3e2_7c1f_a2d4_9e61),
        b"acme\0tablet-a\0old-1",
    ));
    let (status, body) = relay
        .call(
            reqwest::Method::POST,
            "/v1/entities",
            "acme-a",
            Some(json!({"type": "permit", "id": public.to_string(), "title": "begun"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, body) = relay
        .call(
            reqwest::Method::POST,
            CLASSIC,
            "acme-a",
            Some(json!({"device_id": "tablet-a", "changes": [{
                "entity": "permit", "op": "create", "offline_id": "old-1",
                "data": {"title": "begun"}
            }]})),
        )
        .await;
    assert_eq!(
        body["applied"][0]["server_id"],
        public.to_string(),
        "{body}"
    );
}
