//! The PostgreSQL storage engine: the store's ordered key-value space in one
//! table of a PostgreSQL-protocol database, behind the same
//! [`Backend`] trait as sled. Every [`Backend::apply`] is one transaction,
//! acknowledged after it committed; [`Backend::flush`] has nothing left to
//! do. `docs/cluster.md` describes the schema, the client and what is durable
//! when.
//!
//! The client is `tokio-postgres` with a `deadpool-postgres` pool, driven by a
//! runtime of the engine's own (`bridge.rs`), so that the synchronous trait
//! can be called from any thread without blocking on the caller's runtime.

mod bridge;
mod checked;
mod error;
mod key_range;
mod listen;
mod relays;
mod schema;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::tokio_postgres::{Config, NoTls};
use deadpool_postgres::{ClientWrapper, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};

use super::backend::{Backend, BatchOp, Check, Checked, Heartbeat, Pair, StorageError};
use bridge::Bridge;
pub use error::PgError;
use key_range::{prefix_end, scan_start};
use schema::Migrated;
pub use schema::SCHEMA_VERSION;

/// How the engine talks to the database.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections kept at most (one per call in flight).
    pub pool_size: usize,
    /// How long one call (waiting for a connection included) may take before
    /// it fails; the write it carried is then not acknowledged.
    pub timeout: Duration,
    /// How long connecting may take, unless the URL says (`connect_timeout`).
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The store's key-value space in a PostgreSQL-protocol database (table
/// `kv`). Safe to share between threads; every method may be called from
/// any thread, also from a task on a tokio runtime.
pub struct PgBackend {
    // dropped before the runtime that drives its connections
    pool: Pool,
    bridge: Bridge,
    target: String,
    timeout: Duration,
    /// The connection settings, for the listener (`listen.rs`).
    config: Config,
    /// Whether commits notify the other relays (`LISTEN/NOTIFY`: PostgreSQL
    /// only; elsewhere they poll the feed).
    notify: bool,
    /// Wakes this relay when another one committed (`listen.rs`).
    wake: std::sync::OnceLock<Arc<tokio::sync::Notify>>,
}

const GET: &str = "SELECT value FROM kv WHERE key = $1";
/// Scans from `$1` (included or not), at most `$2` rows, below `$3` (when the
/// prefix has an end).
const SCAN_FROM: &str = "SELECT key, value FROM kv WHERE key >= $1 ORDER BY key LIMIT $2";
const SCAN_AFTER: &str = "SELECT key, value FROM kv WHERE key > $1 ORDER BY key LIMIT $2";
const SCAN_FROM_BELOW: &str =
    "SELECT key, value FROM kv WHERE key >= $1 AND key < $3 ORDER BY key LIMIT $2";
const SCAN_AFTER_BELOW: &str =
    "SELECT key, value FROM kv WHERE key > $1 AND key < $3 ORDER BY key LIMIT $2";
const LAST: &str = "SELECT key, value FROM kv WHERE key >= $1 ORDER BY key DESC LIMIT 1";
const LAST_BELOW: &str =
    "SELECT key, value FROM kv WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT 1";

/// What the first connection found.
enum First {
    Ready {
        migrated: Migrated,
        commit: Option<String>,
        notify: bool,
    },
    Unreachable(String),
    Failed(String),
}

/// A batch the database asks to retry (a serialization failure, which
/// CockroachDB and YugabyteDB report under contention, or a deadlock) is
/// run again, up to this many times in all.
const APPLY_ATTEMPTS: usize = 5;

impl PgBackend {
    /// Connect to the database at `url` (`postgres://user:password@host:port/db`
    /// or the `key=value` form), apply the schema's migrations, check that
    /// the schema is not newer than this binary knows, and become the
    /// database's one writer.
    ///
    /// One relay per database, until the cluster's feed is built
    /// (`docs/cluster.md`): the engine that connected last is the writer, and
    /// a batch of any other fails before it commits ("another relay took
    /// over"). A relay restarted after a crash thus takes over at once, and
    /// a second relay started by mistake fences the first instead of
    /// interleaving feed positions with it.
    pub fn connect(url: &str) -> Result<PgBackend, PgError> {
        PgBackend::connect_with(url, PgOptions::default())
    }

