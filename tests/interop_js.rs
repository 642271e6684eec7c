//! Interop with an unmodified JavaScript `@automerge/automerge-repo` client:
//! a real relay process and a real device process (`permitsync serve`) on
//! loopback, and `node tests/js/interop.mjs` between them.
//!
//! The JS client creates a permit (its strings are Automerge Text objects),
//! the device pulls it from the relay and edits it over REST, the edit reaches
//! the JS client through the relay, and the JS client's illegal
//! `draft -> active` shows up in the relay's view as a rejected no-op.
//!
//! Skipped (with a message) only when `node` is not installed. The JS
//! dependencies are installed by `scripts/install-js-deps.sh` when
//! `tests/js/node_modules` is missing (it needs the npm registry once).

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_permitsync");
const TOKEN_JS: &str = "t-acme-js";
const TOKEN_DEVICE: &str = "t-acme-device";
const DEVICE_TITLE: &str = "Edited on the Rust device";

/// How long a node may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the whole JS script may run (each of its own waits is bounded too).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the device's view may take to catch up with the relay's.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn node_installed() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The last `max` bytes of a log file, for failure messages.
fn tail(path: &Path, max: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

/// A running `permitsync serve`; killed (and reaped) on drop.
struct Node {
    name: &'static str,
    child: Child,
    url: String,
    stderr_log: PathBuf,
}

impl Node {
    /// Start `permitsync --data DIR serve --listen 127.0.0.1:0 ARGS...` and
    /// wait for its `listening on http://...` line.
    fn start(name: &'static str, dir: &Path, args: &[&str]) -> Node {
        let data = dir.join(format!("{name}-data"));
        let stderr_log = dir.join(format!("{name}.stderr.log"));
        let stderr = File::create(&stderr_log).expect("create the node's stderr log");
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(&data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("PERMITSYNC_DATA")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn permitsync serve");

        // Read stdout on a thread (it keeps draining it after the first line,
        // so the node never blocks on a full pipe).
        let stdout = child.stdout.take().expect("the node's stdout is piped");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });

        let mut node = Node {
            name,
            child,
            url: String::new(),
            stderr_log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("listening on ") {
                        node.url = url.trim_end_matches('/').to_string();
                        break;
                    }
                }
                Err(e) => {
                    let status = node.child.try_wait().ok().flatten();
                    panic!(
                        "{name}: no `listening on` line within {START_TIMEOUT:?} ({e}); \
                         exit status {status:?}; stderr:\n{}",
                        node.logs()
                    );
                }
            }
        }
        assert!(
            node.url.starts_with("http://127.0.0.1:"),
            "{name}: unexpected listen URL {}",
            node.url
        );
        node
    }

    /// `ws://127.0.0.1:PORT/v1/sync?token=...`
    fn sync_url(&self, token: &str) -> String {
        format!(
            "{}/v1/sync?token={token}",
            self.url.replacen("http://", "ws://", 1)
        )
    }

    fn logs(&self) -> String {
        format!(
            "--- {} stderr ---\n{}",
            self.name,
            tail(&self.stderr_log, 8000)
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed (and reaped) on drop: the node script, should the
/// test panic while it runs.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let status = Command::new("bash")
        .arg(root.join("scripts/install-js-deps.sh"))
        .current_dir(root)
        .stdin(Stdio::null())
        .status()
        .expect("run scripts/install-js-deps.sh");
    assert!(
        status.success(),
        "scripts/install-js-deps.sh failed ({status}); the JS interop test needs \
         tests/js/node_modules (npm ci in tests/js)"
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

/// Run `node tests/js/interop.mjs ARGS...` to completion (bounded); its exit
/// status, stdout and stderr.
fn run_interop_script(root: &Path, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out_path = dir.join("interop.stdout.log");
    let err_path = dir.join("interop.stderr.log");
    let child = Command::new("node")
        .arg(root.join("tests/js/interop.mjs"))
        .args(args)
        .current_dir(root.join("tests/js"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            File::create(&out_path).expect("create interop stdout log"),
        ))
        .stderr(Stdio::from(
            File::create(&err_path).expect("create interop stderr log"),
        ))
        .spawn()
        .expect("spawn node tests/js/interop.mjs");
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let code = loop {
        if let Some(status) = child.0.try_wait().expect("poll the node script") {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.0.kill();
            let _ = child.0.wait();
            panic!(
                "node tests/js/interop.mjs did not finish within {SCRIPT_TIMEOUT:?}; stderr:\n{}",
                tail(&err_path, 8000)
            );
        }
        thread::sleep(Duration::from_millis(100));
    };
    (
        code,
        fs::read_to_string(&out_path).unwrap_or_default(),
        fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

fn has_rejected_activation(view: &Value) -> bool {
    view["rejected"].as_array().is_some_and(|rs| {
        rs.iter()
            .any(|r| r["field"] == "status" && r["reason"] == "invalid_transition")
    })
}

#[test]
fn js_automerge_repo_client_syncs_with_relay_and_device() {
    if !node_installed() {
        eprintln!(
            "SKIPPED interop_js: `node` is not installed; install Node.js >= 20 to run \
             the JavaScript automerge-repo interop test"
        );
        return;
    }
    let root = repo_root();
    ensure_js_deps(&root);

    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let tokens = write_tokens(dir);
    let tokens_arg = tokens.to_str().expect("a UTF-8 temp path");

    let relay = Node::start("relay", dir, &["--tokens", tokens_arg]);
    let device_connect = relay.sync_url(TOKEN_DEVICE);
    let device = Node::start("device", dir, &["--connect", &device_connect]);
    let logs = || format!("{}\n{}", relay.logs(), device.logs());

    let (code, stdout, stderr) = run_interop_script(
        &root,
        dir,
        &[&relay.url, &device.url, TOKEN_JS, TOKEN_DEVICE],
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
    let relay_url = format!("{}/v1/entities/{uuid}", relay.url);
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
    let device_url = format!("{}/v1/entities/{uuid}", device.url);
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
