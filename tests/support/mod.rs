//! Shared by integration tests: a real `permitsync serve` process, the CLI
//! run once, a Node.js script run to completion, and polling (here); sync
//! sessions with the tests' defaults and a pump between them ([`session`]);
//! random operations on entities ([`ops`], drawing from [`rng`]); a
//! storage backend that fails on demand ([`faulty_backend`]); the storage
//! engines a test can run on ([`engine`], with [`engine_tests!`]) and the
//! PostgreSQL of the tests ([`pg`]).

#![allow(dead_code)] // each test binary uses part of it

pub mod actions;
pub mod device;
pub mod engine;
pub mod faulty_backend;
pub mod identity;
pub mod ops;
pub mod pg;
pub mod rng;
pub mod session;

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_permitsync");

/// How long a node may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of a log a failure message shows.
const LOG_TAIL: usize = 8000;

/// How to start a `permitsync serve`: [`NodeProcess::options`], then
/// [`NodeOptions::start`] (as often as wanted: the same store each time).
#[derive(Clone, Debug)]
pub struct NodeOptions {
    name: String,
    data: PathBuf,
    log: PathBuf,
    listen: String,
    args: Vec<String>,
    log_level: String,
    env: Vec<(String, String)>,
    open_files: Option<u64>,
}

impl NodeOptions {
    /// The node's name in failure messages (default: the store's file name).
    pub fn name(mut self, name: &str) -> NodeOptions {
        self.name = name.to_string();
        self
    }

    /// Append the node's stderr to `log` (default `DATA.log`); a log shared
    /// across restarts holds every run.
    pub fn log(mut self, log: &Path) -> NodeOptions {
        self.log = log.to_path_buf();
        self
    }

    /// Listen on `addr` (default `127.0.0.1:0`, a new port on each start).
    pub fn listen(mut self, addr: &str) -> NodeOptions {
        self.listen = addr.to_string();
        self
    }

    /// More arguments after `serve --listen ADDR`.
    pub fn args(mut self, args: &[&str]) -> NodeOptions {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// The node's `RUST_LOG` when the test's own is unset (default `warn`).
    pub fn log_level(mut self, level: &str) -> NodeOptions {
        self.log_level = level.to_string();
        self
    }

    /// Set an environment variable of the node, after everything else (so
    /// `RUST_LOG` here wins over the test's own).
    pub fn env(mut self, key: &str, value: &str) -> NodeOptions {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Run the node under `prlimit --nofile=N:N` (an open-file limit of `n`).
    pub fn open_files(mut self, n: u64) -> NodeOptions {
        self.open_files = Some(n);
        self
    }

    /// Start the node and wait for its `listening on` line.
    pub fn start(&self) -> NodeProcess {
        let (child, base) = self.spawn();
        NodeProcess {
            child,
            base,
            options: self.clone(),
        }
    }

    /// [`NodeOptions::start`] that returns, instead of panicking, when the
    /// node ends or times out before its `listening on` line: for a caller
    /// that can retry (a fixed port another process holds for a moment).
    pub fn try_start(&self) -> Result<NodeProcess, StartError> {
        let (child, base) = self.try_spawn()?;
        Ok(NodeProcess {
            child,
            base,
            options: self.clone(),
        })
    }

    fn spawn(&self) -> (Child, String) {
        self.try_spawn().unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_spawn(&self) -> Result<(Child, String), StartError> {
        let logged_before = fs::metadata(&self.log).map_or(0, |m| m.len());
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the node's log");
        let mut command = match self.open_files {
            // prlimit execs the node, so the child's pid is the node's
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .arg("--data")
            .arg(&self.data)
            .args(["serve", "--listen", &self.listen])
            .args(&self.args)
            .env_remove("PERMITSYNC_DATA")
            .env_remove("PERMITSYNC_TOKEN")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| self.log_level.clone()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn permitsync serve");
        // keep draining stdout so that the node never blocks on a full pipe
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("listening on ") {
                        break url.trim_end_matches('/').to_string();
                    }
                }
                Err(e) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read(&self.log).unwrap_or_default();
                    let this_run = log.get(logged_before as usize..).unwrap_or_default();
                    return Err(StartError {
                        message: format!(
                            "{}: no `listening on` line within {START_TIMEOUT:?} ({e}); \
                             exit status {status:?}\n{}",
                            self.name,
                            self.log_tail()
                        ),
                        log: String::from_utf8_lossy(this_run).into_owned(),
                    });
                }
            }
        };
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "{}: unexpected listen URL {base}",
            self.name
        );
        Ok((child, base))
    }

    fn log_tail(&self) -> String {
        format!(
            "--- {} stderr ---\n{}",
            self.name,
            tail(&self.log, LOG_TAIL)
        )
    }
}

/// Why [`NodeOptions::try_start`] got no node.
#[derive(Debug)]
pub struct StartError {
    /// What [`NodeOptions::start`] would have panicked with.
    pub message: String,
    /// What the node wrote to its log during this attempt.
    pub log: String,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A running `permitsync serve` on loopback, killed when dropped.
pub struct NodeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    options: NodeOptions,
}

