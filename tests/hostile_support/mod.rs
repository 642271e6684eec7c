//! Shared by `tests/hostile*.rs`: a real `permitsync serve` process whose
//! pid is known (for `SIGHUP` and `/proc/PID`), optionally under a low
//! open-file limit (`prlimit`), a tokens file, and raw WebSocket clients.

#![allow(dead_code)] // each test binary uses part of it

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use permitsync::wire::{self, Limits, Message, PeerId};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_permitsync");

/// How long a node may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A WebSocket client stream.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running node, killed when dropped.
pub struct Relay {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    data: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    open_files: Option<u64>,
    log_level: String,
}

impl Relay {
    /// `permitsync --data DATA serve --listen 127.0.0.1:0 ARGS...`.
    pub fn start(data: &Path, args: &[&str]) -> Relay {
        Relay::start_with(data, args, None, "warn")
    }

    /// The same, under `prlimit --nofile=N:N` when `open_files` is set, with
    /// `RUST_LOG=log_level`.
    pub fn start_with(
        data: &Path,
        args: &[&str],
        open_files: Option<u64>,
        log_level: &str,
    ) -> Relay {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let log = data.with_extension("log");
        let (child, base) = spawn(data, &log, &args, open_files, log_level);
        Relay {
            child,
            base,
            data: data.to_path_buf(),
            log,
            args,
            open_files,
            log_level: log_level.to_string(),
        }
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then start again on the same store (a new port).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, base) = spawn(
            &self.data,
            &self.log,
            &self.args,
            self.open_files,
            &self.log_level,
        );
        self.child = child;
        self.base = base;
    }

    /// Send `SIGHUP` to the node.
    pub fn sighup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP failed");
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Open file descriptors of the node (`/proc/PID/fd`).
    pub fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident memory of the node in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// The node's stderr so far.
    pub fn logs(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `ws://127.0.0.1:PORT/v1/sync?token=TOKEN`
    pub fn sync_url(&self, token: &str) -> String {
        format!(
            "{}/v1/sync?token={token}",
            self.base.replacen("http://", "ws://", 1)
        )
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> &str {
        self.base.strip_prefix("http://").expect("an http:// base")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(
    data: &Path,
    log: &Path,
    args: &[String],
    open_files: Option<u64>,
    log_level: &str,
) -> (Child, String) {
    let stderr = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the node's log");
    let mut cmd = match open_files {
        // prlimit runs the node in its own process (exec), so the pid is the node's
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg("--").arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    let mut child = cmd
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("PERMITSYNC_DATA")
        .env_remove("PERMITSYNC_TOKEN")
        .env("RUST_LOG", log_level)
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
                    let base = url.trim_end_matches('/').to_string();
                    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
                    return (child, base);
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no `listening on` line ({e}):\n{}",
                    fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }
}

/// Write a tokens file: `(token, tenant, device, mode)`.
pub fn write_tokens(path: &Path, tokens: &[(&str, &str, &str, &str)]) {
    let entries: Vec<_> = tokens
        .iter()
        .map(|(t, tenant, d, m)| json!({"token": t, "tenant": tenant, "device": d, "mode": m}))
        .collect();
    fs::write(path, json!({ "tokens": entries }).to_string()).expect("write tokens");
}

/// Upgrade to a WebSocket (no `join`): the socket, or the HTTP status refused.
pub async fn upgrade(url: &str) -> Result<Ws, u16> {
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("upgrade to {url}: {e}"),
    }
}

/// Send `join` and wait for the answer (`peer`, or the node's `error`).
pub async fn join(ws: &mut Ws, name: &str) -> Message {
    let join = Message::Join {
        sender_id: PeerId::new(name),
        peer_metadata: None,
        supported_protocol_versions: vec![wire::PROTOCOL_V1.into()],
    };
    ws.send(WsMessage::Binary(wire::encode(&join).into()))
        .await
        .expect("send join");
    match next_message(ws, Duration::from_secs(20)).await {
        Some(m) => m,
        None => panic!("the node closed the connection instead of answering join"),
    }
}

/// The next sync message within `timeout`; `None` when the node closed the
/// connection (or it failed). Panics when nothing comes in time.
pub async fn next_message(ws: &mut Ws, timeout: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a frame or a close in time");
        match frame {
            Some(Ok(WsMessage::Binary(b))) => {
                return Some(wire::decode(&b, &Limits::default()).expect("decodable"));
            }
            Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue, // pings
        }
    }
}

/// Read until the node closes the connection; panics after `timeout`.
/// Returns the messages seen meanwhile.
pub async fn until_closed(ws: &mut Ws, timeout: Duration) -> Vec<Message> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_message(ws, left).await {
            Some(m) => seen.push(m),
            None => return seen,
        }
    }
}

/// Poll `check` every 100 ms until it returns `Some`, or panic with `what`.
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 1x1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];
