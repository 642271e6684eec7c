//! Shared by `tests/hostile*.rs`: a real `permitsync serve` process whose
//! pid is known (for `SIGHUP` and `/proc/PID`), optionally under a low
//! open-file limit (`prlimit`), a tokens file, and raw WebSocket clients.

#![allow(dead_code)] // each test binary uses part of it

use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use permitsync::wire::{self, Limits, Message, PeerId};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub use crate::support::eventually;
use crate::support::NodeProcess;

/// A WebSocket client stream.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running node, killed when dropped: a [`NodeProcess`] with what the
/// attacks measure (descriptors, memory).
pub struct Relay(NodeProcess);

impl Deref for Relay {
    type Target = NodeProcess;
    fn deref(&self) -> &NodeProcess {
        &self.0
    }
}

impl DerefMut for Relay {
    fn deref_mut(&mut self) -> &mut NodeProcess {
        &mut self.0
    }
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
        let mut options = NodeProcess::options(data)
            .args(args)
            .env("RUST_LOG", log_level);
        if let Some(n) = open_files {
            options = options.open_files(n);
        }
        Relay(options.start())
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

    /// `ws://127.0.0.1:PORT/v1/sync?token=TOKEN`
    pub fn sync_url(&self, token: &str) -> String {
        self.0.sync_url_with_token(token)
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

/// A 1x1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];
