//! The storage trait's contract, the same tests on every engine: sled, the
//! in-memory backend and PostgreSQL (a real server: `scripts/test.sh` starts
//! one; see `tests/support/pg.rs`). Scans and last keys are checked against
//! a model (a `BTreeMap`) over keys chosen at the edges of byte order (empty,
//! `0x00`, runs of `0xFF`). Then what only PostgreSQL has: a batch that fails
//! half-way leaves nothing, migrations and a schema that is too new, and a
//! database that cannot be reached.

use std::collections::BTreeMap;
use std::sync::Arc;

use permitsync::store::{Backend, BatchOp, Check, Checked, PgBackend, PgError, SCHEMA_VERSION};

mod support;

use support::engine::Kind;
use support::pg::{self, TestDatabase};

engine_tests!(sled, mem, postgres;
    get_put_and_delete,
    a_batch_applies_every_write_and_the_last_write_of_a_key_wins,
    prefix_scans_match_the_model_at_the_edges_of_byte_order,
    last_with_prefix_matches_the_model,
    everything_is_there_after_a_reopen,
    large_values_and_every_byte_round_trip,
    concurrent_batches_from_many_threads_all_land,
    a_checked_write_applies_only_when_the_keys_hold_what_it_expects,
);

fn put(k: &[u8], v: &[u8]) -> BatchOp {
    (k.to_vec(), Some(v.to_vec()))
}

fn del(k: &[u8]) -> BatchOp {
    (k.to_vec(), None)
}

fn get_put_and_delete(kind: Kind) {
    let engine = kind.engine();
    let b = engine.backend();
    assert_eq!(b.get(b"a").expect("get"), None);
    b.apply(vec![put(b"a", b"1")]).expect("put");
    assert_eq!(b.get(b"a").expect("get"), Some(b"1".to_vec()));
    b.apply(vec![put(b"a", b"2")]).expect("overwrite");
    assert_eq!(b.get(b"a").expect("get"), Some(b"2".to_vec()));
    b.apply(vec![del(b"a")]).expect("delete");
    assert_eq!(b.get(b"a").expect("get"), None);
    b.apply(vec![del(b"never there")])
        .expect("deleting a missing key");
    b.apply(Vec::new()).expect("an empty batch");
    b.flush().expect("flush");
    // an empty value is a value
    b.apply(vec![put(b"e", b"")]).expect("empty value");
    assert_eq!(b.get(b"e").expect("get"), Some(Vec::new()));
}

fn a_batch_applies_every_write_and_the_last_write_of_a_key_wins(kind: Kind) {
    let engine = kind.engine();
    let b = engine.backend();
    b.apply(vec![
        put(b"k1", b"old"),
        put(b"k2", b"old"),
        put(b"k3", b"old"),
    ])
    .expect("setup");
    b.apply(vec![
        put(b"k1", b"first"),
        put(b"k1", b"second"),
        del(b"k2"),
        put(b"k3", b"gone soon"),
        del(b"k3"),
        del(b"k4"),
        put(b"k4", b"back"),
        put(b"k5", b"new"),
    ])
    .expect("batch");
    let all = b.scan_prefix(b"k", None, 100).expect("scan");
    assert_eq!(
        all,
        vec![
            (b"k1".to_vec(), b"second".to_vec()),
            (b"k4".to_vec(), b"back".to_vec()),
            (b"k5".to_vec(), b"new".to_vec()),
        ]
    );
}

/// Keys at the edges of byte order: the empty key, `0x00`, `0xFF` runs and
/// keys that differ only in a trailing `0xFF`.
fn edge_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x00, 0xFF],
        vec![0x01],
        vec![0x01, 0x00],
        vec![0x01, 0xFE],
        vec![0x01, 0xFE, 0xFF],
        vec![0x01, 0xFF],
        vec![0x01, 0xFF, 0x00],
        vec![0x01, 0xFF, 0xFF],
        vec![0x01, 0xFF, 0xFF, 0xFF],
        vec![0x02],
        vec![0x7F, 0x80],
        vec![0xFE, 0xFF],
        vec![0xFF],
        vec![0xFF, 0x00],
        vec![0xFF, 0xFF],
        vec![0xFF, 0xFF, 0x01],
        vec![0xFF, 0xFF, 0xFF],
    ];
    keys.extend([b"doc/".to_vec(), b"doc/a".to_vec(), b"doc0".to_vec()]);
    keys
}

