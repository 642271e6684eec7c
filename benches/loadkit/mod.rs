//! Shared pieces of the load benches (`benches/load.rs`,
//! `benches/compare_load.rs`, `benches/floor.rs`, `benches/classic_targets.rs`):
//! a raw automerge-repo WebSocket client over `permitsync::wire`, the permit
//! document the simulated devices write, stamped titles for edit-to-visibility
//! latency, reading a server's memory from `/proc`, starting a relay, and
//! `RESULT` lines that set a figure against its target.
//!
//! Each bench uses only some of these, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ReadDoc, ScalarValue, ROOT};
use futures_util::{SinkExt, StreamExt};
use permitsync::wire::{self, DocumentId, Limits, Message, PeerId, PeerMetadata};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A title that carries the time it was written and a sequence number.
pub fn stamp(seq: u64) -> String {
    format!("t={};n={seq}", now_ms())
}

/// `(unix_ms, seq)` of a stamped title.
pub fn parse_stamp(title: &str) -> Option<(u64, u64)> {
    let (t, n) = title.strip_prefix("t=")?.split_once(";n=")?;
    Some((t.parse().ok()?, n.parse().ok()?))
}

pub fn title_of(doc: &Automerge) -> String {
    match doc.get(ROOT, "title") {
        Ok(Some((v, _))) => v.as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// A new permit document with the permit schema (strings as plain scalars).
pub fn new_permit(device: usize) -> Automerge {
    let mut doc = Automerge::new().with_actor(ActorId::random());
    let mut tx = doc.transaction();
    let r = (|| -> Result<(), automerge::AutomergeError> {
        tx.put(ROOT, "type", "permit")?;
        tx.put(ROOT, "created_at", ScalarValue::Timestamp(now_ms() as i64))?;
        tx.put(ROOT, "created_by", format!("load-device-{device}"))?;
        tx.put(ROOT, "deleted", false)?;
        tx.put(ROOT, "title", stamp(0))?;
        tx.put(ROOT, "location", format!("Bay {}", device % 50))?;
        tx.put(ROOT, "work_type", "hot_work")?;
        tx.put(ROOT, "description", "load test permit")?;
        let ppe = tx.put_object(ROOT, "ppe_requirements", ObjType::Map)?;
        tx.put(&ppe, "helmet", true)?;
        let checklist = tx.put_object(ROOT, "safety_checklist", ObjType::Map)?;
        tx.put(&checklist, "isolation", false)?;
        tx.put(ROOT, "status", "draft")?;
        tx.put_object(ROOT, "gas_readings", ObjType::Map)?;
        tx.put_object(ROOT, "photos", ObjType::Map)?;
        Ok(())
    })();
    r.expect("permit fields");
    tx.commit();
    doc
}

/// One edit of a permit: a stamped title (`title = true`) or a new, unticked
/// checklist item.
pub fn edit_permit(doc: &mut Automerge, title: bool, seq: u64) {
    let mut tx = doc.transaction();
    if title {
        tx.put(ROOT, "title", stamp(seq)).expect("title edit");
    } else {
        let list = match tx.get(ROOT, "safety_checklist") {
            Ok(Some((_, obj))) => obj,
            _ => panic!("the permit has a safety checklist"),
        };
        tx.put(&list, format!("check {seq}"), false)
            .expect("checklist edit");
    }
    tx.commit();
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User plus system CPU seconds process `pid` used so far (from
/// `/proc/<pid>/stat`, in clock ticks of 1/100 s, Linux's `USER_HZ`).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command may hold spaces: fields count from after its closing ')'
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The `join` of an ephemeral peer with no extension.
pub fn join(me: PeerId) -> Message {
    Message::Join {
        sender_id: me,
        peer_metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: true,
            extra: Default::default(),
        }),
        supported_protocol_versions: vec![wire::PROTOCOL_V1.into()],
    }
}

/// A `request` (`request = true`) or `sync` message carrying `data`.
pub fn sync_message(
    request: bool,
    sender_id: PeerId,
    target_id: PeerId,
    document_id: DocumentId,
    data: Vec<u8>,
) -> Message {
    if request {
        Message::Request {
            sender_id,
            target_id,
            document_id,
            data,
        }
    } else {
        Message::Sync {
            sender_id,
            target_id,
            document_id,
            data,
        }
    }
}

/// How a figure must compare with its target.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// Below the target.
    Below,
    /// At most the target.
    AtMost,
    /// At least the target.
    AtLeast,
}

/// One figure against its target, as a line for scripts (and people):
///
/// ```text
/// RESULT name=classic.sync_100_ops value=81.5 unit=ms target=<20 met=no runs=20
/// ```
///
/// Every field is `key=value` without spaces; `target` is `<`, `<=` or `>=`
/// followed by the number; `met` is `yes`, `no`, or `unknown` when the figure
/// is missing (`value=nan`: a system failed, or was not run). More fields
/// after `met` describe the workload. `grep '^RESULT'` collects them.
pub fn result_line(
    name: &str,
    value: Option<f64>,
    unit: &str,
    goal: Goal,
    target: f64,
    context: &[(&str, String)],
) -> String {
    let (op, met) = match goal {
        Goal::Below => ("<", value.map(|v| v < target)),
        Goal::AtMost => ("<=", value.map(|v| v <= target)),
        Goal::AtLeast => (">=", value.map(|v| v >= target)),
    };
    let number = |x: f64| {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" {
            "0".to_string()
        } else {
            s.to_string()
        }
    };
    let mut line = format!(
        "RESULT name={name} value={} unit={unit} target={op}{} met={}",
        value.map_or_else(|| "nan".to_string(), number),
        number(target),
        match met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }
    );
    for (key, value) in context {
        line += &format!(" {key}={}", value.replace(char::is_whitespace, "_"));
    }
    line
}

