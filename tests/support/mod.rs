//! Shared by integration tests: a real `permitsync serve` process.

#![allow(dead_code)] // each test binary uses part of it

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_permitsync");

/// How long a node may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `permitsync serve` on loopback, killed when dropped.
pub struct NodeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    data: PathBuf,
    log: PathBuf,
    args: Vec<String>,
}

impl NodeProcess {
    /// `permitsync serve --data DATA --listen 127.0.0.1:0 ARGS...`, once it
    /// prints its address. Its stderr goes to `DATA.log`.
    pub fn start(data: &Path, args: &[&str]) -> NodeProcess {
        let log = data.with_extension("log");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (child, base) = spawn(data, &log, &args);
        NodeProcess {
            child,
            base,
            data: data.to_path_buf(),
            log,
            args,
        }
    }

    /// Stop with SIGKILL (no shutdown work at all) and start again on the
    /// same store and arguments (a new port).
    pub fn restart(&mut self) {
        self.child.kill().expect("SIGKILL the node");
        self.child.wait().expect("reap the node");
        let (child, base) = spawn(&self.data, &self.log, &self.args);
        self.child = child;
        self.base = base;
    }

    /// `ws://127.0.0.1:PORT/v1/sync`
    pub fn sync_url(&self) -> String {
        format!("{}/v1/sync", self.base.replacen("http://", "ws://", 1))
    }

    /// The node's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data: &Path, log: &Path, args: &[String]) -> (Child, String) {
    let stderr = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the node's log");
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("PERMITSYNC_DATA")
        .env_remove("PERMITSYNC_TOKEN")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn permitsync serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    return (child, url.trim_end_matches('/').to_string());
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no `listening on` line within {START_TIMEOUT:?} ({e}):\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }
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