/// The model: the keys with their values, in byte order.
fn filled(b: &dyn Backend) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let model: BTreeMap<Vec<u8>, Vec<u8>> = edge_keys()
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, format!("v{i}").into_bytes()))
        .collect();
    b.apply(model.iter().map(|(k, v)| put(k, v)).collect())
        .expect("fill");
    model
}

fn prefixes() -> Vec<Vec<u8>> {
    let mut p = edge_keys();
    p.extend([
        vec![0x01, 0xFF, 0xFF, 0xFF, 0xFF],
        vec![0x03],
        b"doc".to_vec(),
    ]);
    p
}

fn prefix_scans_match_the_model_at_the_edges_of_byte_order(kind: Kind) {
    let engine = kind.engine();
    let b = engine.backend();
    let model = filled(b.as_ref());
    let mut afters: Vec<Option<Vec<u8>>> = vec![None];
    afters.extend(prefixes().into_iter().map(Some));
    for prefix in prefixes() {
        for after in &afters {
            for limit in [0, 1, 2, 100, usize::MAX] {
                let expected: Vec<(Vec<u8>, Vec<u8>)> = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
                    .take(limit)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let got = b
                    .scan_prefix(&prefix, after.as_deref(), limit)
                    .expect("scan");
                assert_eq!(
                    got, expected,
                    "{:?}: prefix {prefix:02X?}, after {after:02X?}, limit {limit}",
                    kind
                );
            }
        }
    }
}

fn last_with_prefix_matches_the_model(kind: Kind) {
    let engine = kind.engine();
    let b = engine.backend();
    assert_eq!(b.last_with_prefix(b"").expect("empty store"), None);
    let model = filled(b.as_ref());
    for prefix in prefixes() {
        let expected = model
            .iter()
            .rfind(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()));
        assert_eq!(
            b.last_with_prefix(&prefix).expect("last"),
            expected,
            "{kind:?}: prefix {prefix:02X?}"
        );
    }
}

fn everything_is_there_after_a_reopen(kind: Kind) {
    let engine = kind.engine();
    let model = {
        let b = engine.backend();
        let model = filled(b.as_ref());
        b.apply(vec![del(&[0x02]), put(&[0x02, 0x00], b"late")])
            .expect("more");
        b.flush().expect("flush");
        model
    };
    let mut model = model;
    model.remove(&vec![0x02]);
    model.insert(vec![0x02, 0x00], b"late".to_vec());
    let b = engine.backend();
    let all = b.scan_prefix(b"", None, usize::MAX).expect("scan");
    assert_eq!(all, model.into_iter().collect::<Vec<_>>());
}

fn large_values_and_every_byte_round_trip(kind: Kind) {
    let engine = kind.engine();
    let b = engine.backend();
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let large: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i * 7 % 256) as u8).collect();
    b.apply(vec![put(&every_byte, &every_byte), put(b"large", &large)])
        .expect("put");
    assert_eq!(b.get(&every_byte).expect("get"), Some(every_byte.clone()));
    assert_eq!(b.get(b"large").expect("get"), Some(large));
}

fn concurrent_batches_from_many_threads_all_land(kind: Kind) {
    const THREADS: usize = 8;
    const BATCHES: usize = 25;
    let engine = kind.engine();
    let b: Arc<dyn Backend> = engine.backend();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                for i in 0..BATCHES {
                    let key = format!("t{t}/{i:03}");
                    b.apply(vec![
                        put(key.as_bytes(), b"x"),
                        put(format!("last/{t}").as_bytes(), key.as_bytes()),
                    ])
                    .expect("apply");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a writer");
    }
    for t in 0..THREADS {
        let rows = b
            .scan_prefix(format!("t{t}/").as_bytes(), None, 1000)
            .expect("scan");
        assert_eq!(rows.len(), BATCHES);
        assert_eq!(
            b.get(format!("last/{t}").as_bytes()).expect("get"),
            Some(format!("t{t}/{:03}", BATCHES - 1).into_bytes())
        );
    }
}

