//! The relays over one database: each writes a heartbeat row
//! (`permitsync_relays`) now and then and reads which others wrote one
//! recently; rows of relays gone for a day are deleted. `/v1/status` and
//! `/metrics` show what it found (`docs/cluster.md`).

use std::time::Duration;

use deadpool_postgres::tokio_postgres::Error;
use deadpool_postgres::ClientWrapper;

use crate::store::backend::{Heartbeat, RelaySeen};

const BEAT: &str = "INSERT INTO permitsync_relays (relay, address, feed_seq) VALUES ($1, $2, $3) \
                    ON CONFLICT (relay) DO UPDATE SET address = excluded.address, \
                    feed_seq = excluded.feed_seq, seen = now()";
const SEEN: &str = "SELECT relay, address, feed_seq, \
                    CAST(EXTRACT(EPOCH FROM (now() - seen)) * 1000 AS BIGINT) \
                    FROM permitsync_relays WHERE seen > now() - $1 * INTERVAL '1 millisecond' \
                    ORDER BY relay";
const HEAD: &str = "SELECT seq FROM permitsync_feed_head WHERE id = 1";
const FORGET: &str = "DELETE FROM permitsync_relays WHERE seen < now() - INTERVAL '1 day'";

/// One heartbeat (see [`crate::store::Backend::heartbeat`]).
pub(super) async fn beat(
    client: &ClientWrapper,
    relay: &str,
    address: &str,
    feed_seq: u64,
    recent: Duration,
) -> Result<Heartbeat, Error> {
    let seq = i64::try_from(feed_seq).unwrap_or(i64::MAX);
    client.execute(BEAT, &[&relay, &address, &seq]).await?;
    client.execute(FORGET, &[]).await?;
    let recent_ms = recent.as_millis() as f64;
    let rows = client.query(SEEN, &[&recent_ms]).await?;
    let mut relays = Vec::with_capacity(rows.len());
    for row in rows {
        relays.push(RelaySeen {
            relay: row.try_get(0)?,
            address: row.try_get(1)?,
            feed_seq: u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0),
            seen_ms_ago: u64::try_from(row.try_get::<_, i64>(3)?).unwrap_or(0),
        });
    }
    let head: i64 = client.query_one(HEAD, &[]).await?.try_get(0)?;
    Ok(Heartbeat {
        relays,
        feed_head: u64::try_from(head).unwrap_or(0),
    })
}
