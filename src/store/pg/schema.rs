//! The database schema and its migrations: numbered, applied in order at
//! start, each recorded in `permitsync_migrations` in the transaction that
//! applies it. A database whose schema is newer than this binary knows is
//! refused. The SQL is limited to what PostgreSQL, CockroachDB and
//! YugabyteDB all accept (`docs/cluster.md`, "Schema").

use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::tokio_postgres::Error;
use deadpool_postgres::ClientWrapper;

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = 2;

/// One step of the schema.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order; version `n` is at index `n - 1`. A released
/// migration is never edited: a change to the schema is a new migration.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "kv: the store's ordered key-value space; permitsync_writer: the one relay \
                  that may write",
        sql: "CREATE TABLE IF NOT EXISTS kv (key BYTEA PRIMARY KEY, value BYTEA NOT NULL); \
          CREATE TABLE IF NOT EXISTS permitsync_writer (\
            id INT PRIMARY KEY, \
            token BYTEA NOT NULL, \
            since TIMESTAMPTZ NOT NULL DEFAULT now())",
    },
    Migration {
        version: 2,
        description: "permitsync_feed_head: the last feed position committed, whose row lock \
                      orders the feed writes of every relay; permitsync_relays: the relays \
                      seen (heartbeat)",
        sql: "CREATE TABLE IF NOT EXISTS permitsync_feed_head (\
                id INT PRIMARY KEY, \
                seq BIGINT NOT NULL); \
              INSERT INTO permitsync_feed_head (id, seq) VALUES (1, 0) \
                ON CONFLICT (id) DO NOTHING; \
              CREATE TABLE IF NOT EXISTS permitsync_relays (\
                relay TEXT PRIMARY KEY, \
                address TEXT NOT NULL, \
                started TIMESTAMPTZ NOT NULL DEFAULT now(), \
                seen TIMESTAMPTZ NOT NULL DEFAULT now(), \
                feed_seq BIGINT NOT NULL DEFAULT 0)",
    },
];

const CREATE_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS permitsync_migrations (\
     version BIGINT PRIMARY KEY, \
     description TEXT NOT NULL, \
     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

const CURRENT: &str = "SELECT COALESCE(MAX(version), 0) FROM permitsync_migrations";

const RECORD: &str = "INSERT INTO permitsync_migrations (version, description) VALUES ($1, $2)";

/// Relays that start together on a new database race to migrate it: the
/// loser's transaction fails (the version's row exists) and it looks again.
const ATTEMPTS: usize = 5;

/// What [`migrate`] found.
#[derive(Debug)]
pub(super) enum Migrated {
    /// The schema is at [`SCHEMA_VERSION`]; it was at `from` before.
    UpTo {
        /// The version found (0: an empty database).
        from: i64,
    },
    /// The schema is at `found`, newer than [`SCHEMA_VERSION`]; nothing was
    /// changed.
    TooNew {
        /// The database's version.
        found: i64,
    },
}

/// Bring the schema to [`SCHEMA_VERSION`].
pub(super) async fn migrate(client: &mut ClientWrapper) -> Result<Migrated, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match migrate_once(client).await {
            Err(e) if attempt < ATTEMPTS && lost_a_race(&e) => {
                tracing::debug!(error = %e, attempt, "schema migration raced another; again");
            }
            outcome => return outcome,
        }
    }
}

async fn migrate_once(client: &mut ClientWrapper) -> Result<Migrated, Error> {
    client.batch_execute(CREATE_MIGRATIONS).await?;
    let found: i64 = client.query_one(CURRENT, &[]).await?.try_get(0)?;
    if found > SCHEMA_VERSION {
        return Ok(Migrated::TooNew { found });
    }
    if found == SCHEMA_VERSION {
        return Ok(Migrated::UpTo { from: found });
    }
    let tx = client.transaction().await?;
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        tracing::info!(
            version = m.version,
            description = m.description,
            "migrating the database schema"
        );
        tx.batch_execute(m.sql).await?;
        tx.execute(RECORD, &[&m.version, &m.description]).await?;
    }
    tx.commit().await?;
    Ok(Migrated::UpTo { from: found })
}

/// Another migrator got there first (its row or table exists; a concurrent
/// `CREATE TABLE IF NOT EXISTS` can also fail on the table's row type,
/// `type ... already exists`), or the database asks for the transaction to
/// be retried.
fn lost_a_race(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::UNIQUE_VIOLATION)
            | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
            | Some(&SqlState::DUPLICATE_TABLE)
            | Some(&SqlState::DUPLICATE_OBJECT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps_up_to_the_known_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.description);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
