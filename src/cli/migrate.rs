//! `permitsync migrate`: copy a relay's store, key for key, between a sled
//! directory and a PostgreSQL database (both engines hold the same
//! keyspace: docs/storage.md, docs/cluster.md). Pages of keys at a time, so
//! memory stays bounded by a page whatever the store's size; each page is
//! one committed batch, and the copy is verified by reading both sides
//! again at the end.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use permitsync::store::{Backend, Pair, PgBackend, SledBackend};

use super::args::MigrateArgs;

/// Keys copied per batch.
const PAGE: usize = 256;

/// Run `migrate`.
pub fn migrate(args: MigrateArgs, json: bool) -> Result<()> {
    let db = PgBackend::connect(&args.database_url)?;
    let target = db.target().to_string();
    let (copied, from, to) = match (&args.from_data, &args.to_data) {
        (Some(dir), None) => {
            let sled = open_sled(dir, false)?;
            refuse_non_empty(&db, &target, args.into_non_empty)?;
            let n = copy(&sled, &db)?;
            verify(&sled, &db)?;
            (n, dir.display().to_string(), target)
        }
        (None, Some(dir)) => {
            let sled = open_sled(dir, true)?;
            refuse_non_empty(&sled, &dir.display().to_string(), args.into_non_empty)?;
            let n = copy(&db, &sled)?;
            sled.flush()?;
            verify(&db, &sled)?;
            (n, target, dir.display().to_string())
        }
        _ => bail!("give exactly one of --from-data and --to-data"),
    };
    let mut out = std::io::stdout().lock();
    if json {
        let line = serde_json::json!({"from": from, "to": to, "keys": copied});
        writeln!(out, "{line}")?;
    } else {
        writeln!(out, "copied {copied} keys from {from} to {to}")?;
    }
    Ok(())
}

fn open_sled(dir: &Path, create: bool) -> Result<SledBackend> {
    if !create && !dir.join("db").exists() && !dir.join("conf").exists() {
        bail!("no sled store in {}", dir.display());
    }
    std::fs::create_dir_all(dir)?;
    SledBackend::open(dir).with_context(|| {
        format!(
            "cannot open the sled store in {} (is a relay still running on it?)",
            dir.display()
        )
    })
}

fn refuse_non_empty(b: &dyn Backend, name: &str, allowed: bool) -> Result<()> {
    if !allowed && !b.scan_prefix(b"", None, 1)?.is_empty() {
        bail!(
            "{name} already holds a store; copy into it anyway with --into-non-empty \
             (its keys are overwritten by the source's)"
        );
    }
    Ok(())
}

/// Every key of `from` into `to`, a page at a time. Returns how many.
fn copy(from: &dyn Backend, to: &dyn Backend) -> Result<u64> {
    let mut after: Option<Vec<u8>> = None;
    let mut n = 0u64;
    loop {
        let page: Vec<Pair> = from.scan_prefix(b"", after.as_deref(), PAGE)?;
        let Some((last, _)) = page.last() else {
            return Ok(n);
        };
        after = Some(last.clone());
        n += page.len() as u64;
        to.apply(page.into_iter().map(|(k, v)| (k, Some(v))).collect())?;
        tracing::info!(keys = n, "copied");
    }
}

/// Every key of `from` is in `to` with the same value.
fn verify(from: &dyn Backend, to: &dyn Backend) -> Result<()> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = from.scan_prefix(b"", after.as_deref(), PAGE)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for (k, v) in page {
            if to.get(&k)?.as_deref() != Some(v.as_slice()) {
                bail!(
                    "the copy differs at key {:?}; nothing was deleted from the source",
                    String::from_utf8_lossy(&k)
                );
            }
        }
    }
}
