//! Three devices and no relay, each a real node (its own sled store in a
//! temporary directory, served on `127.0.0.1:0`, no tokens), syncing over real
//! WebSockets. Run: `cargo run --example p2p_triangle` (`RUST_LOG=info` for logs).
//!
//! 1. A line: A dials B and B dials C (the `connect` lists of
//!    `permitsync::node::run`). A permit created on A reaches C through B:
//!    B passes every change it receives on to its other connections.
//! 2. Each device edits the permit; the line carries the edits both ways.
//! 3. C dials A (`permitsync::node::connect`), closing the triangle. All three
//!    edit concurrently (two titles, PPE items, ticks) and C adds an
//!    isolation point; every replica converges.
//! 4. B goes down: A and C still reach each other directly. B comes back on
//!    the same address, A's dialer reconnects (with backoff), and B catches up.
//!
//! After each step the example checks that the three devices render
//! byte-identical views, and prints the merged permit at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use permitsync::node::{build_state, connect, run, NodeOptions, NodeState};
use permitsync::store::{Store, StoreOptions};
use permitsync::write::{Edit, NewIsolationPoint, NewPermit};
use permitsync::EntityId;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any one wait below may take before the example gives up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A device node: its shared state and, while it runs, its server task.
struct Node {
    name: &'static str,
    state: Arc<NodeState>,
    addr: Option<SocketAddr>,
    online: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
}

impl Node {
    /// A node over a new sled store in `dir`.
    fn open(name: &'static str, dir: &std::path::Path) -> anyhow::Result<Node> {
        let store = Store::open_with(
            dir,
            StoreOptions {
                device: Some(name.to_string()),
                ..Default::default()
            },
        )?;
        Ok(Node {
            name,
            state: build_state(store, &NodeOptions::default())?,
            addr: None,
            online: None,
        })
    }

