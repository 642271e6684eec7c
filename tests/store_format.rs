//! The store's format version: a store written before versions existed
//! (a fixture made by the previous release) opens and is upgraded in place;
//! a store of a newer format is refused, by the library and the CLI, and
//! left as it was.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use permitsync::store::{Backend, SledBackend, Store, StoreOptions, FORMAT_VERSION};
use permitsync::write::Edit;
use permitsync::{EntityId, Error};

/// The permit in the fixture, made with the release before format versions:
/// `permit create --title "Replace pump seal" --location "Pump house 2"
/// --work-type mechanical --ppe gloves --check "isolation confirmed"`, the item
/// ticked, the permit submitted.
const FIXTURE_PERMIT: &str = "158c50e8-3481-41b7-9fce-66275769b47e";

fn unpack_fixture(into: &Path) -> std::path::PathBuf {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/store-before-format-versions.tar.gz");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar runs");
    assert!(status.success(), "unpacking {}", archive.display());
    into.join("store")
}

fn format_record(dir: &Path) -> Option<Vec<u8>> {
    let backend = SledBackend::open(dir).expect("open sled");
    backend.get(b"meta/format").expect("read")
}

#[test]
fn a_store_from_before_format_versions_opens_and_is_upgraded_in_place() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = unpack_fixture(tmp.path());
    assert_eq!(format_record(&dir), None, "the fixture predates versions");

    let id: EntityId = FIXTURE_PERMIT.parse().expect("id");
    {
        let store = Store::open(&dir).expect("the old store opens");
        let view = store.view(id).expect("the permit is there");
        assert_eq!(view.str_field("status"), Some("submitted"));
        assert_eq!(view.str_field("title"), Some("Replace pump seal"));
        assert_eq!(
            view.fields["safety_checklist"]["isolation confirmed"],
            serde_json::json!(true)
        );
        assert_eq!(
            view.fields["ppe_requirements"],
            serde_json::json!(["gloves"])
        );
        // and takes writes
        store
            .edit(id, Edit::SetStatus("approved".into()))
            .expect("approve");
    }
    assert_eq!(
        format_record(&dir),
        Some(FORMAT_VERSION.to_be_bytes().to_vec()),
        "the version is recorded on open"
    );
    let store = Store::open(&dir).expect("reopens");
    assert_eq!(
        store.view(id).expect("view").str_field("status"),
        Some("approved")
    );
}

#[test]
fn a_store_of_a_newer_format_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let newer = (FORMAT_VERSION + 1).to_be_bytes().to_vec();
    {
        let backend = SledBackend::open(&dir).expect("open sled");
        backend
            .apply(vec![(b"meta/format".to_vec(), Some(newer.clone()))])
            .expect("write");
        backend.flush().expect("flush");
    }

    let backend = Arc::new(SledBackend::open(&dir).expect("open sled"));
    match Store::with_backend(backend.clone(), StoreOptions::default()) {
        Err(Error::NewerFormat { found, supported }) => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        Err(e) => panic!("refused for the wrong reason: {e}"),
        Ok(_) => panic!("a newer store must be refused"),
    }
    // nothing was written: no identity, the version untouched
    assert_eq!(backend.get(b"meta/actor").expect("read"), None);
    assert_eq!(backend.get(b"meta/format").expect("read"), Some(newer));
    drop(backend);

    // the CLI says so, and what to do
    let out = Command::new(env!("CARGO_BIN_EXE_permitsync"))
        .arg("--data")
        .arg(&dir)
        .arg("list")
        .output()
        .expect("run permitsync");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("written by a newer permitsync")
            && stderr.contains(&format!("store format {}", FORMAT_VERSION + 1)),
        "{stderr}"
    );
}
