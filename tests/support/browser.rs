//! What the dashboard's browser tests share: whether Chromium and Node.js are
//! there, where screenshots are kept (`target/test-artifacts`), and a small
//! JSON client of the node. Included by those tests only, beside `support`:
//! `#[path = "support/browser.rs"] mod browser;`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::{install_js_deps, node_js_installed};

/// `target/test-artifacts`, beside cargo's scratch directory for tests.
pub fn artifact_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("test-artifacts")
}

/// Whether the browser test can run; panics with what is missing unless
/// `PERMITSYNC_SKIP_BROWSER=1`, in which case it returns false. Installs
/// `tests/js/node_modules` when playwright-core is missing.
pub fn browser_ready(root: &Path) -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing = if !Path::new(&chromium).exists() {
        Some(format!(
            "Chromium is not installed at {chromium}: run scripts/install-browser.sh \
             (Debian packages chromium and chromium-driver)"
        ))
    } else if !node_js_installed() {
        Some("`node` (Node.js >= 20) is not installed: run scripts/ensure-node.sh".into())
    } else {
        None
    };
    if let Some(what) = missing {
        if std::env::var("PERMITSYNC_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("SKIPPED dashboard browser test (PERMITSYNC_SKIP_BROWSER=1): {what}");
            return false;
        }
        panic!("the dashboard browser test cannot run: {what}. Set PERMITSYNC_SKIP_BROWSER=1 to skip it.");
    }
    if !root
        .join("tests/js/node_modules/playwright-core/package.json")
        .is_file()
    {
        install_js_deps(
            &["--force"],
            "the browser test needs playwright-core in tests/js/node_modules",
        );
    }
    true
}

/// The artifact directory, made, without the screenshots `names` of an
/// earlier run (they must not pass for this run's).
pub fn fresh_artifacts(names: &[&str]) -> PathBuf {
    let artifacts = artifact_dir();
    fs::create_dir_all(&artifacts).expect("create target/test-artifacts");
    for shot in names {
        match fs::remove_file(artifacts.join(shot)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove an old {shot}: {e}"),
        }
    }
    artifacts
}

/// Each of `names` is a PNG image this run took.
pub fn assert_screenshots(names: &[&str]) {
    let artifacts = artifact_dir();
    for shot in names {
        let bytes = fs::read(artifacts.join(shot))
            .unwrap_or_else(|e| panic!("this run's {shot} in {}: {e}", artifacts.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{shot} is not a PNG image"
        );
    }
    eprintln!("screenshots: {}", artifacts.display());
}

/// A small blocking JSON client of a node.
pub struct Http {
    /// Its runtime.
    pub rt: tokio::runtime::Runtime,
    /// Its client.
    pub client: reqwest::Client,
    /// The node's `http://host:port`.
    pub base: String,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime"),
            client: reqwest::Client::new(),
            base: base.to_string(),
        }
    }

    /// `method path` with `token` (none when empty) and an optional JSON
    /// body: status and JSON.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.rt.block_on(async {
            let mut req = self
                .client
                .request(method, format!("{}{path}", self.base))
                .timeout(Duration::from_secs(10));
            if !token.is_empty() {
                req = req.bearer_auth(token);
            }
            if let Some(body) = body {
                req = req.json(&body);
            }
            let res = req.send().await.expect("the node answers");
            let status = res.status().as_u16();
            let text = res.text().await.expect("a body");
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    pub fn get(&self, path: &str, token: &str) -> Value {
        let (status, v) = self.call(reqwest::Method::GET, path, token, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    pub fn send(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> Value {
        let (status, v) = self.call(method.clone(), path, token, Some(body));
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }
}
