//! Writing a batch on the database: plain ([`write_all`]) or checked
//! ([`apply`], `Backend::apply_checked`), the write of the feed that several
//! relays share.
//!
//! A checked write locks the one row of `permitsync_feed_head` first
//! (`SELECT ... FOR UPDATE`), so checked writes commit one at a time, in the
//! order of their feed positions: a reader that sees position n sees every
//! position below it that ever commits. Under the lock, the write is refused
//! when the feed has reached its position already (another relay took it)
//! or when a key does not hold what the write expected (another relay wrote
//! the document since this one read it); otherwise its statements, the
//! head's new position and the notification to the other relays commit
//! together. Under `READ COMMITTED` (PostgreSQL's default) every statement
//! after the lock sees the commits of the writers before it; under
//! `SERIALIZABLE` (CockroachDB's default) a conflicting writer is told to
//! retry, and is.

use std::collections::BTreeMap;

use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::tokio_postgres::Error;
use deadpool_postgres::{ClientWrapper, Transaction};
use futures_util::future::try_join_all;

use crate::store::backend::{Check, Checked};

const PUT: &str = "INSERT INTO kv (key, value) VALUES ($1, $2) \
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM kv WHERE key = $1";
const GET: &str = "SELECT value FROM kv WHERE key = $1";
const LOCK_HEAD: &str = "SELECT seq FROM permitsync_feed_head WHERE id = 1 FOR UPDATE";
const SET_HEAD: &str = "UPDATE permitsync_feed_head SET seq = $1 WHERE id = 1";
/// The channel the relays listen on (`listen.rs`); the payload is the feed
/// position, a hint only.
pub(super) const CHANNEL: &str = "permitsync_feed";
const NOTIFY: &str = "SELECT pg_notify('permitsync_feed', $1)";
/// Whether the database has `pg_notify` (PostgreSQL; not CockroachDB).
pub(super) const PROBE_NOTIFY: &str = "SELECT pg_notify('permitsync_probe', '')";

/// Every write of `writes` in `tx`, pipelined on the connection.
pub(super) async fn write_all(
    tx: &Transaction<'_>,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> Result<(), Error> {
    let put = tx.prepare_cached(PUT).await?;
    let delete = tx.prepare_cached(DELETE).await?;
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = writes
        .iter()
        .map(|(k, v)| match v {
            Some(v) => vec![k as &(dyn ToSql + Sync), v],
            None => vec![k as &(dyn ToSql + Sync)],
        })
        .collect();
    let statements = params.iter().map(|p| {
        let stmt = if p.len() == 2 { &put } else { &delete };
        tx.execute(stmt, p)
    });
    try_join_all(statements).await?;
    Ok(())
}

/// One checked batch as one transaction (see the module's documentation).
pub(super) async fn apply(
    client: &mut ClientWrapper,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    check: &Check,
    notify: bool,
) -> Result<Checked, Error> {
    let tx = client.transaction().await?;
    let head: i64 = tx.query_one(LOCK_HEAD, &[]).await?.try_get(0)?;
    let head = u64::try_from(head).unwrap_or(0);
    if let Some(seq) = check.feed_seq {
        if head >= seq {
            tx.rollback().await?;
            return Ok(Checked::FeedBehind { head });
        }
    }
    let get = tx.prepare_cached(GET).await?;
    for (key, expected) in &check.expect {
        let row = tx.query_opt(&get, &[key]).await?;
        let value: Option<Vec<u8>> = row.map(|r| r.try_get(0)).transpose()?;
        if value != *expected {
            tx.rollback().await?;
            return Ok(Checked::Changed);
        }
    }
    write_all(&tx, writes).await?;
    if let Some(seq) = check.feed_seq {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        tx.execute(SET_HEAD, &[&seq]).await?;
        if notify {
            tx.execute(NOTIFY, &[&seq.to_string()]).await?;
        }
    }
    tx.commit().await?;
    Ok(Checked::Applied)
}
