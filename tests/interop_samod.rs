//! Interop with `samod`, the Rust automerge-repo implementation, as a peer of
//! a real permitsync node (in-process: the node's own `build_state` + `run`
//! on a loopback listener, so its real axum WebSocket endpoint `/v1/sync`).
//!
//! samod dials `ws://127.0.0.1:PORT/v1/sync` (no token: the node has no
//! tokens file) and:
//! 1. creates a permit document, which the node stores and renders;
//! 2. receives an edit made on the node;
//! 3. finds (requests) a permit that exists only on the node, and gets
//!    `doc-unavailable` (find resolves to `None`) for one it does not have;
//! 4. makes the illegal `draft -> active`, which the node stores (sync never
//!    refuses changes) while its view keeps `draft` and lists the rejected op.
//!
//! samod is used with only its `tokio` feature: its built-in WebSocket dialer
//! (feature `tungstenite`) pulls native-tls/OpenSSL and a second tungstenite,
//! so the test plugs the tokio-tungstenite that permitsync already depends on
//! into samod's `Dialer` trait instead (a dozen lines, below).
//!
//! `RUST_LOG=permitsync=debug,samod=debug cargo test --test interop_samod -- --nocapture`
//! shows both sides' logs.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use futures_util::{SinkExt, StreamExt};
use permitsync::model::EntityId;
use permitsync::node::{build_state, run, NodeOptions, NodeState};
use permitsync::store::Store;
use permitsync::write::{Edit, NewPermit};
use samod::{BackoffConfig, DialError, Dialer, Repo, Transport};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Every wait in this test is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

/// A samod [`Dialer`] over tokio-tungstenite: binary frames in and out.
struct WsDialer {
    url: samod::Url,
}

type ConnectFuture =
    Pin<Box<dyn Future<Output = Result<Transport, DialError<std::convert::Infallible>>> + Send>>;

impl Dialer for WsDialer {
    type Error = std::convert::Infallible;

    fn url(&self) -> samod::Url {
        self.url.clone()
    }

    fn connect(&self) -> ConnectFuture {
        let url = self.url.to_string();
        Box::pin(async move {
            let (ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .map_err(DialError::transient)?;
            let (sink, stream) = ws.split();
            let stream = stream
                .filter_map(|msg| async move {
                    match msg {
                        Ok(WsMessage::Binary(bytes)) => Some(Ok(bytes.to_vec())),
                        Ok(WsMessage::Text(_)) => Some(Err(std::io::Error::other(
                            "unexpected text frame from the node",
                        ))),
                        Ok(_) => None,
                        Err(e) => Some(Err(std::io::Error::other(e))),
                    }
                })
                .boxed();
            let sink = sink.with(|bytes: Vec<u8>| {
                futures_util::future::ready(Ok::<_, tokio_tungstenite::tungstenite::Error>(
                    WsMessage::Binary(bytes.into()),
                ))
            });
            Ok(Transport::new(stream, sink))
        })
    }
}

/// The permitsync entity id of a samod document (same 16 bytes).
fn entity_of(doc: &samod::DocumentId) -> EntityId {
    let wire = permitsync::wire::DocumentId::from_str(&doc.to_string())
        .expect("samod's document id is bs58check of 16 bytes");
    EntityId::from(uuid::Uuid::from(wire))
}

/// The samod document id of a permitsync entity.
fn doc_id_of(id: EntityId) -> samod::DocumentId {
    let wire = permitsync::wire::DocumentId::from(id.uuid());
    samod::DocumentId::from_str(&wire.to_string()).expect("a bs58check id samod accepts")
}

/// A root string field, whether a scalar string or a Text object.
fn read_str(doc: &automerge::Automerge, field: &str) -> Option<String> {
    match doc.get(ROOT, field).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        (Value::Object(ObjType::Text), obj) => doc.text(&obj).ok(),
        _ => None,
    }
}

fn sorted_heads(doc: &automerge::Automerge) -> Vec<String> {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads
}

/// Poll `check` every 50 ms until it returns `Some`, at most [`WAIT`].
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = match check() {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}; last seen: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A permit as a samod (automerge-repo) client would write it.
fn samod_permit(title: &str) -> automerge::Automerge {
    let mut doc = automerge::Automerge::new();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64;
    doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(ROOT, "type", "permit")?;
        tx.put(ROOT, "created_at", ScalarValue::Timestamp(now_ms))?;
        tx.put(ROOT, "created_by", "samod-client")?;
        tx.put(ROOT, "deleted", false)?;
        tx.put(ROOT, "title", title)?;
        tx.put(ROOT, "location", "Bay 7")?;
        tx.put(ROOT, "work_type", "hot_work")?;
        let description = tx.put_object(ROOT, "description", ObjType::Text)?;
        tx.splice_text(&description, 0, 0, "Weld the bracket on line 3")?;
        let ppe = tx.put_object(ROOT, "ppe_requirements", ObjType::Map)?;
        tx.put(&ppe, "helmet", true)?;
        tx.put(&ppe, "welding mask", true)?;
        let checklist = tx.put_object(ROOT, "safety_checklist", ObjType::Map)?;
        tx.put(&checklist, "fire watch assigned", false)?;
        tx.put(&checklist, "area cleared", true)?;
        tx.put(ROOT, "status", "draft")?;
        tx.put_object(ROOT, "gas_readings", ObjType::Map)?;
        tx.put_object(ROOT, "photos", ObjType::Map)?;
        Ok(())
    })
    .expect("build the permit document");
    doc
}

