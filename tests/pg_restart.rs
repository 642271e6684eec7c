//! The database restarted under relays: a PostgreSQL of the test's own
//! (`scripts/pg.sh start`, then `halt` and `resume`), two real relay
//! processes over it. While the database is down a device's sync through a
//! relay does not complete (nothing is acknowledged that could not commit)
//! and the relays keep running; once it is back, they serve again, their
//! listeners reconnect, and every acknowledged change reaches the devices.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use permitsync::model::EntityId;

mod support;

use support::device::{same_documents, Device};
use support::pg;
use support::{eventually, repo_root, NodeProcess};

/// A PostgreSQL server of this test's own, stopped and deleted on drop.
struct PrivatePg {
    dir: PathBuf,
    url: String,
}

fn pg_sh(command: &str, dir: &Path) -> String {
    let out = Command::new(repo_root().join("scripts/pg.sh"))
        .args([command, &dir.to_string_lossy()])
        .output()
        .expect("run scripts/pg.sh");
    assert!(
        out.status.success(),
        "scripts/pg.sh {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl PrivatePg {
    fn start() -> PrivatePg {
        // under /tmp: as root the server runs as another user, who must reach it
        let dir = std::env::temp_dir().join(format!(
            "permitsync-pg-restart-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let url = pg_sh("start", &dir);
        PrivatePg { dir, url }
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/pg.sh"))
            .args(["stop", &self.dir.to_string_lossy()])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_survive_a_database_restart_and_acknowledge_nothing_they_could_not_commit() {
    // the same switch as every PostgreSQL test
    if pg::server_url().is_none() {
        return;
    }
    let db = PrivatePg::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut relays: Vec<NodeProcess> = (0..2)
        .map(|i| {
            NodeProcess::options(&tmp.path().join(format!("relay{i}")))
                .args(&["--database-url", &db.url, "--cluster-poll-ms", "500"])
                .log_level("info")
                .start()
        })
        .collect();
    let watcher = Device::new();
    let (_stop, _dialer) = watcher.dial(&[relays[0].sync_url()]);
    let writer = Device::new();
    let mut acknowledged: Vec<EntityId> = writer.permits(3, 0);
    writer
        .sync(&relays[1].sync_url())
        .await
        .expect("before the restart");

    pg_sh("halt", &db.dir);
    let during = writer.permits(3, 1);
    let outcome = writer.sync(&relays[1].sync_url()).await;
    assert!(
        outcome.is_err(),
        "a sync completed while the database was down: {outcome:?}"
    );
    for relay in relays.iter_mut() {
        assert!(relay.alive(), "a relay exited: {}", relay.log_tail());
    }
    pg_sh("resume", &db.dir);

    let url = relays[1].sync_url();
    eventually(Duration::from_secs(60), "a sync after the restart", || {
        let (writer, url) = (&writer, url.clone());
        async move { writer.sync(&url).await.ok() }
    })
    .await;
    acknowledged.extend(during);
    eventually(Duration::from_secs(60), "the watcher on relay 0", || {
        let ok = watcher.has_all(&acknowledged);
        async move { ok.then_some(()) }
    })
    .await;
    let reader = Device::new();
    reader.sync(&relays[0].sync_url()).await.expect("a reader");
    same_documents(writer.store(), reader.store(), &acknowledged);
    // the listener lost its connection with the server and listens again
    // (its backoff doubles up to 30 s; the feed poll served meanwhile)
    eventually(Duration::from_secs(60), "the listener back", || {
        let again = relays[0]
            .logs()
            .matches("listening for other relays' commits")
            .count()
            >= 2;
        async move { again.then_some(()) }
    })
    .await;
}