impl NodeProcess {
    /// `permitsync serve --data DATA --listen 127.0.0.1:0 ARGS...`, once it
    /// prints its address. Its stderr goes to `DATA.log`.
    pub fn start(data: &Path, args: &[&str]) -> NodeProcess {
        NodeProcess::options(data).args(args).start()
    }

    /// The defaults for a node on the store in `data`, to change before
    /// [`NodeOptions::start`].
    pub fn options(data: &Path) -> NodeOptions {
        NodeOptions {
            name: data
                .file_name()
                .map_or_else(|| "node".into(), |n| n.to_string_lossy().into_owned()),
            data: data.to_path_buf(),
            log: data.with_extension("log"),
            listen: "127.0.0.1:0".into(),
            args: Vec::new(),
            log_level: "warn".into(),
            env: Vec::new(),
            open_files: None,
        }
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send `SIGHUP` to the node.
    pub fn sighup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP failed");
    }

    /// Stop with SIGKILL (no shutdown work at all) and reap.
    pub fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL the node");
        self.child.wait().expect("reap the node");
    }

    /// [`NodeProcess::sigkill`] and start again with the same options (on
    /// the default `127.0.0.1:0`, a new port).
    pub fn restart(&mut self) {
        self.sigkill();
        let (child, base) = self.options.spawn();
        self.child = child;
        self.base = base;
    }

    /// `127.0.0.1:PORT`, to start another node on the same address.
    pub fn addr(&self) -> &str {
        self.base.strip_prefix("http://").expect("an http:// base")
    }

    /// `ws://127.0.0.1:PORT/v1/sync`
    pub fn sync_url(&self) -> String {
        format!("{}/v1/sync", self.base.replacen("http://", "ws://", 1))
    }

    /// `ws://127.0.0.1:PORT/v1/sync?token=TOKEN`
    pub fn sync_url_with_token(&self, token: &str) -> String {
        format!("{}?token={token}", self.sync_url())
    }

    /// The node's log so far (every run, with a shared log).
    pub fn logs(&self) -> String {
        fs::read_to_string(&self.options.log).unwrap_or_default()
    }

    /// The end of the node's log under a header, for failure messages.
    pub fn log_tail(&self) -> String {
        self.options.log_tail()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `permitsync --data DATA ARGS...` run to completion, without the caller's
/// `PERMITSYNC_DATA` and `RUST_LOG`.
pub fn run_cli(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("PERMITSYNC_DATA")
        .env_remove("RUST_LOG")
        .output()
        .expect("run permitsync")
}

/// [`run_cli`] that must succeed: its stdout.
pub fn cli(data: &Path, args: &[&str]) -> String {
    let out = run_cli(data, args);
    assert!(
        out.status.success(),
        "permitsync {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The crate's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `node` (Node.js) runs.
pub fn node_js_installed() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run `scripts/install-js-deps.sh ARGS...` (it fills `tests/js/node_modules`);
/// `needs` says what for, should it fail.
pub fn install_js_deps(args: &[&str], needs: &str) {
    let root = repo_root();
    let status = Command::new("bash")
        .arg(root.join("scripts/install-js-deps.sh"))
        .args(args)
        .current_dir(&root)
        .stdin(Stdio::null())
        .status()
        .expect("run scripts/install-js-deps.sh");
    assert!(
        status.success(),
        "scripts/install-js-deps.sh failed ({status}); {needs}"
    );
}

/// The last `max` bytes of a log file, for failure messages.
pub fn tail(path: &Path, max: usize) -> String {
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

/// A child process killed (and reaped) on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run `node SCRIPT ARGS...` in the script's folder, killed after `timeout`
/// (each of its own waits should be bounded too): exit code, stdout and
/// stderr. Both go to `DIR/STEM.stdout.log` and `DIR/STEM.stderr.log`.
pub fn run_js(
    script: &Path,
    dir: &Path,
    args: &[&str],
    timeout: Duration,
) -> (Option<i32>, String, String) {
    let stem = script
        .file_stem()
        .expect("a script file")
        .to_string_lossy()
        .into_owned();
    let out = dir.join(format!("{stem}.stdout.log"));
    let err = dir.join(format!("{stem}.stderr.log"));
    let child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(script.parent().expect("the script's folder"))
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("create the script's stdout log"))
        .stderr(File::create(&err).expect("create the script's stderr log"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn node {}: {e}", script.display()));
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(status) = child.0.try_wait().expect("poll the script") {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "node {} did not finish within {timeout:?}; stderr:\n{}",
            script.display(),
            tail(&err, LOG_TAIL)
        );
        thread::sleep(Duration::from_millis(100));
    };
    (
        code,
        fs::read_to_string(&out).unwrap_or_default(),
        fs::read_to_string(&err).unwrap_or_default(),
    )
}

/// Poll `check` every 50 ms until it returns `Some`, or panic with `what`
/// after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