/// The node: state + `run` on 127.0.0.1:0 in a task, stopped by `stop`.
struct Node {
    state: Arc<NodeState>,
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start() -> Node {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(dir.path().join("data")).expect("open the store");
        let state = build_state(store, &NodeOptions::default()).expect("build the node state");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("the listener's address")
            .port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, state.clone(), vec![], async move {
            let _ = stopped.await;
        }));
        Node {
            state,
            port,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the node stops within the timeout")
            .expect("the node task did not panic");
        result.expect("the node ran without an I/O error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samod_peer_syncs_with_a_permitsync_node() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();

    let node = Node::start().await;
    let store = node.state.store.clone();

    // samod connects to the node's sync endpoint (no token).
    let repo = Repo::build_tokio().load().await;
    let url =
        samod::Url::parse(&format!("ws://127.0.0.1:{}/v1/sync", node.port)).expect("a ws URL");
    let dialer = repo
        .dial(BackoffConfig::default(), Arc::new(WsDialer { url }))
        .expect("the repo is running");
    let peer = tokio::time::timeout(WAIT, dialer.established())
        .await
        .expect("samod connects within the timeout")
        .expect("samod's handshake with the node succeeds");
    assert_eq!(
        peer.peer_id.to_string(),
        node.state.peer_id,
        "samod sees the node's peer id"
    );

    // 1. samod creates a permit; the node ends up with it.
    let handle = tokio::time::timeout(WAIT, repo.create(samod_permit("Samod permit")))
        .await
        .expect("samod creates the document within the timeout")
        .expect("the repo is running");
    let id = entity_of(handle.document_id());
    assert_eq!(
        id.as_bytes().as_slice(),
        handle.document_id().as_bytes(),
        "the entity id is the document id's 16 bytes"
    );
    wait_for("the node's view of samod's permit", || {
        let view = store.view(id).map_err(|e| e.to_string())?;
        if view.entity_type.as_deref() == Some("permit")
            && view.str_field("title") == Some("Samod permit")
            && view.str_field("status") == Some("draft")
        {
            Ok(view)
        } else {
            Err(view.to_json_string())
        }
    })
    .await;
    let view = store.view(id).expect("the node's view");
    assert_eq!(view.id, id.to_string(), "view: {}", view.to_json_string());
    assert_eq!(view.str_field("location"), Some("Bay 7"));
    assert!(view.rejected.is_empty(), "view: {}", view.to_json_string());
    let ppe = view.fields["ppe_requirements"].to_string();
    assert!(
        ppe.contains("helmet") && ppe.contains("welding mask"),
        "ppe_requirements: {ppe}"
    );

    // 2. An edit made on the node reaches samod's document.
    store
        .edit(
            id,
            Edit::SetField {
                field: "title".into(),
                value: "Edited on the node".into(),
            },
        )
        .expect("edit the title on the node");
    node.state.hub.doc_changed(id, None);
    wait_for("samod to receive the node's title edit", || {
        handle.with_document(|doc| match read_str(doc, "title") {
            Some(t) if t == "Edited on the node" => Ok(()),
            other => Err(format!("title {other:?}")),
        })
    })
    .await;

    // 3. samod finds a permit that exists only on the node.
    let node_only = store
        .create_permit(NewPermit {
            title: "Node-only permit".into(),
            location: "Tank farm".into(),
            work_type: "confined_space".into(),
            description: "Inspect tank 4".into(),
            ppe_requirements: vec!["harness".into()],
            safety_checklist: vec!["gas test done".into()],
            ..Default::default()
        })
        .expect("create a permit on the node");
    let found = tokio::time::timeout(WAIT, repo.find(doc_id_of(node_only)))
        .await
        .expect("samod's find resolves within the timeout")
        .expect("the repo is running")
        .expect("the node has the document and sends it");
    let node_heads = store.view(node_only).expect("the node's view").heads;
    wait_for("samod to hold the node-only permit", || {
        found.with_document(|doc| {
            let title = read_str(doc, "title");
            let status = read_str(doc, "status");
            if title.as_deref() == Some("Node-only permit")
                && status.as_deref() == Some("draft")
                && sorted_heads(doc) == node_heads
            {
                Ok(())
            } else {
                Err(format!("title {title:?}, status {status:?}"))
            }
        })
    })
    .await;
    assert_eq!(entity_of(found.document_id()), node_only);

    // ... and a document the node does not have: `doc-unavailable`, which
    // samod reports as not found.
    let unknown = doc_id_of(EntityId::new_random());
    let missing = tokio::time::timeout(WAIT, repo.find(unknown))
        .await
        .expect("samod's find of an unknown document resolves within the timeout")
        .expect("the repo is running");
    assert!(
        missing.is_none(),
        "the node answers doc-unavailable for a document it lacks"
    );

    // 4. samod's illegal draft -> active: stored by the node, rejected by its view.
    let samod_heads = handle.with_document(|doc| {
        doc.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "status", "active"))
            .expect("set status on samod's document");
        assert_eq!(read_str(doc, "status").as_deref(), Some("active"));
        sorted_heads(doc)
    });
    let view = wait_for("the node to store samod's draft -> active", || {
        let view = store.view(id).map_err(|e| e.to_string())?;
        if view.heads == samod_heads {
            Ok(view)
        } else {
            Err(view.to_json_string())
        }
    })
    .await;
    let json = view.to_json_string();
    assert_eq!(view.str_field("status"), Some("draft"), "view: {json}");
    assert_eq!(
        view.str_field("title"),
        Some("Edited on the node"),
        "view: {json}"
    );
    assert!(
        view.rejected
            .iter()
            .any(|r| r.field == "status" && r.reason == "invalid_transition"),
        "the view lists the rejected draft -> active: {json}"
    );

    tokio::time::timeout(WAIT, repo.stop())
        .await
        .expect("samod stops within the timeout");
    node.shutdown().await;
}
