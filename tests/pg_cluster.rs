//! Three real `permitsync serve --database-url` processes on 127.0.0.1:0
//! over one real PostgreSQL database (`scripts/test.sh` starts one; see
//! `tests/support/pg.rs`), with devices in the test process: devices on
//! different relays converge, a live push crosses relays, a device moves
//! between relays and resumes, fails over when its relay dies, tenants and
//! read-only tokens behave as on one relay, and relays killed with SIGKILL
//! while a device writes through them lose nothing acknowledged
//! (`PERMITSYNC_STRESS=1`: 12 kills instead of 2).

use std::path::Path;
use std::time::{Duration, Instant};

use permitsync::model::EntityId;
use serde_json::json;

mod support;

use support::device::{same_documents, Device};
use support::pg::{self, TestDatabase};
use support::{eventually, run_cli, NodeProcess};

/// Relays over one database, each with a sled directory it must not use.
struct Cluster {
    relays: Vec<NodeProcess>,
    db: TestDatabase,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` relays over a new database, with `args` besides `--database-url`.
    fn start(n: usize, args: &[&str]) -> Option<Cluster> {
        let db = TestDatabase::create()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let relays = (0..n)
            .map(|i| {
                NodeProcess::options(&dir.path().join(format!("relay{i}")))
                    .name(&format!("relay{i}"))
                    .args(&["--database-url", &db.url])
                    .args(args)
                    .log_level("info")
                    .start()
            })
            .collect();
        Some(Cluster { relays, db, dir })
    }

    fn url(&self, i: usize) -> String {
        self.relays[i].sync_url()
    }

    fn logs(&self) -> String {
        self.relays
            .iter()
            .map(NodeProcess::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A sync URL nobody listens on.
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    format!("ws://127.0.0.1:{port}/v1/sync")
}

/// A counter of the relay's `/metrics` (summed over its labels).
async fn metric(relay: &NodeProcess, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", relay.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A device connected to relay 0 sees, on the same connection, what
/// devices on relays 1 and 2 wrote, woken by the database's notification
/// (the relays' feed poll is set to a minute, so only the notification can
/// be in time); every device ends with every document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_on_three_relays_converge_and_live_pushes_cross_relays() {
    let Some(cluster) = Cluster::start(3, &["--cluster-poll-ms", "60000"]) else {
        return;
    };
    let watcher = Device::new();
    let live = watcher.live(&cluster.url(0));
    // the watcher's connection is up before anything is written
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writer = Device::new();
    let mut written: Vec<EntityId> = Vec::new();
    let mut delays = Vec::new();
    for round in 0..20 {
        let ids = writer.permits(1, round);
        let relay = 1 + round % 2;
        let sent = Instant::now();
        writer
            .sync(&cluster.url(relay))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", cluster.logs()));
        written.extend(ids);
        let want = written.clone();
        eventually(
            Duration::from_secs(20),
            "the live push from another relay",
            || {
                let ok = watcher.has_all(&want);
                async move { ok.then_some(()) }
            },
        )
        .await;
        delays.push(sent.elapsed());
    }
    assert!(!live.is_finished(), "the watcher never reconnected");
    delays.sort();
    eprintln!(
        "cross-relay push, from the start of the writer's sync (one new permit, through \
         relay 1 or 2) to the watcher on relay 0 having it, over {} writes: p50 {:?}, max {:?}",
        delays.len(),
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    same_documents(writer.store(), watcher.store(), &written);
    // a device on the third relay writes too; everyone converges
    let third = Device::new();
    let more = third.permits(4, 9);
    third.sync(&cluster.url(2)).await.expect("third syncs");
    writer.sync(&cluster.url(1)).await.expect("writer syncs");
    third.sync(&cluster.url(2)).await.expect("third again");
    written.extend(more);
    same_documents(writer.store(), third.store(), &written);
    same_documents(third.store(), writer.store(), &written);
    let want = written.clone();
    eventually(
        Duration::from_secs(20),
        "the watcher has everything",
        || {
            let ok = watcher.has_all(&want);
            async move { ok.then_some(()) }
        },
    )
    .await;
    assert!(
        !cluster.dir.path().join("relay0").exists(),
        "relays on PostgreSQL make no sled store"
    );
}

/// The relays' listeners lose their connections (terminated in the
/// database): what is committed before they are back is announced to
/// nobody, yet a device on relay 0 gets it, long before the minute-long
/// poll: a listener that reconnects wakes its relay to catch up. And the
/// listener is back: the next push is live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_listener_lost_its_connection_catches_up() {
    let Some(cluster) = Cluster::start(2, &["--cluster-poll-ms", "60000"]) else {
        return;
    };
    let watcher = Device::new();
    let live = watcher.live(&cluster.url(0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg::execute(
        &cluster.db.url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' \
         AND pid <> pg_backend_pid()",
    )
    .expect("cut the listeners");
    let writer = Device::new();
    for round in 0..2 {
        let ids = writer.permits(2, round);
        writer.sync(&cluster.url(1)).await.expect("writer");
        eventually(Duration::from_secs(20), "documents from relay 1", || {
            let ok = watcher.has_all(&ids);
            async move { ok.then_some(()) }
        })
        .await;
    }
    assert!(!live.is_finished(), "the watcher never reconnected");
    assert!(
        cluster.relays[0]
            .logs()
            .contains("the database listener lost its connection"),
        "the listener was cut: {}",
        cluster.relays[0].log_tail()
    );
}

/// A device that downloaded everything through relay 0 moves to relay 1:
/// the feed positions its cursor names and its sync states are the
/// cluster's (in the database), so relay 1 sends it a small fraction of
/// what relay 0 did and nothing it has; what was written meanwhile through
/// relay 2 it does get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_moving_to_another_relay_resumes_where_it_was() {
    let Some(cluster) = Cluster::start(3, &[]) else {
        return;
    };
    let writer = Device::new();
    let ids = writer.permits(30, 0);
    writer.sync(&cluster.url(0)).await.expect("writer");
    let before = metric(&cluster.relays[0], "permitsync_bytes_out_total").await;
    let device = Device::new();
    device.sync(&cluster.url(0)).await.expect("first relay");
    let download = metric(&cluster.relays[0], "permitsync_bytes_out_total").await - before;
    same_documents(writer.store(), device.store(), &ids);
    let applied = device.state.metrics.changes_applied();
    device.sync(&cluster.url(1)).await.expect("second relay");
    let resumed = metric(&cluster.relays[1], "permitsync_bytes_out_total").await;
    eprintln!("bytes sent: {download} for the download, {resumed} after moving relays");
    assert!(resumed > 0.0, "relay 1 served the device");
    assert!(
        resumed * 10.0 < download,
        "moving relays re-sends little: {resumed} vs {download}"
    );
    assert_eq!(
        device.state.metrics.changes_applied(),
        applied,
        "nothing came that the device had"
    );
    // written meanwhile through relay 2: the device gets it through relay 1
    let later = writer.permits(1, 1);
    writer.sync(&cluster.url(2)).await.expect("writer again");
    device.sync(&cluster.url(1)).await.expect("back on relay 1");
    same_documents(writer.store(), device.store(), &later);
}

/// A device keeps one connection to the cluster, as `serve --connect
/// URL1,URL2` does: when its relay dies it moves to the next at once and
/// goes on receiving. And `permitsync sync` with a dead relay first syncs
/// through the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_fails_over_to_the_next_relay() {
    let Some(mut cluster) = Cluster::start(2, &[]) else {
        return;
    };
    let device = Device::new();
    let (stop, dialer) = device.dial(&[cluster.url(0), cluster.url(1)]);
    let writer = Device::new();
    let first = writer.permits(2, 0);
    writer.sync(&cluster.url(1)).await.expect("writer");
    eventually(Duration::from_secs(20), "the first documents", || {
        let ok = device.has_all(&first);
        async move { ok.then_some(()) }
    })
    .await;
    cluster.relays[0].sigkill();
    let second = writer.permits(2, 1);
    writer.sync(&cluster.url(1)).await.expect("writer again");
    // the dialer's backoff starts at a second: failing over must not wait
    // for relay 0 to come back (it never does)
    eventually(Duration::from_secs(20), "documents through relay 1", || {
        let ok = device.has_all(&second);
        async move { ok.then_some(()) }
    })
    .await;
    stop.send(true).expect("stop");
    drop(stop);
    dialer.abort();

