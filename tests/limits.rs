//! Limits and abuse: each limit gives the offending client a clear error and
//! the node keeps serving everyone else. Real nodes on 127.0.0.1:0.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use permitsync::model::EntityId;
use permitsync::node::{self, NodeOptions, NodeState, Quotas};
use permitsync::store::{Clock, ReceiveLimits, Store};
use permitsync::wire::Limits;
use permitsync::write::{Edit, NewPermit};

const TOKENS: &str = r#"{"tokens": [
  {"token": "a", "tenant": "acme", "device": "tablet-a", "mode": "read-write"},
  {"token": "b", "tenant": "acme", "device": "tablet-b", "mode": "read-write"}
]}"#;

struct Running {
    state: Arc<NodeState>,
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn relay(quotas: Quotas, limits: Limits) -> Running {
    relay_with_clock(quotas, limits, None).await
}

/// A clock that moves only when the test says so.
#[derive(Default)]
struct TestClock(AtomicI64);

impl TestClock {
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        1_700_000_000_000 + self.0.load(Ordering::SeqCst)
    }
}

/// [`relay`] whose node reads the time from `clock` (when given).
async fn relay_with_clock(
    quotas: Quotas,
    limits: Limits,
    clock: Option<Arc<dyn Clock>>,
) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, TOKENS).expect("tokens");
    let store = Store::open(dir.path().join("data")).expect("store");
    let opts = NodeOptions {
        tokens: Some(tokens),
        limits,
        quotas,
        ..Default::default()
    };
    let mut state = node::build_state(store, &opts).expect("state");
    if let Some(clock) = clock {
        Arc::get_mut(&mut state)
            .expect("a node state nobody else holds yet")
            .clock = clock;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node::run(listener, state.clone(), vec![], async move {
        let _ = rx.await;
    }));
    Running {
        state,
        addr,
        _stop: tx,
        _dir: dir,
    }
}

fn device() -> (tempfile::TempDir, Arc<NodeState>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let state = node::build_state(store, &NodeOptions::default()).expect("state");
    (dir, state)
}

fn permit(store: &Store, title: &str) -> EntityId {
    store
        .create_permit(NewPermit {
            title: title.into(),
            ..Default::default()
        })
        .expect("permit")
}

/// Text that does not compress (a linear congruential generator over letters).
fn noise(len: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

async fn one_round(state: &Arc<NodeState>, url: &str) -> node::Ended {
    tokio::time::timeout(
        Duration::from_secs(20),
        node::connect(state.clone(), url, true),
    )
    .await
    .expect("in time")
    .expect("connect")
}

/// 5 requests a second per token, in bursts of up to 10. The node's clock
/// stands still unless the test moves it, so the counts do not depend on how
/// fast the requests go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_token_per_second_are_limited() {
    let clock = Arc::new(TestClock::default());
    let r = relay_with_clock(
        Quotas {
            requests_per_second: 5,
            ..Default::default()
        },
        Limits::default(),
        Some(clock.clone() as Arc<dyn Clock>),
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/entities", r.addr);
    let statuses = |token: &'static str, n: usize| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let mut codes = Vec::new();
            for _ in 0..n {
                let resp = client
                    .get(&url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("get");
                codes.push(resp.status().as_u16());
            }
            codes
        }
    };
    // a burst of 10, then nothing until time passes
    let codes = statuses("a", 13).await;
    assert_eq!(codes, [[200; 10].as_slice(), &[429; 3]].concat());
    let resp = client.get(&url).bearer_auth("a").send().await.expect("get");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "rate_limited", "{body}");
    // another token is not affected
    assert_eq!(statuses("b", 1).await, [200]);
    // one second later: 5 more
    clock.advance(1_000);
    assert_eq!(statuses("a", 6).await, [200, 200, 200, 200, 200, 429]);
    // 400 ms: two more
    clock.advance(400);
    assert_eq!(statuses("a", 3).await, [200, 200, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_connections_per_token_are_limited() {
    let r = relay(
        Quotas {
            max_connections_per_token: 1,
            ..Default::default()
        },
        Limits::default(),
    )
    .await;
    let (_d, dev) = device();
    // the first device keeps a connection open
    let url = format!("ws://{}/v1/sync?token=a", r.addr);
    let (keep_dev, keep_url) = (dev.clone(), url.clone());
    let keep = tokio::spawn(async move {
        let _ = node::connect(keep_dev, &keep_url, false).await;
    });
    for _ in 0..100 {
        if !r.state.hub.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("expected 429, got {other:?}"),
    }
    // another token still connects
    let (_d2, other) = device();
    let ended = one_round(&other, &format!("ws://{}/v1/sync?token=b", r.addr)).await;
    assert!(ended.was_idle, "{}", ended.reason);
    keep.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_too_many_changes_is_refused_and_others_sync() {
    let r = relay(
        Quotas {
            receive: ReceiveLimits {
                max_changes: 3,
                ..Default::default()
            },
            ..Default::default()
        },
        Limits::default(),
    )
    .await;
    let (_d, dev) = device();
    let busy = permit(&dev.store, "busy");
    for i in 0..10 {
        dev.store
            .edit(
                busy,
                Edit::SetField {
                    field: "title".into(),
                    value: format!("v{i}"),
                },
            )
            .expect("edit");
    }
    let ended = one_round(&dev, &format!("ws://{}/v1/sync?token=a", r.addr)).await;
    assert!(!ended.was_idle);
    assert!(ended.reason.contains("limit exceeded"), "{}", ended.reason);
    assert!(!r.state.store.contains(busy).expect("contains"));
    // a small document from another device still syncs
    let (_d2, other) = device();
    let small = permit(&other.store, "small");
    let ended = one_round(&other, &format!("ws://{}/v1/sync?token=b", r.addr)).await;
    assert!(ended.was_idle, "{}", ended.reason);
    assert!(r.state.store.contains(small).expect("contains"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_documents_and_frames_are_refused() {
    let r = relay(
        Quotas {
            receive: ReceiveLimits {
                max_document_bytes: 4_000,
                ..Default::default()
            },
            ..Default::default()
        },
        Limits {
            max_frame_bytes: 64 * 1024,
        },
    )
    .await;
    let (_d, dev) = device();
    let big = dev
        .store
        .create_permit(NewPermit {
            title: "big".into(),
            // random text compresses badly: a large document
            description: noise(20_000),
            ..Default::default()
        })
        .expect("permit");
    let ended = one_round(&dev, &format!("ws://{}/v1/sync?token=a", r.addr)).await;
    assert!(ended.reason.contains("limit exceeded"), "{}", ended.reason);
    assert!(!r.state.store.contains(big).expect("contains"));
    // a frame over the frame limit closes that connection
    let huge = noise(100_000);
    let (_d2, dev2) = device();
    dev2.store
        .create_permit(NewPermit {
            title: "huge".into(),
            description: huge,
            ..Default::default()
        })
        .expect("permit");
    let ended = one_round(&dev2, &format!("ws://{}/v1/sync?token=b", r.addr)).await;
    assert!(!ended.was_idle, "{}", ended.reason);
    // and the relay still serves
    let resp = reqwest::get(format!("http://{}/healthz", r.addr))
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
}
