//! The PostgreSQL the tests use. `scripts/test.sh` starts a throwaway one
//! (`scripts/pg.sh`) and names it in `PERMITSYNC_TEST_DATABASE_URL`; each
//! test gets a database of its own on it ([`TestDatabase`]). Without the
//! variable a PostgreSQL test fails, saying how to get one, unless
//! `PERMITSYNC_SKIP_PG=1` asks to skip them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

/// The server the tests use.
pub const URL_VAR: &str = "PERMITSYNC_TEST_DATABASE_URL";
/// `1`: skip the PostgreSQL tests.
pub const SKIP_VAR: &str = "PERMITSYNC_SKIP_PG";

/// The test server's URL; `None` when the PostgreSQL tests are skipped.
/// Panics when neither is set: a test that needs PostgreSQL never passes
/// silently without it.
pub fn server_url() -> Option<String> {
    if let Ok(url) = std::env::var(URL_VAR) {
        if !url.trim().is_empty() {
            return Some(url);
        }
    }
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        eprintln!("skipped: {SKIP_VAR}=1 (this test needs PostgreSQL)");
        return None;
    }
    panic!(
        "this test needs PostgreSQL and {URL_VAR} is not set. Run the tests with \
         scripts/test.sh (it starts a throwaway PostgreSQL with scripts/pg.sh), or start one \
         yourself: `d=$(mktemp -d); export {URL_VAR}=$(scripts/pg.sh start $d)` (and \
         `scripts/pg.sh stop $d` afterwards), or set {SKIP_VAR}=1 to skip the PostgreSQL tests"
    );
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Run `sql` (statements separated by `;`) on the database at `url`, from a
/// thread of its own (so that a test on a runtime can call it too).
pub fn execute(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, NoTls)
                .await
                .map_err(|e| format!("connect to {url}: {e:?}"))?;
            let conn = tokio::spawn(connection);
            let done = client
                .batch_execute(&sql)
                .await
                .map_err(|e| format!("{sql}: {e:?}"));
            drop(client);
            let _ = conn.await;
            done
        })
    })
    .join()
    .map_err(|_| "the SQL thread panicked".to_string())?
}

/// The rows of `sql` (one text column) on the database at `url`.
pub fn query_texts(url: &str, sql: &str) -> Vec<String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
            let conn = tokio::spawn(connection);
            let rows = client.query(&sql, &[]).await.expect("query");
            drop(client);
            let _ = conn.await;
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        })
    })
    .join()
    .expect("the SQL thread")
}

/// A database of its own for one test, on the test server; dropped (with
/// whatever still uses it) when this is.
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    name: String,
    server: String,
}

impl TestDatabase {
    /// A new empty database; `None` when the PostgreSQL tests are skipped.
    pub fn create() -> Option<TestDatabase> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let server = server_url()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "t_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        execute(&server, &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create a test database on {server}: {e}"));
        Some(TestDatabase {
            url: with_database(&server, &name),
            name,
            server,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // best effort: the cluster is thrown away after the run anyway
        let _ = execute(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