    /// [`PgBackend::connect`] with `opts`.
    pub fn connect_with(url: &str, opts: PgOptions) -> Result<PgBackend, PgError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| PgError::InvalidUrl(error::chain(&e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(opts.connect_timeout);
        }
        let target = describe(&config);
        let bridge = Bridge::new()?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(opts.timeout))
            .create_timeout(Some(opts.connect_timeout))
            .build()
            .map_err(|e| PgError::Runtime(std::io::Error::other(e)))?;
        let mut backend = PgBackend {
            pool,
            bridge,
            target,
            timeout: opts.timeout,
            config,
            notify: false,
            wake: std::sync::OnceLock::new(),
        };
        backend.notify = backend.prepare()?;
        Ok(backend)
    }

    /// `user@host:port/database`: where the engine stores (no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Connect once, migrate, and say whether commits are durable. Returns
    /// whether the database has `NOTIFY` (PostgreSQL does; CockroachDB and
    /// YugabyteDB relays poll the feed instead).
    fn prepare(&self) -> Result<bool, PgError> {
        let pool = self.pool.clone();
        let first = self
            .bridge
            .run(async move {
                let mut client = match pool.get().await {
                    Ok(client) => client,
                    Err(e) => return First::Unreachable(pool_error(e)),
                };
                match schema::migrate(&mut client).await {
                    Ok(Migrated::UpTo { from }) => First::Ready {
                        migrated: Migrated::UpTo { from },
                        commit: synchronous_commit(&client).await,
                        notify: client.batch_execute(checked::PROBE_NOTIFY).await.is_ok(),
                    },
                    Ok(migrated) => First::Ready {
                        migrated,
                        commit: None,
                        notify: false,
                    },
                    Err(e) => First::Failed(error::chain(&e)),
                }
            })
            .unwrap_or_else(|e| First::Unreachable(e.message().to_string()));
        let target = self.target.clone();
        match first {
            First::Unreachable(reason) => Err(PgError::Unreachable { target, reason }),
            First::Failed(reason) => Err(PgError::Migration { target, reason }),
            First::Ready {
                migrated: Migrated::TooNew { found },
                ..
            } => Err(PgError::SchemaTooNew {
                target,
                found,
                known: SCHEMA_VERSION,
            }),
            First::Ready {
                migrated: Migrated::UpTo { from },
                commit,
                notify,
            } => {
                tracing::info!(database = %target, from, to = SCHEMA_VERSION,
                    synchronous_commit = commit.as_deref().unwrap_or("unknown"),
                    notify, "database schema ready");
                if commit.as_deref() == Some("off") {
                    tracing::warn!(database = %target,
                        "synchronous_commit is off: a commit the database acknowledged can \
                         be lost if it crashes, and permitsync acknowledges writes on commit");
                }
                Ok(notify)
            }
        }
    }

    /// Run `work` with a pooled connection on the engine's runtime, within
    /// the call's timeout.
    fn call<T, F, Fut>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StorageError>> + Send,
    {
        let pool = self.pool.clone();
        let timeout = self.timeout;
        self.bridge
            .run(async move {
                let run = async {
                    let client = pool
                        .get()
                        .await
                        .map_err(|e| StorageError::new(pool_error(e)))?;
                    work(client).await
                };
                match tokio::time::timeout(timeout, run).await {
                    Ok(answer) => answer,
                    Err(_) => Err(StorageError::new(format!(
                        "the database did not answer within {timeout:?}"
                    ))),
                }
            })
            .and_then(|answer| answer)
    }
}

