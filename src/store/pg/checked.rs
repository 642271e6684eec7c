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
/// The notification of a change outside the feed (identity records).
pub(super) const ANNOUNCE: &str = "SELECT pg_notify('permitsync_feed', 'identity')";
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
    let lock = tx.prepare_cached(LOCK_HEAD).await?;
    let get = tx.prepare_cached(GET).await?;
    // pipelined: the server runs them in order, so the reads see every
    // commit of the writers that held the lock before
    let keys: Vec<[&(dyn ToSql + Sync); 1]> = check
        .expect
        .iter()
        .map(|(k, _)| [k as &(dyn ToSql + Sync)])
        .collect();
    let (head, found) = futures_util::future::try_join(
        tx.query_one(&lock, &[]),
        try_join_all(keys.iter().map(|k| tx.query_opt(&get, k))),
    )
    .await?;
    let head = u64::try_from(head.try_get::<_, i64>(0)?).unwrap_or(0);
    if let Some(seq) = check.feed_seq {
        if head >= seq {
            tx.rollback().await?;
            return Ok(Checked::FeedBehind { head });
        }
    }
    for ((_, expected), row) in check.expect.iter().zip(found) {
        let value: Option<Vec<u8>> = row.map(|r| r.try_get(0)).transpose()?;
        if value != *expected {
            tx.rollback().await?;
            return Ok(Checked::Changed);
        }
    }
    match check.feed_seq {
        Some(seq) => {
            let seq = i64::try_from(seq).unwrap_or(i64::MAX);
            let text = seq.to_string();
            let set_head = tx.prepare_cached(SET_HEAD).await?;
            let notify_stmt = tx.prepare_cached(NOTIFY).await?;
            // polled in this order, so sent in this order: one round trip
            let notified = async {
                if notify {
                    tx.execute(&notify_stmt, &[&text]).await?;
                }
                Ok::<_, Error>(())
            };
            futures_util::future::try_join3(
                write_all(&tx, writes),
                tx.execute(&set_head, &[&seq]),
                notified,
            )
            .await?;
        }
        None => write_all(&tx, writes).await?,
    }
    tx.commit().await?;
    Ok(Checked::Applied)
}
