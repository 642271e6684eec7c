//! A real `permitsync serve --database-url` process on 127.0.0.1:0 over a
//! real PostgreSQL (`scripts/test.sh` starts one; see `tests/support/pg.rs`):
//! devices sync to it, it is killed with SIGKILL (also in the middle of a
//! sync) and started again, and everything a completed sync acknowledged is
//! still there for a device that never saw it. And a relay refuses to start
//! on a database it cannot reach or whose schema is newer than it knows.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use permitsync::model::EntityId;
use permitsync::node;
use permitsync::store::SCHEMA_VERSION;

mod support;

use support::device::{same_documents, Device};
use support::pg::{self, TestDatabase};
use support::{NodeProcess, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_sigkill_of_a_postgres_relay() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let sled_dir = tmp.path().join("relay");
    let mut relay = NodeProcess::options(&sled_dir)
        .name("pg-relay")
        .args(&["--database-url", &db.url])
        .start();
    let writer = Device::new();
    let mut acknowledged: Vec<EntityId> = Vec::new();
    for round in 0..3 {
        let ids = writer.permits(10, round);
        writer
            .sync(&relay.sync_url())
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", relay.log_tail()));
        acknowledged.extend(ids);
        relay.restart();
        // a device that never saw them gets every acknowledged document
        let reader = Device::new();
        reader
            .sync(&relay.sync_url())
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", relay.log_tail()));
        same_documents(writer.store(), reader.store(), &acknowledged);
        assert_eq!(
            reader.store().summaries().expect("summaries").len(),
            acknowledged.len()
        );
    }

    // killed in the middle of a sync: what was not acknowledged may be
    // missing, but the relay starts again and the next sync completes
    let ids = writer.permits(60, 3);
    let url = relay.sync_url();
    let state = writer.state.clone();
    let in_flight = tokio::spawn(async move { node::connect(state, &url, true).await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    relay.restart();
    let _ = in_flight.await;
    writer
        .sync(&relay.sync_url())
        .await
        .unwrap_or_else(|e| panic!("after the kill mid-sync: {e}\n{}", relay.log_tail()));
    acknowledged.extend(ids);
    relay.restart();
    let reader = Device::new();
    reader.sync(&relay.sync_url()).await.expect("a last reader");
    same_documents(writer.store(), reader.store(), &acknowledged);
    assert!(
        !sled_dir.exists(),
        "a relay on PostgreSQL makes no sled store in --data"
    );
}

/// `permitsync serve` on `args`, expected to exit before listening: its
/// exit code and stderr.
fn serve_fails(data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("PERMITSYNC_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn permitsync serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("permitsync serve did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "it must not listen"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_a_database_with_a_newer_schema() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    // a database a newer permitsync migrated
    pg::execute(
        &db.url,
        &format!(
            "CREATE TABLE permitsync_migrations (version BIGINT PRIMARY KEY, \
               description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); \
             INSERT INTO permitsync_migrations (version, description) VALUES \
               (1, 'kv'), ({}, 'from the future')",
            SCHEMA_VERSION + 5
        ),
    )
    .expect("a newer schema");
    let (code, stderr) = serve_fails(&tmp.path().join("data"), &["--database-url", &db.url]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "has schema version {}, newer than the version this permitsync knows ({})",
            SCHEMA_VERSION + 5,
            SCHEMA_VERSION
        )),
        "{stderr}"
    );
    // and the database is left as it was: no kv table was made
    assert!(
        pg::execute(&db.url, "SELECT 1 FROM kv").is_err(),
        "the refusing relay changed the database"
    );
}

#[test]
fn serve_says_why_it_cannot_reach_the_database() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let url = format!("postgres://relay:hunter2@127.0.0.1:{port}/permits");
    let (code, stderr) = serve_fails(&tmp.path().join("data"), &["--database-url", &url]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: cannot connect to the database relay@127.0.0.1:{port}/permits: \
             error connecting to server: Connection refused"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "no password in errors: {stderr}"
    );
}
