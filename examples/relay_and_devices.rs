//! A relay and three devices in one process, each a real node (its own sled
//! store in a temporary directory, the REST API and `/v1/sync` served on
//! `127.0.0.1:0`), syncing over real WebSockets.
//! Run: `cargo run --example relay_and_devices` (`RUST_LOG=info` for the nodes' logs).
//!
//! 1. The relay has a tokens file: three read-write tokens of tenant `acme`.
//!    Each device dials `ws://RELAY/v1/sync?token=...` (the `connect` list of
//!    `permitsync::node::run`) and keeps the connection open.
//! 2. Device 1 creates a permit; the relay passes it on to devices 2 and 3
//!    over their live connections.
//! 3. Devices 2 and 3 go offline (their nodes stop, so their connections
//!    close) and both edit the permit: two titles (a conflict), a PPE item
//!    each (set-merge), a checklist tick each (true-wins).
//! 4. They come back online; the dialers resume from the persisted sync
//!    states and feed cursors, and every replica converges. The example
//!    prints each device's fields and conflicts, and checks that the three
//!    devices (and the relay) render byte-identical views.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use permitsync::node::{build_state, run, NodeOptions, NodeState};
use permitsync::store::{Store, StoreOptions};
use permitsync::write::{Edit, NewPermit};
use permitsync::EntityId;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any one wait below may take before the example gives up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A node: its shared state and, while it is online, its server task.
struct Node {
    name: String,
    state: Arc<NodeState>,
    online: Option<Online>,
}

/// A running `permitsync::node::run` and how to stop it.
struct Online {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// A node over a new sled store in `dir`.
    fn open(name: &str, dir: &std::path::Path, opts: &NodeOptions) -> anyhow::Result<Node> {
        let store = Store::open_with(
            dir,
            StoreOptions {
                device: Some(name.to_string()),
                ..Default::default()
            },
        )?;
        Ok(Node {
            name: name.to_string(),
            state: build_state(store, opts)?,
            online: None,
        })
    }

    /// Serve on `127.0.0.1:0` and dial every URL of `connect`.
    async fn start(&mut self, connect: Vec<String>) -> anyhow::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, self.state.clone(), connect, async move {
            let _ = stopped.await;
        }));
        self.online = Some(Online { stop, task });
        Ok(addr)
    }

    /// Stop serving and dialing: live connections are closed, the store flushed.
    async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(online) = self.online.take() {
            let _ = online.stop.send(());
            online.task.await??;
        }
        Ok(())
    }

    /// Run blocking store work off the async worker threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> permitsync::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let state = self.state.clone();
        Ok(tokio::task::spawn_blocking(move || f(&state.store)).await??)
    }

    /// A local edit (one change), then tell the live connections about it.
    async fn edit(&self, id: EntityId, edits: Vec<Edit>) -> anyhow::Result<()> {
        self.blocking(move |s| s.edit_all(id, &edits)).await?;
        self.state.hub.doc_changed(id, None);
        Ok(())
    }

    /// The view of `id` as JSON, `None` while this node does not have it.
    async fn view_json(&self, id: EntityId) -> anyhow::Result<Option<String>> {
        self.blocking(move |s| {
            if !s.contains(id)? {
                return Ok(None);
            }
            Ok(Some(s.view(id)?.to_json_string()))
        })
        .await
    }
}

