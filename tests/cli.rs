//! The `permitsync` binary end to end: real processes on real sled stores in
//! temporary directories.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{run_cli, NodeProcess};

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// Run a command that must succeed; its stdout.
fn ok(data: &Path, args: &[&str]) -> String {
    let out = run_cli(data, args);
    assert!(
        out.status.success(),
        "permitsync {args:?} failed ({:?}): {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Run a command that must fail with exit code 1 and print nothing on stdout; its stderr.
fn fails(data: &Path, args: &[&str]) -> String {
    let out = run_cli(data, args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "permitsync {args:?} should exit 1; stdout: {} stderr: {stderr}",
        text(&out.stdout)
    );
    assert!(
        stderr.starts_with("error: "),
        "stderr should start with `error: `: {stderr}"
    );
    assert!(out.stdout.is_empty(), "no output on failure");
    stderr
}

fn json(data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let stdout = ok(data, &all);
    serde_json::from_str(stdout.trim_end()).expect("valid JSON on stdout")
}

fn show(data: &Path, id: &str) -> Value {
    json(data, &["show", id])
}

fn status(data: &Path, id: &str) -> String {
    show(data, id)["fields"]["status"]
        .as_str()
        .expect("status is a string")
        .to_string()
}

/// Create a permit; its id.
fn create_permit(data: &Path, args: &[&str]) -> String {
    let mut all = vec!["permit", "create"];
    all.extend_from_slice(args);
    let id = ok(data, &all).trim().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    id
}

/// Carry everything of store `from` to store `to` in a bundle file.
fn bundle(from: &Path, to: &Path, name: &str) {
    let file = from.join(name);
    let file = file.to_str().expect("utf-8 path");
    ok(from, &["export", file]);
    ok(to, &["import", file]);
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn list_ids(data: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["list"];
    all.extend_from_slice(args);
    json(data, &all)
        .as_array()
        .expect("list --json is an array")
        .iter()
        .map(|s| s["id"].as_str().expect("summary id").to_string())
        .collect()
}

#[test]
fn create_a_permit_and_read_it_back() {
    let dir = tempdir();
    let data = dir.path();
    let out = ok(
        data,
        &[
            "--device",
            "tablet-7",
            "permit",
            "create",
            "--title",
            "Replace pump seal",
            "--location",
            "Pump house 2",
            "--work-type",
            "mechanical",
            "--description",
            "Seal leaks at the shaft",
            "--ppe",
            "helmet",
            "--ppe",
            "gloves",
            "--check",
            "isolation confirmed",
        ],
    );
    let id = out.trim();
    let view = show(data, id);
    assert_eq!(view["id"], id);
    assert_eq!(view["type"], "permit");
    let f = &view["fields"];
    assert_eq!(f["title"], "Replace pump seal");
    assert_eq!(f["location"], "Pump house 2");
    assert_eq!(f["work_type"], "mechanical");
    assert_eq!(f["description"], "Seal leaks at the shaft");
    assert_eq!(f["status"], "draft");
    assert_eq!(f["created_by"], "tablet-7");
    assert_eq!(f["deleted"], false);
    assert_eq!(
        f["ppe_requirements"],
        serde_json::json!(["gloves", "helmet"])
    );
    assert_eq!(
        f["safety_checklist"],
        serde_json::json!({"isolation confirmed": false})
    );
    assert_eq!(view["heads"].as_array().map(Vec::len), Some(1));
    assert_eq!(view["conflicts"], serde_json::json!([]));
    assert_eq!(view["rejected"], serde_json::json!([]));

    // the human form shows the same fields
    let human = ok(data, &["show", id]);
    assert!(human.contains("Replace pump seal"), "{human}");
    assert!(human.contains("[ ] isolation confirmed"), "{human}");

    // edits: each given field, then the set-merge and text fields
    ok(
        data,
        &[
            "permit",
            "set",
            id,
            "--title",
            "Replace seal",
            "--location",
            "PH2",
        ],
    );
    ok(data, &["permit", "ppe", id, "remove", "gloves"]);
    ok(data, &["permit", "ppe", id, "add", "goggles"]);
    let f = show(data, id)["fields"].clone();
    assert_eq!(f["title"], "Replace seal");
    assert_eq!(f["location"], "PH2");
    assert_eq!(
        f["ppe_requirements"],
        serde_json::json!(["goggles", "helmet"])
    );
}

#[test]
fn legal_workflow_reaches_active() {
    let dir = tempdir();
    let data = dir.path();
    let id = create_permit(data, &["--title", "Hot work", "--check", "area cleared"]);
    let reading = "6f1c7a52-1b0e-4f43-9d0c-2a8e4d6b9c01";
    let iso = ok(
        data,
        &["isolation", "create", "--permit", &id, "--lock", "L-1"],
    );
    let iso = iso.trim();
    ok(data, &["isolation", "status", iso, "isolated"]);
    ok(data, &["isolation", "status", iso, "verified"]);
    ok(data, &["permit", "status", &id, "submitted"]);
    ok(data, &["permit", "status", &id, "approved"]);
    ok(data, &["permit", "tick", &id, "area cleared"]);
    let gas = [
        "permit",
        "gas",
        &id,
        "--gas",
        "H2S",
        "--value",
        "3.5",
        "--unit",
        "ppm",
        "--min",
        "0",
        "--max",
        "10",
        "--reading-id",
        reading,
        "--taken-at",
        "1714564800000",
    ];
    ok(data, &gas);
    // the same reading id again never makes a second reading: refused as a
    // change to an append-only entry (or, should the library make an identical
    // repeat idempotent, accepted as writing nothing)
    let heads = show(data, &id)["heads"].clone();
    let repeat = run_cli(data, &gas);
    if repeat.status.success() {
        assert!(text(&repeat.stdout).contains("unchanged"));
    } else {
        assert_eq!(repeat.status.code(), Some(1));
        assert!(text(&repeat.stderr).contains("is append-only"));
    }
    assert_eq!(show(data, &id)["heads"], heads);
    let out = ok(data, &["permit", "status", &id, "active"]);
    assert!(out.contains("updated permit"), "{out}");

    let view = show(data, &id);
    let f = &view["fields"];
    assert_eq!(f["status"], "active");
    assert_eq!(
        f["safety_checklist"],
        serde_json::json!({"area cleared": true})
    );
    let readings = f["gas_readings"].as_object().expect("gas_readings map");
    assert_eq!(readings.len(), 1);
    assert_eq!(readings[reading]["value"], 3.5);
    assert_eq!(readings[reading]["taken_at"], 1_714_564_800_000_i64);
    assert_eq!(view["violations"], serde_json::json!([]));
    assert_eq!(view["rejected"], serde_json::json!([]));
}

#[test]
fn illegal_transition_is_refused_and_changes_nothing() {
    let dir = tempdir();
    let data = dir.path();
    let id = create_permit(data, &["--title", "Scaffold"]);
    let before = show(data, &id);
    let err = fails(data, &["permit", "status", &id, "active"]);
    assert!(err.contains("invalid transition draft -> active"), "{err}");
    let after = show(data, &id);
    assert_eq!(after["fields"]["status"], "draft");
    assert_eq!(after["heads"], before["heads"], "nothing written");
}

#[test]
fn failing_gas_reading_blocks_activation() {
    let dir = tempdir();
    let data = dir.path();
    let id = create_permit(data, &["--title", "Tank entry", "--check", "ventilated"]);
    ok(data, &["permit", "tick", &id, "ventilated"]);
    ok(data, &["permit", "status", &id, "submitted"]);
    ok(data, &["permit", "status", &id, "approved"]);
    ok(
        data,
        &[
            "permit", "gas", &id, "--gas", "H2S", "--value", "12", "--unit", "ppm", "--min", "0",
            "--max", "10",
        ],
    );
    let err = fails(data, &["permit", "status", &id, "active"]);
    assert!(
        err.contains("guard failed: gas H2S latest reading 12.0 outside [0, 10]"),
        "{err}"
    );
    assert_eq!(status(data, &id), "approved");
}

#[test]
fn isolation_status_cannot_go_back() {
    let dir = tempdir();
    let data = dir.path();
    let permit = create_permit(data, &["--title", "Pump"]);
    let iso = ok(
        data,
        &[
            "isolation",
            "create",
            "--permit",
            &permit,
            "--description",
            "valve V-12",
        ],
    );
    let iso = iso.trim();
    assert_eq!(status(data, iso), "assigned");
    ok(data, &["isolation", "status", iso, "verified"]);
    let err = fails(data, &["isolation", "status", iso, "assigned"]);
    assert!(err.contains("verified -> assigned"), "{err}");
    assert_eq!(status(data, iso), "verified");
    ok(data, &["isolation", "lock", iso, "add", "L-7"]);
    ok(data, &["isolation", "describe", iso, "valve V-12 (north)"]);
    let f = show(data, iso)["fields"].clone();
    assert_eq!(f["lock_ids"], serde_json::json!(["L-7"]));
    assert_eq!(f["description"], "valve V-12 (north)");
    assert_eq!(f["permit_id"], permit.as_str());
}

#[test]
fn closeout_is_ticked_and_completed() {
    let dir = tempdir();
    let data = dir.path();
    let permit = create_permit(data, &["--title", "Pump"]);
    let c = ok(
        data,
        &[
            "closeout",
            "create",
            "--permit",
            &permit,
            "--check",
            "tools removed",
        ],
    );
    let c = c.trim();
    ok(data, &["closeout", "tick", c, "tools removed"]);
    ok(data, &["closeout", "notes", c, "all clear"]);
    ok(data, &["closeout", "complete", c]);
    let f = show(data, c)["fields"].clone();
    assert_eq!(f["checklist"], serde_json::json!({"tools removed": true}));
    assert_eq!(f["completed"], true);
    assert_eq!(f["notes"], "all clear");
    // a closeout is not a permit
    let err = fails(data, &["permit", "status", c, "submitted"]);
    assert!(err.contains("is of type closeout, not permit"), "{err}");
}

#[test]
fn list_filters_by_type_and_status() {
    let dir = tempdir();
    let data = dir.path();
    let a = create_permit(data, &["--title", "A"]);
    let b = create_permit(data, &["--title", "B"]);
    let gone = create_permit(data, &["--title", "Gone"]);
    ok(data, &["permit", "status", &b, "submitted"]);
    let iso = ok(data, &["isolation", "create", "--permit", &a]);
    let iso = iso.trim().to_string();
    ok(data, &["delete", &gone]);

    assert_eq!(
        list_ids(data, &["--type", "permit", "--status", "submitted"]),
        [b.as_str()]
    );
    assert_eq!(
        list_ids(data, &["--type", "permit", "--status", "draft"]),
        [a.as_str()]
    );
    assert_eq!(
        list_ids(data, &["--type", "isolation_point"]),
        [iso.as_str()]
    );
    assert_eq!(list_ids(data, &["--status", "assigned"]), [iso.as_str()]);
    let mut all = list_ids(data, &["--all"]);
    all.sort();
    let mut expected = vec![a.clone(), b.clone(), gone.clone(), iso.clone()];
    expected.sort();
    assert_eq!(all, expected, "--all includes deleted entities");
    assert_eq!(list_ids(data, &[]).len(), 3, "deleted entities are hidden");

    let table = ok(data, &["list", "--type", "permit"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&b) && table.contains("submitted"), "{table}");
    assert!(!table.contains(&iso), "{table}");

    // an unknown type is a usage error
    let out = run_cli(data, &["list", "--type", "ticket"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn export_and_import_converge() {
    let a = tempdir();
    let b = tempdir();
    let id = create_permit(a.path(), &["--title", "Carried", "--ppe", "helmet"]);
    ok(a.path(), &["permit", "status", &id, "submitted"]);
    let iso = ok(a.path(), &["isolation", "create", "--permit", &id]);
    let iso = iso.trim();
    let file = a.path().join("out.bundle");
    let file = file.to_str().expect("utf-8 path");

    let exported = json(a.path(), &["export", file]);
    assert_eq!(exported["documents"], 2);
    let imported = json(b.path(), &["import", file]);
    assert_eq!(imported["documents"], 2);
    assert_eq!(imported["created"], 2);

    for entity in [id.as_str(), iso] {
        let va = show(a.path(), entity);
        let vb = show(b.path(), entity);
        assert_eq!(va["fields"], vb["fields"]);
        assert_eq!(va["heads"], vb["heads"]);
    }

    // importing the same bundle again changes nothing
    let again = json(b.path(), &["import", file]);
    assert_eq!(again["created"], 0);
    assert_eq!(again["new_changes"], 0);

    // an export of one id carries only that document
    let one = a.path().join("one.bundle");
    let one = one.to_str().expect("utf-8 path");
    let out = ok(a.path(), &["export", one, "--id", iso]);
    assert!(out.contains("exported 1 document"), "{out}");
}

#[test]
fn truncated_bundle_is_refused_and_changes_nothing() {
    let a = tempdir();
    let b = tempdir();
    create_permit(a.path(), &["--title", "One"]);
    create_permit(a.path(), &["--title", "Two"]);
    let file = a.path().join("out.bundle");
    let file_str = file.to_str().expect("utf-8 path");
    ok(a.path(), &["export", file_str]);
    let bytes = std::fs::read(&file).expect("read bundle");
    std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("truncate bundle");

    create_permit(b.path(), &["--title", "Local"]);
    let before = json(b.path(), &["list", "--all"]);
    let err = fails(b.path(), &["import", file_str]);
    assert!(err.contains("invalid bundle"), "{err}");
    assert_eq!(json(b.path(), &["list", "--all"]), before);

    let err = fails(b.path(), &["import", "/nonexistent/permitsync.bundle"]);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn a_store_held_by_another_process_is_refused() {
    let dir = tempdir();
    let data = dir.path().join("store");
    let _held = permitsync::store::Store::open(&data).expect("open store in the test process");
    let err = fails(&data, &["list"]);
    let expected = permitsync::Error::Locked { path: data.clone() }.to_string();
    assert!(err.contains("in use by another process"), "{err}");
    assert_eq!(err.trim_end(), format!("error: {expected}"));
}

#[test]
fn unknown_and_malformed_ids() {
    let dir = tempdir();
    let data = dir.path();
    let missing = "00000000-0000-4000-8000-000000000001";
    let err = fails(data, &["show", missing]);
    assert!(err.contains(&format!("unknown entity {missing}")), "{err}");
    let err = fails(data, &["permit", "status", missing, "submitted"]);
    assert!(err.contains("unknown entity"), "{err}");
    let err = fails(data, &["isolation", "create", "--permit", missing]);
    assert!(err.contains("unknown entity"), "{err}");
    let err = fails(data, &["show", "xyz"]);
    assert!(err.starts_with("error: invalid id \"xyz\": "), "{err}");
    let err = fails(data, &["delete", "xyz"]);
    assert!(err.contains("invalid id \"xyz\""), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempdir();
    let data = dir.path();
    let id = create_permit(data, &["--title", "T"]);
    // `permit set` needs at least one field
    assert_eq!(
        run_cli(data, &["permit", "set", &id]).status.code(),
        Some(2)
    );
    assert_eq!(run_cli(data, &["permit", "create"]).status.code(), Some(2));
    assert_eq!(run_cli(data, &["nonsense"]).status.code(), Some(2));
    // an empty title is refused before anything is written
    let before = show(data, &id);
    let err = fails(
        data,
        &["permit", "set", &id, "--location", "X", "--title", " "],
    );
    assert!(err.contains("invalid input"), "{err}");
    assert_eq!(show(data, &id)["heads"], before["heads"]);
}

#[test]
fn concurrent_titles_show_as_a_conflict_until_rewritten() {
    let a = tempdir();
    let b = tempdir();
    let (a, b) = (a.path(), b.path());
    let id = create_permit(a, &["--title", "Original"]);
    bundle(a, b, "1.bundle");
    assert_eq!(
        ok(a, &["conflicts"]).trim(),
        "no conflicts or rejected operations"
    );
    ok(a, &["permit", "set", &id, "--title", "From A"]);
    ok(b, &["permit", "set", &id, "--title", "From B"]);
    bundle(a, b, "2.bundle");
    bundle(b, a, "3.bundle");

    let ca = json(a, &["conflicts"]);
    assert_eq!(ca, json(b, &["conflicts"]), "both replicas show the same");
    let list = ca.as_array().expect("conflicts --json is an array");
    assert_eq!(list.len(), 1);
    let conflict = &list[0]["conflicts"][0];
    assert_eq!(conflict["field"], "title");
    assert_eq!(conflict["merge_hint"], "last_write_wins");
    let mut values: Vec<&str> = conflict["values"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    values.sort_unstable();
    assert_eq!(values, ["From A", "From B"]);
    let human = ok(a, &["conflicts"]);
    assert!(
        human.contains("title:") && human.contains("winner"),
        "{human}"
    );

    // writing a new value settles it
    ok(a, &["permit", "set", &id, "--title", "Agreed"]);
    assert_eq!(json(a, &["conflicts"]), serde_json::json!([]));
    assert_eq!(show(a, &id)["fields"]["title"], "Agreed");
}

#[test]
fn serve_status_and_one_shot_sync() {
    let (node_dir, device_dir, logs) = (tempdir(), tempdir(), tempdir());
    let id = create_permit(node_dir.path(), &["--title", "Served permit"]);
    let node = NodeProcess::options(node_dir.path())
        .log(&logs.path().join("node.log"))
        .start();

    // the node holds the store: the CLI says so and changes nothing
    let err = fails(node_dir.path(), &["list"]);
    assert!(err.contains("in use by another process"), "{err}");
    assert!(err.contains("permitsync serve"), "{err}");

    let status = ok(device_dir.path(), &["status", "--url", &node.base]);
    assert!(status.contains("no peers connected"), "{status}");

    // a device syncs once and exits when both sides are in sync
    let url = node.sync_url();
    let out = ok(device_dir.path(), &["sync", &url]);
    assert!(out.starts_with("in sync with"), "{out}");
    assert_eq!(
        show(device_dir.path(), &id)["fields"]["title"],
        "Served permit"
    );

    // an edit on the device travels back on the next round
    ok(
        device_dir.path(),
        &["permit", "set", &id, "--title", "Edited on the device"],
    );
    ok(device_dir.path(), &["sync", &url]);
    let resp = ok(
        device_dir.path(),
        &["--json", "status", "--url", &node.base],
    );
    let status: Value = serde_json::from_str(resp.trim()).expect("status json");
    assert_eq!(status["documents"], 1);
    drop(node);
    assert_eq!(
        show(node_dir.path(), &id)["fields"]["title"],
        "Edited on the device"
    );
}

#[test]
fn a_mistyped_checklist_item_is_refused_unless_added_on_purpose() {
    let dir = tempdir();
    let data = dir.path();
    let id = create_permit(data, &["--title", "Pump", "--check", "area barricaded"]);
    let before = show(data, &id);
    let err = fails(data, &["permit", "tick", &id, "area barricade"]);
    assert!(
        err.contains("no checklist item \"area barricade\"")
            && err.contains("\"area barricaded\"")
            && err.contains("--add"),
        "{err}"
    );
    assert_eq!(show(data, &id), before, "a refused tick writes nothing");
    ok(data, &["permit", "tick", &id, "gas test done", "--add"]);
    ok(data, &["permit", "tick", &id, "area barricaded"]);
    assert_eq!(
        show(data, &id)["fields"]["safety_checklist"],
        serde_json::json!({"area barricaded": true, "gas test done": true})
    );
}

#[test]
fn a_mistyped_status_lists_the_valid_ones() {
    let dir = tempdir();
    let data = dir.path();
    let id = create_permit(data, &["--title", "Pump"]);
    let err = fails(data, &["permit", "status", &id, "activ"]);
    assert!(
        err.contains("unknown permit status \"activ\"")
            && err.contains("valid: draft, submitted, approved, active"),
        "{err}"
    );
    let iso = ok(
        data,
        &[
            "isolation",
            "create",
            "--permit",
            &id,
            "--description",
            "Valve",
        ],
    );
    let err = fails(data, &["isolation", "status", iso.trim(), "verifed"]);
    assert!(
        err.contains("valid: assigned, isolated, verified, deisolated"),
        "{err}"
    );
}

#[test]
fn list_names_isolation_points_by_description_and_permit() {
    let dir = tempdir();
    let data = dir.path();
    let id = create_permit(data, &["--title", "Replace pump seal"]);
    ok(
        data,
        &[
            "isolation",
            "create",
            "--permit",
            &id,
            "--description",
            "Suction valve V-12",
        ],
    );
    let human = ok(data, &["list", "--type", "isolation_point"]);
    assert!(
        human.contains("Suction valve V-12 (permit Replace pump seal)"),
        "{human}"
    );
    assert!(!human.contains(&format!("(permit {id})")), "{human}");
}

#[test]
fn resolve_settles_a_conflict_from_the_cli() {
    let a = tempdir();
    let b = tempdir();
    let (a, b) = (a.path(), b.path());
    let id = create_permit(a, &["--title", "Original"]);
    bundle(a, b, "1.bundle");
    ok(a, &["permit", "set", &id, "--title", "From A"]);
    ok(b, &["permit", "set", &id, "--title", "From B"]);
    bundle(b, a, "2.bundle");
    assert_eq!(show(a, &id)["conflicts"][0]["field"], "title");
    // bad input changes nothing
    let err = fails(a, &["resolve", &id, "title", "whatever"]);
    assert!(err.contains("keep_mine, use_server or merge"), "{err}");
    let err = fails(a, &["resolve", &id, "title", "merge"]);
    assert!(err.contains("needs a non-empty value"), "{err}");
    let err = fails(a, &["resolve", &id, "status", "use_server"]);
    assert!(err.contains("not a last-writer-wins field"), "{err}");
    assert_eq!(show(a, &id)["conflicts"][0]["field"], "title");
    let out = ok(
        a,
        &["resolve", &id, "title", "merge", "--value", "From A and B"],
    );
    assert!(out.contains("updated permit"), "{out}");
    let v = show(a, &id);
    assert_eq!(v["fields"]["title"], "From A and B");
    assert_eq!(v["conflicts"], serde_json::json!([]));
    // nothing left to resolve
    let err = fails(a, &["resolve", &id, "title", "use_server"]);
    assert!(err.contains("has no open conflict"), "{err}");
}