    // the CLI: a dead URL first, then a live one, comma-separated
    let data = cluster.dir.path().join("cli-device");
    let out = run_cli(
        &data,
        &[
            "sync",
            &format!("{},{}", dead_url(), cluster.url(1)),
            "--timeout",
            "60",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("in sync with"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let listed = run_cli(&data, &["--json", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    for id in first.iter().chain(&second) {
        assert!(text.contains(&id.to_string()), "{id} missing: {text}");
    }
}

fn write_tokens(dir: &Path) -> String {
    let path = dir.join("tokens.json");
    std::fs::write(
        &path,
        json!({"tokens": [
            {"token": "acme", "tenant": "acme", "device": "tab-1", "mode": "read-write"},
            {"token": "acme-2", "tenant": "acme", "device": "tab-2", "mode": "read-write"},
            {"token": "acme-ro", "tenant": "acme", "device": "screen", "mode": "read-only"},
            {"token": "globex", "tenant": "globex", "device": "tab-9", "mode": "read-write"},
        ]})
        .to_string(),
    )
    .expect("tokens");
    path.to_string_lossy().into_owned()
}

/// Tenants and read-only tokens across relays: what one tenant writes
/// through one relay reaches its devices on the others and never another
/// tenant's; a read-only device receives, but what it writes is stored by
/// no relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_read_only_tokens_behave_as_on_one_relay() {
    let tokens_dir = tempfile::tempdir().expect("tempdir");
    let tokens = write_tokens(tokens_dir.path());
    let Some(cluster) = Cluster::start(3, &["--tokens", &tokens]) else {
        return;
    };
    let url = |i: usize, token: &str| cluster.relays[i].sync_url_with_token(token);
    let acme = Device::new();
    let ids = acme.permits(3, 0);
    acme.sync(&url(0, "acme")).await.expect("acme writes");
    let other = Device::new();
    other.sync(&url(1, "globex")).await.expect("globex syncs");
    assert_eq!(
        other.store().summaries().expect("summaries").len(),
        0,
        "another tenant sees nothing of acme's"
    );
    let globex_own = other.permits(1, 1);
    other.sync(&url(1, "globex")).await.expect("globex writes");
    let screen = Device::new();
    screen
        .sync(&url(2, "acme-ro"))
        .await
        .expect("read-only syncs");
    same_documents(acme.store(), screen.store(), &ids);
    let refused = screen.permits(1, 2);
    let _ = screen.sync(&url(2, "acme-ro")).await;
    let colleague = Device::new();
    colleague
        .sync(&url(1, "acme-2"))
        .await
        .expect("a colleague syncs");
    same_documents(acme.store(), colleague.store(), &ids);
    assert!(
        !colleague.has_all(&refused),
        "a read-only device's write was stored"
    );
    assert!(
        !colleague.has_all(&globex_own),
        "another tenant's document leaked"
    );
    assert_eq!(
        colleague.store().summaries().expect("summaries").len(),
        ids.len()
    );
    // the colleague registered on relay 1 is removed through relay 0: every
    // relay refuses it from then on (within the feed poll)
    let http = reqwest::Client::new();
    let removed = http
        .delete(format!("{}/v1/devices/tab-2", cluster.relays[0].base))
        .bearer_auth("acme")
        .send()
        .await
        .expect("remove");
    assert_eq!(removed.status().as_u16(), 200, "{:?}", removed.text().await);
    eventually(
        Duration::from_secs(20),
        "relay 1 refuses the removed device",
        || {
            let url = url(1, "acme-2");
            let colleague = &colleague;
            async move { colleague.sync(&url).await.is_err().then_some(()) }
        },
    )
    .await;
    // and the registry of each relay lists the devices the others saw
    eventually(Duration::from_secs(20), "relay 2 lists tab-1", || {
        let (http, base) = (http.clone(), cluster.relays[2].base.clone());
        async move {
            let v: serde_json::Value = http
                .get(format!("{base}/v1/devices"))
                .bearer_auth("acme")
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v.to_string().contains("\"tab-1\"").then_some(())
        }
    })
    .await;
}

/// A device writes through the relays in turn while they are killed with
/// SIGKILL (also in the middle of a sync) and restarted: every change a
/// completed sync acknowledged reaches fresh devices through every relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_sigkill_of_relays_under_writes() {
    let kills = if std::env::var("PERMITSYNC_STRESS").as_deref() == Ok("1") {
        12
    } else {
        2
    };
    let Some(mut cluster) = Cluster::start(3, &[]) else {
        return;
    };
    let writer = Device::new();
    let mut acknowledged: Vec<EntityId> = Vec::new();
    for kill in 0..kills {
        let victim = kill % 3;
        let survivor = (kill + 1) % 3;
        // acknowledged through the relay about to die
        let ids = writer.permits(4, kill * 2);
        writer
            .sync(&cluster.url(victim))
            .await
            .unwrap_or_else(|e| panic!("kill {kill}: {e}\n{}", cluster.logs()));
        acknowledged.extend(ids);
        // killed in the middle of a sync: not acknowledged, may be lost
        let _pending = writer.permits(20, kill * 2 + 1);
        let url = cluster.url(victim);
        let state = writer.state.clone();
        let in_flight =
            tokio::spawn(async move { permitsync::node::connect(state, &url, true).await });
        tokio::time::sleep(Duration::from_millis(20 + 15 * (kill as u64 % 4))).await;
        cluster.relays[victim].sigkill();
        let _ = in_flight.await;
        // the survivors have every acknowledged document
        let reader = Device::new();
        reader
            .sync(&cluster.url(survivor))
            .await
            .unwrap_or_else(|e| panic!("kill {kill}: {e}\n{}", cluster.logs()));
        same_documents(writer.store(), reader.store(), &acknowledged);
        cluster.relays[victim].restart();
    }
    // and the writer completes through a survivor: then everything is there
    let everything: Vec<EntityId> = writer
        .store()
        .summaries()
        .expect("summaries")
        .iter()
        .map(|s| s.id)
        .collect();
    writer.sync(&cluster.url(1)).await.expect("a last sync");
    for i in 0..3 {
        let reader = Device::new();
        reader.sync(&cluster.url(i)).await.expect("a last reader");
        same_documents(writer.store(), reader.store(), &everything);
    }
}

/// `/v1/status` and `/metrics` of a relay show the relays over the
/// database (by their heartbeats), the feed lag and the database latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_show_the_cluster() {
    let Some(cluster) = Cluster::start(3, &[]) else {
        return;
    };
    let status = eventually(
        Duration::from_secs(20),
        "three relays in the status",
        || {
            let base = cluster.relays[0].base.clone();
            async move {
                let v: serde_json::Value = reqwest::get(format!("{base}/v1/status"))
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (v["cluster"]["relays"].as_array()?.len() == 3).then_some(v)
            }
        },
    )
    .await;
    let view = &status["cluster"];
    let addresses: Vec<&str> = view["relays"]
        .as_array()
        .expect("relays")
        .iter()
        .filter_map(|r| r["address"].as_str())
        .collect();
    for relay in &cluster.relays {
        assert!(addresses.contains(&relay.addr()), "{view}");
    }
    assert!(view["database_latency_ms"].as_f64().expect("latency") > 0.0);
    assert_eq!(view["feed_lag"], 0, "{view}");
    let text = reqwest::get(format!("{}/metrics", cluster.relays[1].base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    for name in [
        "permitsync_cluster_relays",
        "permitsync_cluster_feed_lag 0",
        "permitsync_cluster_database_latency_seconds",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
}