/// Append one result line to the file named by `COMPARE_OUT`, if set.
pub fn append_result(line: &str) {
    if let Ok(path) = std::env::var("COMPARE_OUT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open COMPARE_OUT");
        writeln!(f, "{line}").expect("write COMPARE_OUT");
    }
}

/// Frames and CBOR bytes that went through a set of connections.
#[derive(Default)]
pub struct WireCounters {
    pub frames_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_in: AtomicU64,
}

impl WireCounters {
    /// Bytes both ways.
    pub fn bytes(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed) + self.bytes_out.load(Ordering::Relaxed)
    }

    /// Frames both ways.
    pub fn frames(&self) -> u64 {
        self.frames_in.load(Ordering::Relaxed) + self.frames_out.load(Ordering::Relaxed)
    }
}

/// A protocol v1 client connection: WebSocket, own and server peer ids, and
/// counters of the CBOR frames sent and received.
pub struct Conn {
    pub ws: Ws,
    pub me: PeerId,
    pub server: PeerId,
    pub wire: Arc<WireCounters>,
}

impl Conn {
    /// Connect and do the `join`/`peer` handshake, announcing an ephemeral
    /// peer with no extension.
    pub async fn open(url: &str, me: PeerId, wire: Arc<WireCounters>) -> anyhow::Result<Conn> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let mut c = Conn {
            ws,
            me: me.clone(),
            server: PeerId::new("unknown"),
            wire,
        };
        c.send(&join(me)).await?;
        match c.recv().await? {
            Message::Peer { sender_id, .. } => c.server = sender_id,
            other => anyhow::bail!("expected peer, got {other:?}"),
        }
        Ok(c)
    }

    pub async fn send(&mut self, msg: &Message) -> anyhow::Result<()> {
        let frame = wire::encode(msg);
        self.wire.frames_out.fetch_add(1, Ordering::Relaxed);
        self.wire
            .bytes_out
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.ws.send(WsMessage::Binary(frame.into())).await?;
        Ok(())
    }

    pub async fn recv(&mut self) -> anyhow::Result<Message> {
        loop {
            let frame = self
                .ws
                .next()
                .await
                .ok_or_else(|| anyhow::anyhow!("connection closed"))??;
            if let WsMessage::Binary(b) = frame {
                self.wire.frames_in.fetch_add(1, Ordering::Relaxed);
                self.wire
                    .bytes_in
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                return Ok(wire::decode(&b, &Limits::default())?);
            }
        }
    }

    /// Send `leave` and close.
    pub async fn close(mut self) {
        let _ = self
            .send(&Message::Leave {
                sender_id: self.me.clone(),
            })
            .await;
        let _ = self.ws.close(None).await;
    }
}

/// A `permitsync serve` relay on loopback (no tokens, no request limit, a
/// given data directory), killed when dropped.
pub struct Relay {
    pub child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the bench's `permitsync` binary as a relay on `data`, once it prints
/// its address.
pub fn start_relay(data: &std::path::Path) -> Relay {
    let mut child = Command::new(env!("CARGO_BIN_EXE_permitsync"))
        .arg("--data")
        .arg(data)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-requests-per-second",
            "0",
            // every simulated device connects from 127.0.0.1
            "--max-connections-per-address",
            "1000000",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the relay");
    let stdout = child.stdout.take().expect("relay stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    // keep draining stdout so the relay never blocks on a full pipe
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    Relay { child, addr }
}
