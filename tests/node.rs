//! Nodes over real WebSockets on 127.0.0.1:0, each with its own sled store:
//! a relay with tokens and tenants, devices that edit offline and reconnect,
//! live pushes, peer-to-peer without a relay, and what the relay refuses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use permitsync::model::EntityId;
use permitsync::node::{self, NodeOptions, NodeState};
use permitsync::store::Store;
use permitsync::wire::{self, DocumentId, Limits, Message, PeerId};
use permitsync::write::{Edit, NewPermit};
use tokio_tungstenite::tungstenite::Message as WsMessage;

struct TestNode {
    state: Arc<NodeState>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    async fn start(tokens: Option<&str>, connect: Vec<String>) -> TestNode {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = tokens.map(|json| {
            let path = dir.path().join("tokens.json");
            std::fs::write(&path, json).expect("tokens file");
            path
        });
        let store = Store::open(dir.path().join("data")).expect("store");
        let opts = NodeOptions {
            tokens,
            limits: Limits::default(),
            ..Default::default()
        };
        let state = node::build_state(store, &opts).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(node::run(listener, state.clone(), connect, async move {
            let _ = rx.await;
        }));
        TestNode {
            state,
            addr,
            stop: Some(tx),
            task: Some(tokio::spawn(async move {
                let _ = task.await;
            })),
            _dir: dir,
        }
    }

    fn store(&self) -> &Store {
        &self.state.store
    }

    fn sync_url(&self, token: Option<&str>) -> String {
        match token {
            Some(t) => format!("ws://{}/v1/sync?token={t}", self.addr),
            None => format!("ws://{}/v1/sync", self.addr),
        }
    }

    /// One round with `other` as a client; returns when both are in sync.
    async fn sync_with(&self, url: &str) {
        let ended = tokio::time::timeout(
            Duration::from_secs(30),
            node::connect(self.state.clone(), url, true),
        )
        .await
        .expect("sync finished in time")
        .expect("connected");
        assert!(ended.was_idle, "sync did not complete: {}", ended.reason);
    }

    fn edit(&self, id: EntityId, edit: Edit) {
        self.store().edit(id, edit).expect("edit");
        self.state.hub.doc_changed(id, None);
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

const TOKENS: &str = r#"{"tokens": [
  {"token": "acme-a", "tenant": "acme", "device": "tablet-a", "mode": "read-write"},
  {"token": "acme-b", "tenant": "acme", "device": "tablet-b", "mode": "read-write"},
  {"token": "acme-ro", "tenant": "acme", "device": "wall-screen", "mode": "read-only"},
  {"token": "globex", "tenant": "globex", "device": "g-tablet", "mode": "read-write"}
]}"#;

fn permit(store: &Store, title: &str) -> EntityId {
    store
        .create_permit(NewPermit {
            title: title.into(),
            location: "Bay 1".into(),
            safety_checklist: vec!["isolation".into()],
            ..Default::default()
        })
        .expect("permit")
}

fn title(value: &str) -> Edit {
    Edit::SetField {
        field: "title".into(),
        value: value.into(),
    }
}