// ---- PostgreSQL only --------------------------------------------------------

/// A batch is one transaction: when a write in its middle fails, none of it
/// is there, and the values it would have replaced are. The failure is
/// injected by a trigger on the test's own database (PL/pgSQL, test only).
#[test]
fn postgres_a_batch_that_fails_half_way_leaves_nothing() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let b = PgBackend::connect(&db.url).expect("connect");
    b.apply(vec![put(b"a", b"old"), put(b"c", b"old")])
        .expect("setup");
    pg::execute(
        &db.url,
        "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
           IF NEW.key = 'poison'::bytea THEN RAISE EXCEPTION 'poisoned key'; END IF; \
           RETURN NEW; END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON kv \
           FOR EACH ROW EXECUTE FUNCTION poison();",
    )
    .expect("trigger");
    let err = b
        .apply(vec![
            put(b"a", b"new"),
            put(b"b", b"new"),
            put(b"poison", b"x"),
            del(b"c"),
            put(b"d", b"new"),
        ])
        .expect_err("the poisoned batch fails");
    assert!(err.message().contains("poisoned key"), "{err}");
    assert_eq!(
        b.scan_prefix(b"", None, 100).expect("scan"),
        vec![
            (b"a".to_vec(), b"old".to_vec()),
            (b"c".to_vec(), b"old".to_vec())
        ],
        "nothing of the failed batch is there"
    );
    // and the engine goes on working
    b.apply(vec![put(b"b", b"fine")]).expect("a good batch");
    assert_eq!(b.get(b"b").expect("get"), Some(b"fine".to_vec()));
}

#[test]
fn postgres_migrations_are_recorded_once_and_opening_again_changes_nothing() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    // several relays starting together on an empty database
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || PgBackend::connect(&url).map(|_| ()))
        })
        .collect();
    for o in openers {
        o.join().expect("an opener").expect("connect");
    }
    drop(PgBackend::connect(&db.url).expect("again"));
    let versions = pg::query_texts(
        &db.url,
        "SELECT version::text FROM permitsync_migrations ORDER BY version",
    );
    let expected: Vec<String> = (1..=SCHEMA_VERSION).map(|v| v.to_string()).collect();
    assert_eq!(versions, expected);
}

/// A database migrated by a newer permitsync is refused with a clear error,
/// and left as it was.
#[test]
fn postgres_a_newer_schema_is_refused() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    drop(PgBackend::connect(&db.url).expect("connect"));
    let newer = SCHEMA_VERSION + 1;
    pg::execute(
        &db.url,
        &format!(
            "INSERT INTO permitsync_migrations (version, description) \
             VALUES ({newer}, 'from the future')"
        ),
    )
    .expect("a newer version");
    let err = PgBackend::connect(&db.url)
        .err()
        .expect("a newer schema is refused");
    assert!(
        matches!(err, PgError::SchemaTooNew { found, known, .. }
            if found == newer && known == SCHEMA_VERSION),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("has schema version {newer}, newer than the version this permitsync knows ({SCHEMA_VERSION})")),
        "{text}"
    );
    assert_eq!(
        pg::query_texts(
            &db.url,
            "SELECT max(version)::text FROM permitsync_migrations"
        ),
        vec![newer.to_string()]
    );
}

#[test]
fn postgres_an_unreachable_database_says_where_and_why() {
    // a port nobody listens on: bind one, note it, let it go
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let err = PgBackend::connect(&format!(
        "postgres://someone:secret@127.0.0.1:{port}/nowhere"
    ))
    .err()
    .expect("nobody listens there");
    assert!(matches!(err, PgError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot connect to the database someone@127.0.0.1:{port}/nowhere: "
        )),
        "{text}"
    );
    assert!(
        text.contains("Connection refused"),
        "the OS's reason: {text}"
    );
    assert!(!text.contains("secret"), "no password in errors: {text}");
    let err = PgBackend::connect("postgres://a@b:notaport/c")
        .err()
        .expect("a bad URL");
    assert!(err.to_string().starts_with("invalid database URL"), "{err}");
}

