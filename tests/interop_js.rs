//! Interop with an unmodified JavaScript `@automerge/automerge-repo` client:
//! a real relay process and a real device process (`permitsync serve`) on
//! loopback, and `node tests/js/interop.mjs` between them.
//!
//! The JS client creates a permit (its strings are Automerge Text objects),
//! the device pulls it from the relay and edits it over REST, the edit reaches
//! the JS client through the relay, and the JS client's illegal
//! `draft -> active` shows up in the relay's view as a rejected no-op.
//!
//! Fails when `node` is not installed, unless `PERMITSYNC_SKIP_JS_INTEROP=1`
//! is set: then it is skipped with a message. The JS dependencies are
//! installed by `scripts/install-js-deps.sh` when `tests/js/node_modules` is
//! missing (it needs the npm registry once).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{install_js_deps, node_js_installed, repo_root, run_js, NodeProcess};

const TOKEN_JS: &str = "t-acme-js";
const TOKEN_DEVICE: &str = "t-acme-device";
const DEVICE_TITLE: &str = "Edited on the Rust device";

/// How long the whole JS script may run (each of its own waits is bounded too).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the device's view may take to catch up with the relay's.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

/// `permitsync serve --listen 127.0.0.1:0 ARGS...` on the store `DIR/NAME`.
fn start_node(name: &str, dir: &Path, args: &[&str]) -> NodeProcess {
    NodeProcess::options(&dir.join(name))
        .args(args)
        .log_level("info")
        .start()
}

/// A tiny blocking JSON HTTP client over reqwest.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Http {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        Http { rt, client }
    }

    /// GET with a bearer token: the status and the body as JSON (Null when
    /// it is not JSON).
    fn get(&self, url: &str, token: &str) -> Result<(u16, Value), String> {
        self.rt.block_on(async {
            let res = self
                .client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            let status = res.status().as_u16();
            let text = res.text().await.map_err(|e| format!("GET {url}: {e}"))?;
            Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
        })
    }
}

/// Install the JS dependencies when they are missing.
fn ensure_js_deps(root: &Path) {
    if root.join("tests/js/node_modules").is_dir() {
        return;
    }
    install_js_deps(
        &[],
        "the JS interop test needs tests/js/node_modules (npm ci in tests/js)",
    );
}

fn write_tokens(dir: &Path) -> PathBuf {
    let tokens = json!({"tokens": [
        {"token": TOKEN_JS, "tenant": "acme", "device": "js-tablet", "mode": "read-write"},
        {"token": TOKEN_DEVICE, "tenant": "acme", "device": "rust-device", "mode": "read-write"},
    ]});
    let path = dir.join("tokens.json");
    fs::write(
        &path,
        serde_json::to_vec_pretty(&tokens).expect("tokens JSON"),
    )
    .expect("write tokens.json");
    path
}

fn has_rejected_activation(view: &Value) -> bool {
    view["rejected"].as_array().is_some_and(|rs| {
        rs.iter()
            .any(|r| r["field"] == "status" && r["reason"] == "invalid_transition")
    })
}

/// Whether the test can run: panics when `node` is missing, unless
/// `PERMITSYNC_SKIP_JS_INTEROP=1`, in which case it returns false.
fn node_ready() -> bool {
    if node_js_installed() {
        return true;
    }
    let what = "`node` (Node.js >= 20) is not installed: run scripts/ensure-node.sh";
    if std::env::var("PERMITSYNC_SKIP_JS_INTEROP").as_deref() == Ok("1") {
        eprintln!("SKIPPED interop_js (PERMITSYNC_SKIP_JS_INTEROP=1): {what}");
        return false;
    }
    panic!(
        "the JavaScript interop test cannot run: {what}. Set PERMITSYNC_SKIP_JS_INTEROP=1 to \
         skip it."
    );
}

#[test]
fn js_automerge_repo_client_syncs_with_relay_and_device() {
    if !node_ready() {
        return;
    }
    let root = repo_root();
    ensure_js_deps(&root);

    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let tokens = write_tokens(dir);
    let tokens_arg = tokens.to_str().expect("a UTF-8 temp path");

    let relay = start_node("relay", dir, &["--tokens", tokens_arg]);
    let device_connect = relay.sync_url_with_token(TOKEN_DEVICE);
    let device = start_node("device", dir, &["--connect", &device_connect]);
    let logs = || format!("{}\n{}", relay.log_tail(), device.log_tail());

    let (code, stdout, stderr) = run_js(
        &root.join("tests/js/interop.mjs"),
        dir,
        &[&relay.base, &device.base, TOKEN_JS, TOKEN_DEVICE],
        SCRIPT_TIMEOUT,
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
    let uuid = result["uuid"]
        .as_str()
        .expect("the result has the permit's uuid")
        .to_string();
    assert!(
        result["documentId"].as_str().is_some_and(|d| !d.is_empty()),
        "script result: {result}"
    );

    // The relay's view, checked from Rust.
    let http = Http::new();
    let relay_url = format!("{}/v1/entities/{uuid}", relay.base);
    let (status, view) = http
        .get(&relay_url, TOKEN_JS)
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(status, 200, "GET {relay_url}: {view}\n{}", logs());
    assert_eq!(view["id"], uuid.as_str(), "view: {view}");
    assert_eq!(view["type"], "permit", "view: {view}");
    assert_eq!(view["fields"]["title"], DEVICE_TITLE, "view: {view}");
    assert_eq!(view["fields"]["status"], "draft", "view: {view}");
    assert_eq!(view["fields"]["location"], "Bay 4", "view: {view}");
    let ppe = view["fields"]["ppe_requirements"].to_string();
    assert!(
        ppe.contains("gloves") && ppe.contains("helmet"),
        "ppe_requirements should hold gloves (device) and helmet (JS): {view}"
    );
    assert!(
        has_rejected_activation(&view),
        "the JS client's draft -> active should be rejected (invalid_transition): {view}"
    );

    // Same changes, same view: the device converges on the relay's view.
    let device_url = format!("{}/v1/entities/{uuid}", device.base);
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let (_, relay_view) = http
            .get(&relay_url, TOKEN_JS)
            .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
        let seen = http.get(&device_url, TOKEN_DEVICE);
        if let Ok((200, device_view)) = &seen {
            if *device_view == relay_view {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the device's view did not converge on the relay's within {CONVERGE_TIMEOUT:?}\n\
             relay: {relay_view}\ndevice: {seen:?}\n{}",
            logs()
        );
        thread::sleep(Duration::from_millis(200));
    }
}