impl Backend for PgBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let key = key.to_vec();
        self.call(move |client| async move {
            let stmt = client.prepare_cached(GET).await.map_err(error::storage)?;
            let row = client
                .query_opt(&stmt, &[&key])
                .await
                .map_err(error::storage)?;
            row.map(|r| r.try_get::<_, Vec<u8>>(0).map_err(error::storage))
                .transpose()
        })
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Pair>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (start, included) = scan_start(prefix, after);
        let start = start.to_vec();
        let end = prefix_end(prefix);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |client| async move {
            let sql = match (included, end.is_some()) {
                (true, false) => SCAN_FROM,
                (false, false) => SCAN_AFTER,
                (true, true) => SCAN_FROM_BELOW,
                (false, true) => SCAN_AFTER_BELOW,
            };
            let stmt = client.prepare_cached(sql).await.map_err(error::storage)?;
            let rows = match &end {
                Some(end) => client.query(&stmt, &[&start, &limit, end]).await,
                None => client.query(&stmt, &[&start, &limit]).await,
            }
            .map_err(error::storage)?;
            rows.iter().map(pair).collect()
        })
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        let start = prefix.to_vec();
        let end = prefix_end(prefix);
        self.call(move |client| async move {
            let row = match &end {
                Some(end) => {
                    let stmt = client
                        .prepare_cached(LAST_BELOW)
                        .await
                        .map_err(error::storage)?;
                    client.query_opt(&stmt, &[&start, end]).await
                }
                None => {
                    let stmt = client.prepare_cached(LAST).await.map_err(error::storage)?;
                    client.query_opt(&stmt, &[&start]).await
                }
            }
            .map_err(error::storage)?;
            row.as_ref().map(pair).transpose()
        })
    }

    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        // the last write of a key wins, as in sled's batches; the rest can
        // then go to the database together, in any order
        let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = batch.into_iter().collect();
        self.call(move |mut client| async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match apply_once(&mut client, &writes).await {
                    Ok(()) => return Ok(()),
                    Err(e) if attempt < APPLY_ATTEMPTS && retryable(&e) => {
                        tracing::debug!(error = %e, attempt, "batch to retry");
                    }
                    Err(e) => return Err(error::storage(e)),
                }
            }
        })
    }

    /// Nothing to do: [`Backend::apply`] returned only once its transaction
    /// committed, and a committed transaction is durable (with
    /// `synchronous_commit` on, the database's default).
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn apply_checked(&self, batch: Vec<BatchOp>, check: &Check) -> Result<Checked, StorageError> {
        let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = batch.into_iter().collect();
        let check = check.clone();
        let notify = self.notify;
        self.call(move |mut client| async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match checked::apply(&mut client, &writes, &check, notify).await {
                    Ok(done) => return Ok(done),
                    Err(e) if attempt < APPLY_ATTEMPTS && retryable(&e) => {
                        tracing::debug!(error = %e, attempt, "checked batch to retry");
                    }
                    Err(e) => return Err(error::storage(e)),
                }
            }
        })
    }

    /// Every relay over the database writes it.
    fn shared(&self) -> bool {
        true
    }

    fn heartbeat(
        &self,
        relay: &str,
        address: &str,
        feed_seq: u64,
        recent: Duration,
    ) -> Result<Option<Heartbeat>, StorageError> {
        let (relay, address) = (relay.to_string(), address.to_string());
        self.call(move |client| async move {
            relays::beat(&client, &relay, &address, feed_seq, recent)
                .await
                .map(Some)
                .map_err(error::storage)
        })
    }

    /// A notification on the channel the relays listen on (no transaction:
    /// what it announces committed before).
    fn announce(&self) -> Result<(), StorageError> {
        if !self.notify {
            return Ok(());
        }
        self.call(move |client| async move {
            client
                .batch_execute(checked::ANNOUNCE)
                .await
                .map_err(error::storage)
        })
    }

    /// What wakes this relay when another relay over the database committed
    /// a write (`LISTEN/NOTIFY`; the listener starts on the first call).
    /// `None` where the database has no `NOTIFY` (CockroachDB, YugabyteDB):
    /// the relay then finds other relays' writes by polling the feed alone.
    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        if !self.notify {
            return None;
        }
        let wake = self.wake.get_or_init(|| {
            let wake = Arc::new(tokio::sync::Notify::new());
            self.bridge.spawn(listen::listen_forever(
                self.config.clone(),
                self.target.clone(),
                wake.clone(),
            ));
            wake
        });
        Some(wake.clone())
    }
}

/// One batch as one transaction: its statements pipelined on the
/// connection, then committed.
async fn apply_once(
    client: &mut ClientWrapper,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> Result<(), deadpool_postgres::tokio_postgres::Error> {
    let tx = client.transaction().await?;
    checked::write_all(&tx, writes).await?;
    tx.commit().await
}

fn retryable(e: &deadpool_postgres::tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

fn pair(row: &deadpool_postgres::tokio_postgres::Row) -> Result<Pair, StorageError> {
    Ok((
        row.try_get(0).map_err(error::storage)?,
        row.try_get(1).map_err(error::storage)?,
    ))
}

/// What the pool could not give, with the driver's reason.
fn pool_error(e: PoolError) -> String {
    match e {
        PoolError::Backend(e) => error::chain(&e),
        PoolError::Timeout(_) => "no database connection within the timeout".to_string(),
        other => other.to_string(),
    }
}

/// The server's `synchronous_commit`, when it has one to show.
async fn synchronous_commit(client: &ClientWrapper) -> Option<String> {
    let row = client
        .query_opt("SELECT current_setting('synchronous_commit')", &[])
        .await
        .ok()??;
    row.try_get(0).ok()
}

/// `user@host:port/database`, from the connection settings (no password).
fn describe(config: &Config) -> String {
    use deadpool_postgres::tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}