fn view_json(store: &Store, id: EntityId) -> String {
    store.view(id).expect("view").to_json_string()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_edit_offline_then_converge_through_the_relay() {
    let relay = TestNode::start(Some(TOKENS), vec![]).await;
    let a = TestNode::start(None, vec![]).await;
    let b = TestNode::start(None, vec![]).await;
    let id = permit(a.store(), "Hot work");
    a.sync_with(&relay.sync_url(Some("acme-a"))).await;
    b.sync_with(&relay.sync_url(Some("acme-b"))).await;
    assert_eq!(view_json(a.store(), id), view_json(b.store(), id));

    // apart: both rename, both add PPE
    a.edit(id, title("Hot work, bay 1"));
    b.edit(id, title("Welding"));
    for (node, item) in [(&a, "gloves"), (&b, "visor")] {
        node.edit(
            id,
            Edit::AddItem {
                field: "ppe_requirements".into(),
                item: item.into(),
            },
        );
    }
    a.sync_with(&relay.sync_url(Some("acme-a"))).await;
    b.sync_with(&relay.sync_url(Some("acme-b"))).await;
    a.sync_with(&relay.sync_url(Some("acme-a"))).await;

    let views: Vec<String> = [&relay, &a, &b]
        .iter()
        .map(|n| view_json(n.store(), id))
        .collect();
    assert_eq!(views[0], views[1]);
    assert_eq!(views[1], views[2]);
    let v = relay.store().view(id).expect("view");
    assert_eq!(v.conflicts.len(), 1, "the title conflict is surfaced");
    assert_eq!(
        v.fields["ppe_requirements"],
        serde_json::json!(["gloves", "visor"])
    );
    assert_eq!(
        relay.store().owner(id).expect("owner").as_deref(),
        Some("acme")
    );
    for n in [relay, a, b] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_device_receives_changes_live() {
    let relay = TestNode::start(Some(TOKENS), vec![]).await;
    let a = TestNode::start(None, vec![]).await;
    let id = permit(a.store(), "Scaffold");
    a.sync_with(&relay.sync_url(Some("acme-a"))).await;
    // B stays connected (a dialer that reconnects with backoff)
    let b = TestNode::start(None, vec![relay.sync_url(Some("acme-b"))]).await;
    let b_store = b.store().clone();
    eventually("B to get the permit", || {
        b_store.contains(id).unwrap_or(false)
    })
    .await;
    a.edit(id, title("Scaffold, level 3"));
    a.sync_with(&relay.sync_url(Some("acme-a"))).await;
    eventually("B to see A's edit pushed by the relay", || {
        b_store
            .view(id)
            .ok()
            .and_then(|v| v.str_field("title").map(str::to_string))
            == Some("Scaffold, level 3".into())
    })
    .await;
    let relay_state = relay.state.clone();
    eventually("A's one-shot connection to end at the relay", || {
        relay_state.hub.status(None).len() == 1
    })
    .await;
    let status = relay.state.hub.status(None);
    assert_eq!(status[0].device, "tablet-b");
    assert_eq!(status[0].direction, node::Direction::Inbound);
    for n in [relay, a, b] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_to_peer_without_a_relay_and_store_and_forward() {
    let relay = TestNode::start(None, vec![]).await;
    let b = TestNode::start(None, vec![]).await;
    let c = TestNode::start(None, vec![]).await;
    let from_relay = permit(relay.store(), "Made at the relay");
    // B reaches the relay; C reaches only B
    b.sync_with(&relay.sync_url(None)).await;
    c.sync_with(&b.sync_url(None)).await;
    assert_eq!(
        view_json(c.store(), from_relay),
        view_json(relay.store(), from_relay)
    );
    // and an edit made on C travels back the same way
    c.edit(from_relay, title("Edited on C"));
    c.sync_with(&b.sync_url(None)).await;
    b.sync_with(&relay.sync_url(None)).await;
    assert_eq!(
        relay
            .store()
            .view(from_relay)
            .expect("view")
            .str_field("title"),
        Some("Edited on C")
    );
    for n in [relay, b, c] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_tokens_are_refused_with_401() {
    let relay = TestNode::start(Some(TOKENS), vec![]).await;
    for url in [relay.sync_url(None), relay.sync_url(Some("nope"))] {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401)
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_devices_receive_but_their_changes_are_not_stored() {
    let relay = TestNode::start(Some(TOKENS), vec![]).await;
    let a = TestNode::start(None, vec![]).await;
    let screen = TestNode::start(None, vec![]).await;
    let id = permit(a.store(), "Permit on the wall");
    a.sync_with(&relay.sync_url(Some("acme-a"))).await;
    screen.sync_with(&relay.sync_url(Some("acme-ro"))).await;
    assert!(screen.store().contains(id).expect("contains"));
    screen.edit(id, title("Scribbled on the wall screen"));
    let own = permit(screen.store(), "Created on a read-only device");
    screen.sync_with(&relay.sync_url(Some("acme-ro"))).await;
    assert_eq!(
        relay.store().view(id).expect("view").str_field("title"),
        Some("Permit on the wall")
    );
    assert!(!relay.store().contains(own).expect("contains"));
    for n in [relay, a, screen] {
        n.stop().await;
    }
}

/// A hand-driven automerge-repo client: raw frames over a real WebSocket.
async fn raw_client(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let join = Message::Join {
        sender_id: PeerId::new("raw"),
        peer_metadata: None,
        supported_protocol_versions: vec!["1".into()],
    };
    ws.send(WsMessage::Binary(wire::encode(&join).into()))
        .await
        .expect("join");
    let reply = next_message(&mut ws).await;
    assert!(matches!(reply, Message::Peer { .. }), "{reply:?}");
    ws
}

async fn next_message(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Message {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a reply in time")
            .expect("open")
            .expect("frame");
        if let WsMessage::Binary(b) = frame {
            return wire::decode(&b, &Limits::default()).expect("decodable");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_cannot_see_or_guess_documents() {
    use automerge::sync::SyncDoc;
    let relay = TestNode::start(Some(TOKENS), vec![]).await;
    let a = TestNode::start(None, vec![]).await;
    let g = TestNode::start(None, vec![]).await;
    let id = permit(a.store(), "Acme only");
    a.sync_with(&relay.sync_url(Some("acme-a"))).await;
    g.sync_with(&relay.sync_url(Some("globex"))).await;
    assert!(!g.store().contains(id).expect("contains"));
    // a guessed id gets doc-unavailable, as an unknown one would
    let mut ws = raw_client(&relay.sync_url(Some("globex"))).await;
    let mut state = automerge::sync::State::new();
    let data = automerge::Automerge::new()
        .generate_sync_message(&mut state)
        .expect("msg")
        .encode();
    let request = Message::Request {
        sender_id: PeerId::new("raw"),
        target_id: PeerId::new(relay.state.peer_id.clone()),
        document_id: DocumentId::from(id.uuid()),
        data,
    };
    ws.send(WsMessage::Binary(wire::encode(&request).into()))
        .await
        .expect("request");
    let reply = next_message(&mut ws).await;
    assert!(matches!(reply, Message::DocUnavailable { .. }), "{reply:?}");
    // REST says unknown too
    let resp = reqwest::Client::new()
        .get(format!("http://{}/v1/entities/{id}", relay.addr))
        .bearer_auth("globex")
        .send()
        .await
        .expect("rest");
    assert_eq!(resp.status(), 404);
    for n in [relay, a, g] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_closes_only_that_peer() {
    let relay = TestNode::start(Some(TOKENS), vec![]).await;
    let a = TestNode::start(None, vec![relay.sync_url(Some("acme-a"))]).await;
    let a_hub = a.state.clone();
    eventually("A to connect", || !a_hub.hub.is_empty()).await;
    let mut bad = raw_client(&relay.sync_url(Some("acme-b"))).await;
    bad.send(WsMessage::Binary(vec![0xff, 0x00, 0x01].into()))
        .await
        .expect("send garbage");
    let reply = next_message(&mut bad).await;
    assert!(matches!(reply, Message::Error { .. }), "{reply:?}");
    // the other peer keeps syncing
    let id = permit(a.store(), "still fine");
    a.state.hub.doc_changed(id, None);
    let relay_store = relay.store().clone();
    eventually("the relay to get A's permit", || {
        relay_store.contains(id).unwrap_or(false)
    })
    .await;
    for n in [relay, a] {
        n.stop().await;
    }
}