    /// Serve (on `127.0.0.1:0` the first time, on the same address after a
    /// restart) and dial every URL of `dial`.
    async fn start(&mut self, dial: Vec<String>) -> anyhow::Result<()> {
        let addr = self
            .addr
            .map_or("127.0.0.1:0".to_string(), |a| a.to_string());
        let listener = TcpListener::bind(&addr).await?;
        self.addr = Some(listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, self.state.clone(), dial, async move {
            let _ = stopped.await;
        }));
        self.online = Some((stop, task));
        Ok(())
    }

    /// Stop serving and dialing: live connections are closed, the store flushed.
    async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some((stop, task)) = self.online.take() {
            let _ = stop.send(());
            task.await??;
        }
        Ok(())
    }

    /// This node's sync URL.
    fn sync_url(&self) -> String {
        let addr = self.addr.map_or("?".to_string(), |a| a.to_string());
        format!("ws://{addr}/v1/sync")
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

/// Poll until every node holds every one of `ids` with the same view; returns
/// the views' JSON.
async fn converged(nodes: &[&Node], ids: &[EntityId], what: &str) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + TIMEOUT;
    'poll: loop {
        let mut agreed = Vec::new();
        for &id in ids {
            let mut views = Vec::new();
            for n in nodes {
                views.push(n.view_json(id).await?);
            }
            match views.first() {
                Some(Some(first)) if views.iter().all(|v| v.as_ref() == Some(first)) => {
                    agreed.push(first.clone())
                }
                _ => {
                    if Instant::now() >= deadline {
                        let names: Vec<&str> = nodes.iter().map(|n| n.name).collect();
                        bail!("{what}: {names:?} did not converge on {id} within {TIMEOUT:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue 'poll;
                }
            }
        }
        println!("  {what}: {} in sync", names(nodes));
        return Ok(agreed);
    }
}

fn names(nodes: &[&Node]) -> String {
    nodes.iter().map(|n| n.name).collect::<Vec<_>>().join(", ")
}

/// Poll until each node has the given number of live sync connections.
async fn links(expected: &[(&Node, usize)]) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while !expected.iter().all(|(n, k)| n.state.hub.len() == *k) {
        if Instant::now() >= deadline {
            let got: Vec<String> = expected
                .iter()
                .map(|(n, k)| format!("{} has {} (want {k})", n.name, n.state.hub.len()))
                .collect();
            bail!("connections not up: {}", got.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn title(t: &str) -> Edit {
    Edit::SetField {
        field: "title".into(),
        value: t.into(),
    }
}

fn ppe(item: &str) -> Edit {
    Edit::AddItem {
        field: "ppe_requirements".into(),
        item: item.into(),
    }
}

fn tick(item: &str) -> Edit {
    Edit::Tick {
        field: "safety_checklist".into(),
        item: item.into(),
        ticked: true,
    }
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
    let mut a = Node::open("A", &tmp.path().join("a"))?;
    let mut b = Node::open("B", &tmp.path().join("b"))?;
    let mut c = Node::open("C", &tmp.path().join("c"))?;

    // 1. A line: A -> B -> C.
    c.start(Vec::new()).await?;
    b.start(vec![c.sync_url()]).await?;
    a.start(vec![b.sync_url()]).await?;
    links(&[(&a, 1), (&b, 2), (&c, 1)]).await?;
    println!(
        "line: A ({}) dials B ({}), B dials C ({})",
        a.sync_url(),
        b.sync_url(),
        c.sync_url()
    );
    let permit = a
        .blocking(|s| {
            s.create_permit(NewPermit {
                title: "Hot work on flare line".into(),
                location: "Flare stack F-1".into(),
                work_type: "hot_work".into(),
                description: "Weld a new flange on the flare header".into(),
                ppe_requirements: vec!["helmet".into()],
                safety_checklist: vec!["fire watch posted".into(), "area gas free".into()],
                ..Default::default()
            })
        })
        .await?;
    a.state.hub.doc_changed(permit, None);
    converged(&[&a, &b, &c], &[permit], "permit created on A").await?;

    // 2. Edits on each device travel along the line.
    a.edit(permit, vec![ppe("welding mask")]).await?;
    b.edit(permit, vec![tick("fire watch posted")]).await?;
    c.edit(permit, vec![ppe("fire-resistant coveralls")])
        .await?;
    converged(
        &[&a, &b, &c],
        &[permit],
        "edits on A, B and C over the line",
    )
    .await?;

    // 3. C dials A: a triangle. Concurrent edits on all three.
    let (c_state, a_url) = (c.state.clone(), a.sync_url());
    let c_to_a = tokio::spawn(async move { connect(c_state, &a_url, false).await });
    links(&[(&a, 2), (&b, 2), (&c, 2)]).await?;
    println!("triangle: C dials A ({})", a.sync_url());
    let valve = c
        .blocking(move |s| {
            s.create_isolation_point(NewIsolationPoint {
                id: None,
                permit_id: permit,
                description: "Flare header block valve V-7".into(),
                lock_ids: vec!["LOCK-31".into()],
            })
        })
        .await?;
    c.state.hub.doc_changed(valve, None);
    let (ea, eb, ec) = tokio::join!(
        a.edit(
            permit,
            vec![title("Hot work: flare header flange (day shift)")]
        ),
        b.edit(
            permit,
            vec![title("Flare line hot work F-1"), ppe("ear plugs")]
        ),
        c.edit(permit, vec![tick("area gas free"), ppe("welding mask")]),
    );
    ea?;
    eb?;
    ec?;
    converged(
        &[&a, &b, &c],
        &[permit, valve],
        "concurrent edits on the triangle",
    )
    .await?;

    // 4. B goes down; A and C still reach each other directly.
    b.stop().await?;
    links(&[(&a, 1), (&c, 1)]).await?;
    println!("B is down");
    a.edit(valve, vec![Edit::SetStatus("isolated".into())])
        .await?;
    c.edit(valve, vec![Edit::SetStatus("verified".into())])
        .await?;
    converged(&[&a, &c], &[valve], "isolation status moved on A and C").await?;
    // B comes back on its address; A's dialer reconnects after its backoff.
    b.start(vec![c.sync_url()]).await?;
    links(&[(&a, 2), (&b, 2), (&c, 2)]).await?;
    println!("B is back on {}", b.sync_url());
    let views = converged(&[&a, &b, &c], &[permit, valve], "B caught up").await?;

    let permit_view: serde_json::Value = serde_json::from_str(&views[0])?;
    let valve_view: serde_json::Value = serde_json::from_str(&views[1])?;
    println!(
        "\nmerged permit (identical on A, B and C):\n{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "fields": permit_view["fields"],
            "conflicts": permit_view["conflicts"],
            "violations": permit_view["violations"],
        }))?
    );
    println!(
        "isolation point: status {}, locks {}",
        valve_view["fields"]["status"], valve_view["fields"]["lock_ids"]
    );
    ensure!(
        permit_view["conflicts"][0]["field"] == "title",
        "expected a title conflict"
    );
    ensure!(
        permit_view["fields"]["ppe_requirements"]
            == serde_json::json!([
                "ear plugs",
                "fire-resistant coveralls",
                "helmet",
                "welding mask"
            ]),
        "expected every PPE item"
    );
    ensure!(
        permit_view["fields"]["safety_checklist"]
            == serde_json::json!({"area gas free": true, "fire watch posted": true}),
        "expected both ticks"
    );
    ensure!(
        valve_view["fields"]["status"] == "verified",
        "expected the highest isolation status"
    );
    println!("\nA, B and C show byte-identical views");

    for node in [&mut a, &mut b, &mut c] {
        node.stop().await?;
    }
    let ended = c_to_a.await?;
    println!(
        "C's connection to A ended: {}",
        ended.map_or_else(|e| e, |e| e.reason)
    );
    Ok(())
}
