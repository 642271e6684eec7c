//! The floor: what a perfect relay could do on this machine with the ingest
//! workload of `benches/compare_load.rs`, with no network, no protocol and no
//! policies. `cargo bench --bench floor`.
//!
//! The same `COMPARE_DEVICES` x `COMPARE_DOCS` permits with `COMPARE_CHANGES`
//! changes each (the same edits) are made untimed, one change at a time. The
//! timed part takes them in the order the load tool's devices send them
//! (round by round: every document's first change, then every second ...):
//! for each change, `Automerge::apply_changes` on that document's replica and
//! a sled `insert` of its bytes, with a `flush` (fsync) every `batch` changes:
//!
//! - `batch = 1`: a flush per change (no group commit; run on the first
//!   `FLOOR_STRICT` changes only, default 2,000, since it is slow);
//! - `batch = devices`: group commit across the devices that each have one
//!   change in flight (the target's floor);
//! - one flush at the end (CPU and write cost only);
//! - apply only, no sled.
//!
//! Single-threaded. Prints a Markdown table; appends a `{"system": "floor",
//! "ingest_rate": ...}` line (the group-commit figure) to `COMPARE_OUT` if set.

mod loadkit;

use std::time::Instant;

use automerge::{Automerge, Change};
use loadkit::{append_result, edit_permit, env_u64, new_permit};

/// Every change of every document, raw bytes, indexed `[doc][change]`.
fn make_changes(devices: usize, docs: usize, changes: u64) -> Vec<Vec<Vec<u8>>> {
    let mut all = Vec::with_capacity(devices * docs);
    for d in 0..devices {
        for _ in 0..docs {
            let mut doc = new_permit(d);
            for seq in 1..changes {
                edit_permit(&mut doc, seq % 3 != 0, seq);
            }
            let chain: Vec<Vec<u8>> = doc
                .get_changes(&[])
                .iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect();
            all.push(chain);
        }
    }
    all
}

/// Apply the changes round by round, up to `limit` of them; write each to
/// sled and flush every `batch` (`None`: no sled at all; `Some(0)`: one flush
/// at the end). Returns (changes, seconds, flushes).
fn run(all: &[Vec<Vec<u8>>], limit: usize, batch: Option<usize>) -> (usize, f64, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path().join("floor")).expect("sled");
    let tree = db.open_tree("changes").expect("tree");
    let mut replicas: Vec<Automerge> = all.iter().map(|_| Automerge::new()).collect();
    let rounds = all.iter().map(Vec::len).max().unwrap_or(0);
    let (mut done, mut flushes, mut since_flush) = (0usize, 0usize, 0usize);
    let t = Instant::now();
    'outer: for r in 0..rounds {
        for (i, chain) in all.iter().enumerate() {
            let Some(bytes) = chain.get(r) else { continue };
            if done == limit {
                break 'outer;
            }
            let change = Change::try_from(bytes.as_slice()).expect("a change");
            replicas[i].apply_changes([change]).expect("apply");
            if let Some(b) = batch {
                let mut key = (i as u64).to_be_bytes().to_vec();
                key.extend_from_slice(&(r as u32).to_be_bytes());
                tree.insert(key, bytes.as_slice()).expect("insert");
                since_flush += 1;
                if b > 0 && since_flush >= b {
                    db.flush().expect("flush");
                    flushes += 1;
                    since_flush = 0;
                }
            }
            done += 1;
        }
    }
    if batch.is_some() && since_flush > 0 {
        db.flush().expect("flush");
        flushes += 1;
    }
    (done, t.elapsed().as_secs_f64(), flushes)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("skipped: run it with `cargo bench --bench floor`");
        return;
    }
    let devices = env_u64("COMPARE_DEVICES", 50).max(1) as usize;
    let docs = env_u64("COMPARE_DOCS", 100).max(1) as usize;
    let changes = env_u64("COMPARE_CHANGES", 20).max(1);
    let strict = env_u64("FLOOR_STRICT", 2000) as usize;
    let t = Instant::now();
    let all = make_changes(devices, docs, changes);
    let total: usize = all.iter().map(Vec::len).sum();
    let bytes: usize = all.iter().flatten().map(Vec::len).sum();
    eprintln!(
        "floor: {total} changes ({bytes} B) of {} documents made in {:.1} s",
        all.len(),
        t.elapsed().as_secs_f64()
    );
    println!(
        "\n| floor: {devices} x {docs} docs x {changes} changes ({total} changes, {bytes} B) | changes | time | changes/s | flushes |"
    );
    println!("|---|---:|---:|---:|---:|");
    let mut group_rate = 0.0;
    for (label, limit, batch) in [
        ("apply only (no storage)", total, None),
        ("apply + sled insert, one flush at the end", total, Some(0)),
        (
            "apply + sled insert, flush per `devices` changes (group commit)",
            total,
            Some(devices),
        ),
        (
            "apply + sled insert, flush per change",
            strict.min(total),
            Some(1),
        ),
    ] {
        let (n, secs, flushes) = run(&all, limit, batch);
        let rate = n as f64 / secs;
        if batch == Some(devices) {
            group_rate = rate;
        }
        println!("| {label} | {n} | {secs:.3} s | {rate:.0} | {flushes} |");
    }
    append_result(&serde_json::json!({"system": "floor", "ingest_rate": group_rate}).to_string());
}