/// The trait is synchronous; the engine answers also when called from a
/// task on a runtime's worker (it never blocks on the caller's runtime).
#[tokio::test(flavor = "current_thread")]
async fn postgres_answers_from_inside_a_runtime() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let b = PgBackend::connect(&db.url).expect("connect");
    b.apply(vec![put(b"k", b"v")]).expect("put");
    assert_eq!(b.get(b"k").expect("get"), Some(b"v".to_vec()));
    drop(b);
}

#[test]
fn a_database_url_gets_another_database() {
    assert_eq!(
        pg::with_database("postgres://u@127.0.0.1:5/a", "b"),
        "postgres://u@127.0.0.1:5/b"
    );
    assert_eq!(
        pg::with_database("postgres://u@h:5/a?sslmode=disable", "b"),
        "postgres://u@h:5/b?sslmode=disable"
    );
    assert_eq!(
        pg::with_database("postgres://u@h:5", "b"),
        "postgres://u@h:5/b"
    );
}

/// Several relays over one database: plain batches of each land and each
/// sees the other's; a checked write at a feed position another engine took
/// already is refused with the head, one whose expected value changed is
/// refused, and nothing of either is stored.
#[test]
fn postgres_engines_share_a_database_and_checked_writes_take_positions_in_order() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let first = PgBackend::connect(&db.url).expect("first");
    let second = PgBackend::connect(&db.url).expect("second");
    assert!(first.shared() && second.shared());
    first
        .apply(vec![put(b"a", b"first")])
        .expect("first writes");
    second
        .apply(vec![put(b"b", b"second")])
        .expect("second writes");
    assert_eq!(second.get(b"a").expect("get"), Some(b"first".to_vec()));
    assert_eq!(first.get(b"b").expect("get"), Some(b"second".to_vec()));
    let at = |seq: u64, expect: Vec<(Vec<u8>, Option<Vec<u8>>)>| Check {
        feed_seq: Some(seq),
        expect,
    };
    assert_eq!(
        first
            .apply_checked(vec![put(b"x", b"1")], &at(1, vec![(b"x".to_vec(), None)]))
            .expect("checked"),
        Checked::Applied
    );
    assert_eq!(
        second
            .apply_checked(vec![put(b"y", b"1")], &at(1, vec![]))
            .expect("checked"),
        Checked::FeedBehind { head: 1 },
        "position 1 is taken"
    );
    assert_eq!(
        second
            .apply_checked(vec![put(b"y", b"2")], &at(2, vec![(b"x".to_vec(), None)]))
            .expect("checked"),
        Checked::Changed,
        "x is there now"
    );
    assert_eq!(second.get(b"y").expect("get"), None, "nothing of either");
    assert_eq!(
        second
            .apply_checked(
                vec![put(b"y", b"3")],
                &at(2, vec![(b"x".to_vec(), Some(b"1".to_vec()))])
            )
            .expect("checked"),
        Checked::Applied
    );
    assert_eq!(first.get(b"y").expect("get"), Some(b"3".to_vec()));
}

/// What every engine does with a checked write: applied only when each
/// expected key holds the value expected (absent included).
fn a_checked_write_applies_only_when_the_keys_hold_what_it_expects(kind: Kind) {
    let engine = kind.engine();
    let b = engine.backend();
    b.apply(vec![put(b"k", b"v")]).expect("setup");
    let expect = |e: Vec<(&[u8], Option<&[u8]>)>| Check {
        feed_seq: None,
        expect: e
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect(),
    };
    let wrong = expect(vec![(b"k", Some(b"other"))]);
    assert_eq!(
        b.apply_checked(vec![put(b"w", b"1")], &wrong)
            .expect("checked"),
        Checked::Changed
    );
    let absent = expect(vec![(b"k", None)]);
    assert_eq!(
        b.apply_checked(vec![put(b"w", b"2")], &absent)
            .expect("checked"),
        Checked::Changed
    );
    assert_eq!(b.get(b"w").expect("get"), None);
    let right = expect(vec![(b"k", Some(b"v")), (b"n", None)]);
    assert_eq!(
        b.apply_checked(vec![put(b"w", b"3"), del(b"k")], &right)
            .expect("checked"),
        Checked::Applied
    );
    assert_eq!(b.get(b"w").expect("get"), Some(b"3".to_vec()));
    assert_eq!(b.get(b"k").expect("get"), None);
}
