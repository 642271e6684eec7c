//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! fuzz targets' entry points, without libFuzzer: every file must run without
//! a panic. The entry points live in `fuzz/src/lib.rs`, shared with the
//! `cargo fuzz` crate; see `fuzz/README.md` for how the corpus was made.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` rewrites the
//! `seed-*` files from the current library.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod entry;
mod support;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use permitsync::node::Access;
use permitsync::store::{MemBackend, Store, StoreOptions};
use permitsync::sync::{extension, Role, Session, SessionConfig};
use permitsync::wire::{self, DocumentId, Message, PROTOCOL_V1};
use permitsync::write::NewPermit;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs every corpus file of `target`; fails naming each file that panicked.
fn replay(target: &str) {
    let files = files(&corpus_dir(target));
    assert!(!files.is_empty(), "the {target} corpus is empty");
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("read a corpus file");
        if panic::catch_unwind(AssertUnwindSafe(|| entry::run(target, &data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} {target} corpus files panicked:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn wire_corpus() {
    replay("wire");
}

#[test]
fn bundle_corpus() {
    replay("bundle");
}

#[test]
fn doc_load_corpus() {
    replay("doc_load");
}

#[test]
fn doc_ops_corpus() {
    replay("doc_ops");
}

#[test]
fn session_corpus() {
    replay("session");
}

#[test]
fn every_target_has_a_corpus() {
    for target in entry::TARGETS {
        assert!(corpus_dir(target).is_dir(), "no corpus for {target}");
    }
}

/// The seeds, made from the current library, still run (a fixture that no
/// longer builds would otherwise only show up when fuzzing).
#[test]
fn seeds_run() {
    for (target, _, data) in entry::seeds() {
        entry::run(target, &data);
    }
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by hand"]
fn write_seeds() {
    for (target, name, data) in entry::seeds() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("create the corpus folder");
        std::fs::write(dir.join(name), data).expect("write a seed");
    }
}

fn reproducer(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/artifacts/session")
        .join(name);
    std::fs::read(path).expect("read the reproducer")
}

/// A server session (the peer may only read, as in the reproducers) over a
/// store that holds a permit, after the handshake; and that permit's id.
fn session_with_a_permit() -> (Session, DocumentId) {
    let store = Store::with_backend(Arc::new(MemBackend::new()), StoreOptions::default())
        .expect("an in-memory store");
    let id = store
        .create_permit(NewPermit {
            title: "Replace pump seal".into(),
            ..Default::default()
        })
        .expect("a permit");
    let mut access = Access::open("peer");
    access.read_only = true;
    let cfg = SessionConfig {
        feed_page: 2,
        ..support::session::config(Role::Server, "node", access)
    };
    let mut session = Session::new(cfg, store);
    session.start();
    session.on_frame(&wire::encode(&Message::Join {
        sender_id: "peer".into(),
        peer_metadata: Some(extension::metadata("peer")),
        supported_protocol_versions: vec![PROTOCOL_V1.into()],
    }));
    assert!(session.is_ready(), "the handshake completes");
    (session, DocumentId::from(id.uuid()))
}

/// The automerge sync message in `fuzz/artifacts/session/<message_file>`,
/// sent to a session for a document it holds, is refused: the session
/// answers with an `error`, closes the connection, and sends nothing else.
fn assert_refused(message_file: &str) {
    let (mut session, document_id) = session_with_a_permit();
    let frame = wire::encode(&Message::Sync {
        sender_id: "peer".into(),
        target_id: "node".into(),
        document_id,
        data: reproducer(message_file),
    });
    let out = panic::catch_unwind(AssertUnwindSafe(|| session.on_frame(&frame)))
        .unwrap_or_else(|_| panic!("the session panicked on {message_file}"));
    let reason = out.close.unwrap_or_else(|| {
        panic!(
            "{message_file} was not refused: the connection stays open; sent {:?}",
            out.send
        )
    });
    assert!(reason.contains("bloom filter"), "closed for: {reason}");
    assert!(
        matches!(out.send.as_slice(), [Message::Error { .. }]),
        "the peer is told why, and nothing else: {:?}",
        out.send
    );
}

/// Found by the `session` target: a 50-byte `sync` frame whose bloom filter
/// has entries but zero bits per entry made automerge 0.12 divide by zero
/// (`sync/bloom.rs:74`) in `generate_sync_message`. The session now refuses it.
#[test]
fn bloom_filter_without_bits_is_refused() {
    assert_refused("bloom-divide-by-zero.sync-message");
    // the fuzz target's inputs still run (minimized and as found)
    entry::session(&reproducer("crash-bloom-divide-by-zero-min"));
    entry::session(&reproducer(
        "crash-19a44f6c4723a2f8e3f6ee180302cfa35dfbdfb5",
    ));
}

/// Found by the `session` target: a `sync` frame whose bloom filter asks for
/// 2^32 - 1 probes made automerge 0.12 allocate 16 GiB in `get_probes`. The
/// session now refuses filters with more than 64 probes or bits per entry.
#[test]
fn bloom_filter_with_billions_of_probes() {
    assert_refused("bloom-huge-probes.sync-message");
    entry::session(&reproducer("crash-bloom-huge-probes"));
}
