//! An unmodified JavaScript automerge-repo client on one relay and a
//! permitsync device node dialing another, both relays real processes over
//! one real PostgreSQL database: `tests/js/interop.mjs` (the script of
//! `tests/interop_js.rs`) creates a permit through relay 0, waits for the
//! device to have it (through relay 1), edits it there and waits for the
//! edit to come back to the JS client, every hop across the two relays.

use std::time::Duration;

use serde_json::{json, Value};

mod support;

use support::pg::TestDatabase;
use support::{install_js_deps, node_js_installed, repo_root, run_js, NodeProcess};

const TOKEN_JS: &str = "t-acme-js";
const TOKEN_DEVICE: &str = "t-acme-device";

#[test]
fn a_js_client_and_a_device_on_different_relays_converge() {
    if !node_js_installed() {
        if std::env::var("PERMITSYNC_SKIP_JS_INTEROP").as_deref() == Ok("1") {
            eprintln!("SKIPPED (PERMITSYNC_SKIP_JS_INTEROP=1): node is not installed");
            return;
        }
        panic!("`node` (Node.js >= 20) is not installed: run scripts/ensure-node.sh");
    }
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let root = repo_root();
    if !root.join("tests/js/node_modules").is_dir() {
        install_js_deps(
            &[],
            "this test needs tests/js/node_modules (npm ci in tests/js)",
        );
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let tokens = dir.join("tokens.json");
    std::fs::write(
        &tokens,
        json!({"tokens": [
            {"token": TOKEN_JS, "tenant": "acme", "device": "js-tablet", "mode": "read-write"},
            {"token": TOKEN_DEVICE, "tenant": "acme", "device": "rust-device", "mode": "read-write"},
        ]})
        .to_string(),
    )
    .expect("tokens");
    let tokens = tokens.to_string_lossy().into_owned();
    let relays: Vec<NodeProcess> = (0..2)
        .map(|i| {
            NodeProcess::options(&dir.join(format!("relay{i}")))
                .args(&["--database-url", &db.url, "--tokens", &tokens])
                .log_level("info")
                .start()
        })
        .collect();
    let device = NodeProcess::options(&dir.join("device"))
        .args(&["--connect", &relays[1].sync_url_with_token(TOKEN_DEVICE)])
        .log_level("info")
        .start();
    let logs = || {
        format!(
            "{}\n{}\n{}",
            relays[0].log_tail(),
            relays[1].log_tail(),
            device.log_tail()
        )
    };
    let (code, stdout, stderr) = run_js(
        &root.join("tests/js/interop.mjs"),
        dir,
        &[&relays[0].base, &device.base, TOKEN_JS, TOKEN_DEVICE],
        Duration::from_secs(180),
    );
    assert_eq!(
        code,
        Some(0),
        "node tests/js/interop.mjs failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n{}",
        logs()
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("the script prints a JSON line");
    let result: Value = serde_json::from_str(line).expect("the script's last line is JSON");
    assert_eq!(result["ok"], true, "script result: {result}");
}
