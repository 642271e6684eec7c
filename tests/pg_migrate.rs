//! `permitsync migrate` between a real sled relay's store and a real
//! PostgreSQL database (`scripts/test.sh` starts one; `tests/support/pg.rs`):
//! a relay's store moves into the database with its tenants and its
//! devices' sync states (a device resumes on the relay over the database
//! without anything coming back), a non-empty destination is refused unless
//! asked, and the store comes back out into a sled directory a relay serves.

use std::path::Path;

use serde_json::json;

mod support;

use support::device::{same_documents, Device};
use support::pg::TestDatabase;
use support::{run_cli, NodeProcess};

fn write_tokens(dir: &Path) -> String {
    let path = dir.join("tokens.json");
    std::fs::write(
        &path,
        json!({"tokens": [
            {"token": "acme", "tenant": "acme", "device": "tab-1", "mode": "read-write"},
            {"token": "globex", "tenant": "globex", "device": "tab-9", "mode": "read-write"},
        ]})
        .to_string(),
    )
    .expect("tokens");
    path.to_string_lossy().into_owned()
}

fn migrate(data: &Path, args: &[&str]) -> (bool, String) {
    let out = run_cli(data, &[&["migrate"], args].concat());
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_relay_moves_into_the_database_and_back_out() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let tokens = write_tokens(tmp.path());
    let sled_dir = tmp.path().join("relay");
    let mut relay = NodeProcess::start(&sled_dir, &["--tokens", &tokens]);
    let acme = Device::new();
    let ids = acme.permits(10, 0);
    acme.sync(&relay.sync_url_with_token("acme"))
        .await
        .expect("acme on the sled relay");
    let globex = Device::new();
    let theirs = globex.permits(2, 1);
    globex
        .sync(&relay.sync_url_with_token("globex"))
        .await
        .expect("globex on the sled relay");
    // stopped, as the docs say
    relay.sigkill();

    let (ok, out) = migrate(
        tmp.path(),
        &[
            "--from-data",
            &sled_dir.to_string_lossy(),
            "--database-url",
            &db.url,
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("copied "), "{out}");
    // a second copy into the now non-empty database is refused...
    let (ok, out) = migrate(
        tmp.path(),
        &[
            "--from-data",
            &sled_dir.to_string_lossy(),
            "--database-url",
            &db.url,
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("already holds a store"), "{out}");
    // ...unless asked
    let (ok, out) = migrate(
        tmp.path(),
        &[
            "--from-data",
            &sled_dir.to_string_lossy(),
            "--database-url",
            &db.url,
            "--into-non-empty",
        ],
    );
    assert!(ok, "{out}");

    let pg_relay = NodeProcess::options(&tmp.path().join("pg-relay"))
        .args(&["--database-url", &db.url, "--tokens", &tokens])
        .start();
    // the device resumes: nothing comes back that it has
    let applied = acme.state.metrics.changes_applied();
    acme.sync(&pg_relay.sync_url_with_token("acme"))
        .await
        .expect("acme on the relay over the database");
    assert_eq!(acme.state.metrics.changes_applied(), applied);
    let fresh = Device::new();
    fresh
        .sync(&pg_relay.sync_url_with_token("acme"))
        .await
        .expect("a fresh acme device");
    same_documents(acme.store(), fresh.store(), &ids);
    assert_eq!(
        fresh.store().summaries().expect("summaries").len(),
        ids.len(),
        "the tenants came along: nothing of globex's"
    );
    drop(pg_relay);

    // and back out into a new sled store that a relay serves
    let back = tmp.path().join("back");
    let (ok, out) = migrate(
        tmp.path(),
        &[
            "--to-data",
            &back.to_string_lossy(),
            "--database-url",
            &db.url,
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = migrate(
        tmp.path(),
        &[
            "--to-data",
            &back.to_string_lossy(),
            "--database-url",
            &db.url,
        ],
    );
    assert!(!ok && out.contains("already holds a store"), "{out}");
    let sled_again = NodeProcess::start(&back, &["--tokens", &tokens]);
    let last = Device::new();
    last.sync(&sled_again.sync_url_with_token("globex"))
        .await
        .expect("globex on the sled store that came back");
    same_documents(globex.store(), last.store(), &theirs);
    assert_eq!(last.store().summaries().expect("summaries").len(), 2);
}