/// Poll until every node holds `id` with the same view; returns that view's JSON.
async fn converged(nodes: &[&Node], id: EntityId, what: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut views = Vec::new();
        for n in nodes {
            views.push(n.view_json(id).await?);
        }
        if let Some(Some(first)) = views.first() {
            if views.iter().all(|v| v.as_ref() == Some(first)) {
                return Ok(first.clone());
            }
        }
        if Instant::now() >= deadline {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            bail!("{what}: {names:?} did not converge within {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll until the relay has `n` live sync connections.
async fn connections(relay: &Node, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while relay.state.hub.len() != n {
        if Instant::now() >= deadline {
            bail!(
                "the relay has {} connections, expected {n}",
                relay.state.hub.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let tmp = tempfile::tempdir()?;
    let devices = ["tablet-1", "tablet-2", "tablet-3"];

    // The relay: a tokens file maps each device's token to tenant `acme`.
    let tokens: Vec<serde_json::Value> = devices
        .iter()
        .map(|d| {
            serde_json::json!({
                "token": format!("secret-{d}"), "tenant": "acme", "device": d, "mode": "read-write"
            })
        })
        .collect();
    let tokens_file = tmp.path().join("tokens.json");
    std::fs::write(
        &tokens_file,
        serde_json::to_vec_pretty(&serde_json::json!({ "tokens": tokens }))?,
    )?;
    let relay_opts = NodeOptions {
        tokens: Some(tokens_file),
        ..Default::default()
    };
    let mut relay = Node::open("relay", &tmp.path().join("relay"), &relay_opts)?;
    let relay_addr = relay.start(Vec::new()).await?;
    println!("relay on http://{relay_addr}");

    // Three devices, each serving its own store and dialing the relay.
    let url = |d: &str| format!("ws://{relay_addr}/v1/sync?token=secret-{d}");
    let mut nodes = Vec::new();
    for d in devices {
        let mut node = Node::open(d, &tmp.path().join(d), &NodeOptions::default())?;
        let addr = node.start(vec![url(d)]).await?;
        println!("{d} on http://{addr}, dialing the relay");
        nodes.push(node);
    }
    connections(&relay, 3).await?;

    // Device 1 creates a permit; the others get it over their live connections.
    let permit = nodes[0]
        .blocking(|s| {
            s.create_permit(NewPermit {
                title: "Replace pump seal".into(),
                location: "Pump house 2".into(),
                work_type: "mechanical".into(),
                ppe_requirements: vec!["helmet".into()],
                safety_checklist: vec!["area barricaded".into(), "gas test done".into()],
                ..Default::default()
            })
        })
        .await?;
    nodes[0].state.hub.doc_changed(permit, None);
    {
        let all: Vec<&Node> = nodes.iter().chain([&relay]).collect();
        converged(&all, permit, "after the permit was created").await?;
    }
    println!("\npermit {permit} created on tablet-1 and synced to every device");

    // Devices 2 and 3 go offline and edit the same permit.
    for node in &mut nodes[1..] {
        node.stop().await?;
        println!("{} offline", node.name);
    }
    connections(&relay, 1).await?;
    let title = |t: &str| Edit::SetField {
        field: "title".into(),
        value: t.into(),
    };
    let ppe = |p: &str| Edit::AddItem {
        field: "ppe_requirements".into(),
        item: p.into(),
    };
    let tick = |item: &str| Edit::Tick {
        field: "safety_checklist".into(),
        item: item.into(),
        ticked: true,
    };
    nodes[1]
        .edit(
            permit,
            vec![
                title("Replace pump seal P-201"),
                ppe("gloves"),
                tick("area barricaded"),
            ],
        )
        .await?;
    nodes[2]
        .edit(
            permit,
            vec![
                title("Pump seal replacement (night shift)"),
                ppe("face shield"),
                tick("gas test done"),
            ],
        )
        .await?;
    println!("tablet-2 and tablet-3 edited the permit while offline");

    // Back online: the dialers reconnect and every replica converges.
    for node in &mut nodes[1..] {
        let name = node.name.clone();
        node.start(vec![url(&name)]).await?;
        println!("{name} back online");
    }
    let all: Vec<&Node> = nodes.iter().chain([&relay]).collect();
    let merged = converged(&all, permit, "after the reconnect").await?;

    println!("\nfinal views (fields and conflicts):");
    let mut jsons = Vec::new();
    for node in &nodes {
        let json = node
            .view_json(permit)
            .await?
            .context("the permit is missing")?;
        let view: serde_json::Value = serde_json::from_str(&json)?;
        println!(
            "  {}: fields {}\n            conflicts {}",
            node.name, view["fields"], view["conflicts"]
        );
        jsons.push(json);
    }
    ensure!(jsons.iter().all(|j| *j == merged), "the devices disagree");
    let view: serde_json::Value = serde_json::from_str(&merged)?;
    ensure!(
        view["conflicts"][0]["field"] == "title",
        "expected a title conflict"
    );
    ensure!(
        view["fields"]["ppe_requirements"]
            == serde_json::json!(["face shield", "gloves", "helmet"]),
        "expected both PPE items"
    );
    ensure!(
        view["fields"]["safety_checklist"]
            == serde_json::json!({"area barricaded": true, "gas test done": true}),
        "expected both ticks"
    );
    println!("\nall three devices (and the relay) show byte-identical views");

    println!("\nthe relay's live connections:");
    for p in relay.state.hub.status(None) {
        println!(
            "  {:<9} {:<8} sent {} received {} conflicts {} messages {}/{} (out/in)",
            p.device,
            format!("{:?}", p.direction).to_lowercase(),
            p.sent,
            p.received,
            p.conflicts,
            p.messages_sent,
            p.messages_received
        );
    }

    for node in nodes.iter_mut().chain([&mut relay]) {
        node.stop().await?;
    }
    Ok(())
}
