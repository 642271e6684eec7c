//! Sync benchmarks: devices syncing through a relay node over WebSockets on
//! loopback. A plain `main` (no criterion): each workload is a multi-second
//! end-to-end run, so it is repeated a few times and the median, min and max
//! are printed.
//!
//! Run with `cargo bench --bench sync`; results are written up in
//! `docs/performance.md`. Everything runs in one process: the relay is
//! [`permitsync::node::run`] on a `127.0.0.1:0` listener, each device is its
//! own `NodeState` over its own sled store in a temporary directory and syncs
//! with `permitsync::node::connect(state, url, true)` (one-shot: returns when
//! the device is in sync with the relay).
//!
//! 1. **Fresh device initial sync**: a source device creates `SYNC_BENCH_N`
//!    permits (default 1,000) and uploads them; then `SYNC_BENCH_RUNS` times
//!    (default 5) a new device with an empty store syncs once.
//! 2. **Reconnect**: a device holding `SYNC_BENCH_DOCS` documents (default
//!    2,000), in sync with the relay, reconnects: the first time after its
//!    initial sync, then `SYNC_BENCH_RUNS` times with no change on the relay,
//!    then `SYNC_BENCH_RUNS` times after [`CHANGED`] documents got one new
//!    change each on the relay (a title edit, and a gas reading).
//!
//! Bytes and messages are the relay's counters (`state.metrics`, the values
//! of `permitsync_bytes_{in,out}_total` and `permitsync_sync_messages_total`)
//! before and after each run: every frame of the device's connection in both
//! directions, counted as the CBOR frame (WebSocket framing and TCP/IP headers
//! not included). The device is the relay's only connection during a run.
//! `SYNC_BENCH_CACHE` sets every store's document cache capacity (default:
//! the store's default, 1,024 documents).
//!
//! One extra, untimed run of each kind goes through a wire tap (a TCP proxy in
//! front of the relay that parses the WebSocket traffic) and is broken down by
//! message type, with the WebSocket headers and the HTTP upgrade.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use permitsync::node::{build_state, connect, run, Ended, NodeOptions, NodeState};
use permitsync::store::{Store, StoreOptions};
use permitsync::wire::{self, Limits, Message};
use permitsync::write::{Edit, NewGasReading, NewPermit};
use permitsync::EntityId;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// Documents changed on the relay before each reconnect of workload 2.
const CHANGED: usize = 5;
/// Threads creating permits on the source devices (they share flushes).
const WRITERS: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// `SYNC_BENCH_CACHE`: the stores' document cache capacity (default: the
/// store's default, [`StoreOptions::default`]).
fn cache_capacity() -> Option<usize> {
    std::env::var("SYNC_BENCH_CACHE")
        .ok()
        .map(|_| env_usize("SYNC_BENCH_CACHE", 0))
}

// ---- nodes --------------------------------------------------------------------

struct Node {
    state: Arc<NodeState>,
    _dir: TempDir,
}

impl Node {
    /// A node state over a new, empty sled store in a temporary directory.
    fn new(name: &str) -> Node {
        let dir = tempfile::Builder::new()
            .prefix(&format!("sync-bench-{name}-"))
            .tempdir()
            .expect("tempdir");
        let mut opts = StoreOptions::default();
        if let Some(cap) = cache_capacity() {
            opts.cache_capacity = cap;
        }
        let store = Store::open_with(dir.path(), opts).expect("open sled store");
        let state = build_state(store, &NodeOptions::default()).expect("build node state");
        Node { state, _dir: dir }
    }

    fn store(&self) -> &Store {
        &self.state.store
    }
}

struct Relay {
    node: Node,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Relay {
    fn start(rt: &Runtime, name: &str) -> Relay {
        let node = Node::new(name);
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = rt.spawn(run(listener, node.state.clone(), Vec::new(), async move {
            let _ = rx.await;
        }));
        Relay {
            node,
            url: format!("ws://{addr}/v1/sync"),
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn state(&self) -> &Arc<NodeState> {
        &self.node.state
    }

    fn stop(mut self, rt: &Runtime) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            rt.block_on(task)
                .expect("relay task panicked")
                .expect("relay served");
        }
    }
}

/// The relay's wire counters, read from its Prometheus text.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    bytes_in: u64,
    bytes_out: u64,
    msgs_in: u64,
    msgs_out: u64,
}

impl Counters {
    fn of(state: &NodeState) -> Counters {
        let text = state.metrics.render(0, 0);
        let get = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("metric {name} missing from\n{text}"))
        };
        Counters {
            bytes_in: get("permitsync_bytes_in_total"),
            bytes_out: get("permitsync_bytes_out_total"),
            msgs_in: get("permitsync_sync_messages_total{direction=\"in\"}"),
            msgs_out: get("permitsync_sync_messages_total{direction=\"out\"}"),
        }
    }

    fn minus(self, before: Counters) -> Counters {
        Counters {
            bytes_in: self.bytes_in - before.bytes_in,
            bytes_out: self.bytes_out - before.bytes_out,
            msgs_in: self.msgs_in - before.msgs_in,
            msgs_out: self.msgs_out - before.msgs_out,
        }
    }

    fn bytes(&self) -> u64 {
        self.bytes_in + self.bytes_out
    }

    fn msgs(&self) -> u64 {
        self.msgs_in + self.msgs_out
    }
}

/// One one-shot sync of a device with the relay.
#[derive(Clone, Copy, Debug)]
struct Sample {
    secs: f64,
    wire: Counters,
}

/// Wait until the relay has closed every connection (so its counters include
/// the device's last frames).
fn wait_relay_idle(rt: &Runtime, relay: &Relay) {
    let state = relay.state().clone();
    rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !state.hub.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the relay still has a connection 10 s after the device left"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
}

fn check_ended(ended: &Ended) {
    assert!(
        ended.was_idle && ended.handshake_done && ended.reason == "in sync",
        "the one-shot sync did not finish in sync: {ended:?}"
    );
}

/// A one-shot sync of `device` with the relay through `node::connect`,
/// timed from the call until it returns.
fn sync_once(rt: &Runtime, relay: &Relay, device: &Node) -> Sample {
    wait_relay_idle(rt, relay);
    let before = Counters::of(relay.state());
    let state = device.state.clone();
    let url = relay.url.clone();
    let start = Instant::now();
    let ended = rt
        .block_on(async move { connect(state, &url, true).await })
        .expect("connect to the relay");
    let secs = start.elapsed().as_secs_f64();
    check_ended(&ended);
    wait_relay_idle(rt, relay);
    Sample {
        secs,
        wire: Counters::of(relay.state()).minus(before),
    }
}

// ---- a wire tap (for the breakdown by message type) -----------------------------

/// Per direction and message type: messages, WebSocket payload bytes (the
/// CBOR frame), bytes of the automerge sync message (`data`), the changes
/// inside it, and the WebSocket frame headers.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    msgs: u64,
    frame: u64,
    data: u64,
    change_chunks: u64,
    change_bytes: u64,
    ws_headers: u64,
}

impl Row {
    fn add(&mut self, r: &Row) {
        self.msgs += r.msgs;
        self.frame += r.frame;
        self.data += r.data;
        self.change_chunks += r.change_chunks;
        self.change_bytes += r.change_bytes;
        self.ws_headers += r.ws_headers;
    }
}

#[derive(Default)]
struct Tally {
    rows: BTreeMap<(&'static str, String), Row>,
    /// Bytes of the HTTP upgrade request and response.
    http: u64,
}

fn direction(outgoing: bool) -> &'static str {
    if outgoing {
        "device -> relay"
    } else {
        "relay -> device"
    }
}

impl Tally {
    /// One complete WebSocket data message (`payload`), which came in frames
    /// with `headers` bytes of WebSocket headers.
    fn record(&mut self, outgoing: bool, payload: &[u8], headers: u64) {
        let (kind, data) = match wire::decode(payload, &Limits::default()) {
            Ok(Message::Sync { data, .. }) => ("sync".to_string(), Some(data)),
            Ok(Message::Request { data, .. }) => ("request".to_string(), Some(data)),
            Ok(m) => (m.type_name().to_string(), None),
            Err(e) => (format!("undecodable ({e})"), None),
        };
        let row = self.rows.entry((direction(outgoing), kind)).or_default();
        row.msgs += 1;
        row.frame += payload.len() as u64;
        row.ws_headers += headers;
        if let Some(data) = data {
            row.data += data.len() as u64;
            let msg = automerge::sync::Message::decode(&data).expect("automerge sync message");
            row.change_chunks += msg.changes.len() as u64;
            row.change_bytes += msg.changes.iter().map(|c| c.len() as u64).sum::<u64>();
        }
    }

    /// A WebSocket control frame (close, ping, pong): counted, not a message.
    fn control(&mut self, outgoing: bool, bytes: u64) {
        let row = self
            .rows
            .entry((direction(outgoing), "(WebSocket control frames)".into()))
            .or_default();
        row.ws_headers += bytes;
    }

    fn total(&self, filter: impl Fn(&str) -> bool) -> Row {
        let mut t = Row::default();
        for ((_, kind), r) in &self.rows {
            if filter(kind) {
                t.add(r);
            }
        }
        t
    }

    fn print(&self, title: &str) {
        println!("\n  breakdown of one extra (untimed) run through a wire tap: {title}");
        println!(
            "  | direction | type | messages | frame bytes | sync data bytes | change chunks | change bytes in data | WebSocket header/control bytes |"
        );
        println!("  |---|---|---:|---:|---:|---:|---:|---:|");
        let line = |dir: &str, kind: &str, r: &Row| {
            println!(
                "  | {dir} | {kind} | {} | {} | {} | {} | {} | {} |",
                r.msgs, r.frame, r.data, r.change_chunks, r.change_bytes, r.ws_headers
            );
        };
        for ((dir, kind), r) in &self.rows {
            line(dir, kind, r);
        }
        line("both", "**sync + request**", &self.total(is_sync));
        let all = self.total(|_| true);
        line("both", "**all**", &all);
        println!(
            "  HTTP upgrade {} B; TCP payload in total {} B (frames {} + WebSocket {} + HTTP {})",
            self.http,
            all.frame + all.ws_headers + self.http,
            all.frame,
            all.ws_headers,
            self.http
        );
    }
}

fn is_sync(kind: &str) -> bool {
    kind == "sync" || kind == "request"
}

/// The WebSocket stream of one direction of a tapped connection.
#[derive(Default)]
struct WsParser {
    buf: Vec<u8>,
    upgraded: bool,
    /// A fragmented message being reassembled, with its header bytes so far.
    partial: Vec<u8>,
    partial_headers: u64,
}

impl WsParser {
    /// Feed bytes; record every complete message in `tally`.
    fn feed(&mut self, bytes: &[u8], outgoing: bool, tally: &Mutex<Tally>) {
        self.buf.extend_from_slice(bytes);
        let mut tally = tally.lock().expect("tally lock");
        if !self.upgraded {
            let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            tally.http += end as u64 + 4;
            self.buf.drain(..end + 4);
            self.upgraded = true;
        }
        // RFC 6455 §5.2
        loop {
            let b = &self.buf;
            if b.len() < 2 {
                return;
            }
            let (fin, opcode, masked) = (b[0] & 0x80 != 0, b[0] & 0x0f, b[1] & 0x80 != 0);
            let (len, mut header) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
                127 if b.len() >= 10 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&b[2..10]);
                    (u64::from_be_bytes(n), 10)
                }
                126 | 127 => return,
                n => (u64::from(n), 2),
            };
            let key_at = header;
            if masked {
                header += 4;
            }
            let len = usize::try_from(len).expect("frame length");
            if b.len() < header + len {
                return;
            }
            let mut payload = b[header..header + len].to_vec();
            if masked {
                let key = [b[key_at], b[key_at + 1], b[key_at + 2], b[key_at + 3]];
                for (i, x) in payload.iter_mut().enumerate() {
                    *x ^= key[i % 4];
                }
            }
            self.buf.drain(..header + len);
            if opcode >= 8 {
                tally.control(outgoing, (header + len) as u64);
                continue;
            }
            self.partial.extend_from_slice(&payload);
            self.partial_headers += header as u64;
            if fin {
                let message = std::mem::take(&mut self.partial);
                tally.record(outgoing, &message, self.partial_headers);
                self.partial_headers = 0;
            }
        }
    }
}

/// A TCP proxy in front of the relay that parses the WebSocket traffic of
/// one connection. Returns its `ws://` URL and a task that ends with the
/// tally once both directions are closed.
fn wire_tap(rt: &Runtime, relay: &Relay) -> (String, tokio::task::JoinHandle<Tally>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        outgoing: bool,
        tally: Arc<Mutex<Tally>>,
    ) {
        let mut parser = WsParser::default();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            parser.feed(&chunk[..n], outgoing, &tally);
            if to.write_all(&chunk[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }

    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind the tap");
    let addr = listener.local_addr().expect("tap address");
    let relay_addr = relay
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/v1/sync")
        .to_string();
    let task = rt.spawn(async move {
        let (device, _) = listener.accept().await.expect("accept the device");
        let upstream = tokio::net::TcpStream::connect(relay_addr)
            .await
            .expect("connect the tap to the relay");
        let _ = device.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (dr, dw) = device.into_split();
        let (ur, uw) = upstream.into_split();
        let up = tokio::spawn(pump(dr, uw, true, tally.clone()));
        let down = tokio::spawn(pump(ur, dw, false, tally.clone()));
        let _ = up.await;
        let _ = down.await;
        let mut t = tally.lock().expect("tally lock");
        std::mem::take(&mut *t)
    });
    (format!("ws://{addr}/v1/sync"), task)
}

/// A one-shot sync with `node::connect` through a [`wire_tap`]; checks that
/// the tap's totals match the relay's counters.
fn sync_tapped(rt: &Runtime, relay: &Relay, device: &Node) -> (Sample, Tally) {
    wait_relay_idle(rt, relay);
    let before = Counters::of(relay.state());
    let (url, tap) = wire_tap(rt, relay);
    let state = device.state.clone();
    let start = Instant::now();
    let ended = rt
        .block_on(async move { connect(state, &url, true).await })
        .expect("connect through the tap");
    let secs = start.elapsed().as_secs_f64();
    check_ended(&ended);
    wait_relay_idle(rt, relay);
    let wire = Counters::of(relay.state()).minus(before);
    let tally = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), tap).await })
        .expect("the tapped connection did not close within 10 s")
        .expect("tap task");
    let all = tally.total(|_| true);
    assert_eq!(
        (all.msgs, all.frame),
        (wire.msgs(), wire.bytes()),
        "the wire tap and the relay's counters disagree"
    );
    (Sample { secs, wire }, tally)
}

// ---- data -----------------------------------------------------------------------

/// Create `n` permits on `store`, each with 3 changes (creation, a ticked
/// checklist item, `submitted`), from [`WRITERS`] threads. Returns their ids.
fn create_permits(store: &Store, n: usize) -> Vec<EntityId> {
    let ids = Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|s| {
        for t in 0..WRITERS {
            let (store, ids) = (store, &ids);
            s.spawn(move || {
                for i in (t..n).step_by(WRITERS) {
                    let id = store
                        .create_permit(NewPermit {
                            title: format!("Replace pump seal P-{i}"),
                            location: format!("Pump house {}", i % 7),
                            work_type: "mechanical".into(),
                            description: "Replace the mechanical seal of the pump; drain and \
                                          flush the casing first."
                                .into(),
                            ppe_requirements: vec!["gloves".into(), "helmet".into()],
                            safety_checklist: vec![
                                "isolation confirmed".into(),
                                "area barriered".into(),
                                "gas test done".into(),
                            ],
                            ..Default::default()
                        })
                        .expect("create permit");
                    store
                        .edit(
                            id,
                            Edit::Tick {
                                field: "safety_checklist".into(),
                                item: "isolation confirmed".into(),
                                ticked: true,
                            },
                        )
                        .expect("tick");
                    store
                        .edit(id, Edit::SetStatus("submitted".into()))
                        .expect("submit");
                    ids.lock().expect("ids lock").push(id);
                }
            });
        }
    });
    let mut ids = ids.into_inner().expect("ids lock");
    ids.sort();
    ids
}

/// The kind of change made on the relay before a reconnect.
#[derive(Clone, Copy)]
enum ChangeKind {
    Title,
    GasReading,
}

impl ChangeKind {
    fn label(self) -> &'static str {
        match self {
            ChangeKind::Title => "title edit",
            ChangeKind::GasReading => "gas reading",
        }
    }

    fn edit(self, round: usize) -> Edit {
        match self {
            ChangeKind::Title => Edit::SetField {
                field: "title".into(),
                value: format!("Replace pump seal, rev {round}"),
            },
            ChangeKind::GasReading => Edit::AddGasReading(NewGasReading {
                gas: "H2S".into(),
                value: 2.0 + (round % 10) as f64 / 10.0,
                unit: "ppm".into(),
                min: 0.0,
                max: 5.0,
                ..Default::default()
            }),
        }
    }
}

/// Make one change of `kind` to each of `ids` on the relay's store (and tell
/// its hub, as the REST API would). Returns the raw bytes of the new changes
/// (`changes_since(id, heads_before)`).
fn change_on_relay(relay: &Relay, ids: &[EntityId], kind: ChangeKind, round: usize) -> u64 {
    let state = relay.state();
    let mut bytes = 0u64;
    for &id in ids {
        let before = state.store.heads(id).expect("heads");
        state
            .store
            .edit(id, kind.edit(round))
            .expect("edit on the relay")
            .expect("the edit made a change");
        state.hub.doc_changed(id, None);
        bytes += state
            .store
            .changes_since(id, &before)
            .expect("changes since")
            .iter()
            .map(|c| c.raw_bytes().len() as u64)
            .sum::<u64>();
    }
    bytes
}

fn assert_same_heads(a: &Store, b: &Store, ids: &[EntityId]) {
    for &id in ids {
        assert_eq!(
            a.heads(id).expect("heads"),
            b.heads(id).expect("heads"),
            "document {id} differs after the sync"
        );
    }
}

// ---- statistics and printing ------------------------------------------------------

/// (median, min, max); the median of an even count is the mean of the middle two.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    assert!(!v.is_empty());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn table_header() {
    println!("| workload | runs | wall time median [min, max] | bytes median [min, max] (in + out at the relay) | messages median [min, max] |");
    println!("|---|---:|---|---|---|");
}

fn table_row(name: &str, samples: &[Sample]) {
    let (t, t0, t1) = stats(samples.iter().map(|s| s.secs).collect());
    let (b, b0, b1) = stats(samples.iter().map(|s| s.wire.bytes() as f64).collect());
    let (m, m0, m1) = stats(samples.iter().map(|s| s.wire.msgs() as f64).collect());
    println!(
        "| {name} | {} | {} [{}, {}] | {} [{}, {}] | {} [{}, {}] |",
        samples.len(),
        fmt_secs(t),
        fmt_secs(t0),
        fmt_secs(t1),
        fmt_num(b),
        fmt_num(b0),
        fmt_num(b1),
        fmt_num(m),
        fmt_num(m0),
        fmt_num(m1),
    );
}

fn print_samples(name: &str, samples: &[Sample]) {
    for (i, s) in samples.iter().enumerate() {
        eprintln!(
            "  {name} #{}: {} , {} B in + {} B out at the relay, {} msgs in + {} out",
            i + 1,
            fmt_secs(s.secs),
            s.wire.bytes_in,
            s.wire.bytes_out,
            s.wire.msgs_in,
            s.wire.msgs_out
        );
    }
}

fn machine_facts() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .map(|l| l.trim_start_matches("MemTotal:").trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("machine: nproc {cpus}, memory {mem}, cpu {model}");
}

// ---- workloads ----------------------------------------------------------------------

fn fresh_device_sync(rt: &Runtime, n: usize, runs: usize) -> Vec<Sample> {
    println!("\n## 1. fresh device initial sync of {n} permits through the relay\n");
    let relay = Relay::start(rt, "relay1");
    let source = Node::new("source");
    let t = Instant::now();
    let ids = create_permits(source.store(), n);
    let created = t.elapsed().as_secs_f64();
    let upload = sync_once(rt, &relay, &source);
    println!(
        "setup: {n} permits created on the source ({}, untimed), uploaded in {} ({} B, {} msgs)",
        fmt_secs(created),
        fmt_secs(upload.secs),
        upload.wire.bytes(),
        upload.wire.msgs()
    );
    let saved: u64 = ids
        .iter()
        .map(|&id| relay.node.store().save_doc(id).expect("save").len() as u64)
        .sum();
    println!(
        "the {n} documents' compacted saves on the relay total {saved} B ({:.0} B per document)",
        saved as f64 / n as f64
    );

    let mut samples = Vec::with_capacity(runs);
    for r in 0..runs {
        let device = Node::new(&format!("fresh{r}"));
        let s = sync_once(rt, &relay, &device);
        assert_eq!(
            device.store().summaries().expect("summaries").len(),
            n,
            "the fresh device did not get every permit"
        );
        assert_same_heads(device.store(), relay.node.store(), &ids);
        samples.push(s);
    }
    print_samples("fresh", &samples);

    let device = Node::new("fresh-counted");
    let (s, tally) = sync_tapped(rt, &relay, &device);
    tally.print(&format!("fresh device, {n} permits, {}", fmt_secs(s.secs)));
    let sync = tally.total(is_sync);
    println!(
        "\n  wire bytes per document: {:.0} (all), {:.0} (sync + request frames); \
         change bytes carried / compacted saves: {:.2}",
        s.wire.bytes() as f64 / n as f64,
        sync.frame as f64 / n as f64,
        sync.change_bytes as f64 / saved as f64
    );
    println!();
    table_header();
    table_row(&format!("fresh device, {n} permits"), &samples);
    relay.stop(rt);
    samples
}

struct ReconnectResults {
    first: Sample,
    zero: Vec<Sample>,
    changed: Vec<(ChangeKind, Vec<Sample>, Vec<u64>)>,
}

fn reconnect(rt: &Runtime, d: usize, runs: usize) -> ReconnectResults {
    println!("\n## 2. reconnect of a device holding {d} documents\n");
    let relay = Relay::start(rt, "relay2");
    let source = Node::new("source2");
    let t = Instant::now();
    let ids = create_permits(source.store(), d);
    let created = t.elapsed().as_secs_f64();
    let upload = sync_once(rt, &relay, &source);
    let device = Node::new("holder");
    let initial = sync_once(rt, &relay, &device);
    assert_same_heads(device.store(), relay.node.store(), &ids);
    println!(
        "setup: {d} permits created ({}), uploaded ({}), initial sync of the device ({}, {} B, {} msgs)",
        fmt_secs(created),
        fmt_secs(upload.secs),
        fmt_secs(initial.secs),
        initial.wire.bytes(),
        initial.wire.msgs()
    );

    // the first reconnect after the initial sync
    let first = sync_once(rt, &relay, &device);
    print_samples("first reconnect", &[first]);

    let zero: Vec<Sample> = (0..runs).map(|_| sync_once(rt, &relay, &device)).collect();
    print_samples("0 changes", &zero);
    let (_, tally) = sync_tapped(rt, &relay, &device);
    tally.print("reconnect, 0 changed documents");

    let mut changed = Vec::new();
    let mut next = 0usize;
    for kind in [ChangeKind::Title, ChangeKind::GasReading] {
        let mut samples = Vec::with_capacity(runs);
        let mut change_bytes = Vec::with_capacity(runs);
        for round in 0..runs {
            let docs: Vec<EntityId> = (0..CHANGED).map(|k| ids[(next + k) % d]).collect();
            next += CHANGED;
            change_bytes.push(change_on_relay(&relay, &docs, kind, round));
            samples.push(sync_once(rt, &relay, &device));
            assert_same_heads(device.store(), relay.node.store(), &docs);
        }
        print_samples(kind.label(), &samples);
        eprintln!("  {} change bytes per run: {change_bytes:?}", kind.label());

        let docs: Vec<EntityId> = (0..CHANGED).map(|k| ids[(next + k) % d]).collect();
        next += CHANGED;
        let bytes = change_on_relay(&relay, &docs, kind, runs);
        let (s, tally) = sync_tapped(rt, &relay, &device);
        assert_same_heads(device.store(), relay.node.store(), &docs);
        tally.print(&format!(
            "reconnect, {CHANGED} documents changed ({}), their new changes {bytes} B",
            kind.label()
        ));
        let sync = tally.total(is_sync);
        println!(
            "\n  ratios of this run: all frames / changes {:.2}; sync + request frames / changes {:.2}; \
             automerge sync data / changes {:.2}; change bytes inside the sync data / changes {:.2}",
            s.wire.bytes() as f64 / bytes as f64,
            sync.frame as f64 / bytes as f64,
            sync.data as f64 / bytes as f64,
            sync.change_bytes as f64 / bytes as f64,
        );
        changed.push((kind, samples, change_bytes));
    }

    println!();
    table_header();
    table_row(
        &format!("first reconnect after the initial sync ({d} docs)"),
        &[first],
    );
    table_row(&format!("reconnect, 0 changed of {d}"), &zero);
    for (kind, samples, _) in &changed {
        table_row(
            &format!("reconnect, {CHANGED} changed of {d} ({})", kind.label()),
            samples,
        );
    }

    let (zero_bytes, _, _) = stats(zero.iter().map(|s| s.wire.bytes() as f64).collect());
    println!(
        "\nratio = bytes on the wire / raw bytes of the {CHANGED} documents' new changes \
         (`changes_since(id, heads_before)`); fixed overhead = median bytes of a 0-change reconnect ({zero_bytes:.0} B)\n"
    );
    println!("| changes | change bytes median [min, max] | raw ratio median [min, max] | ratio without the fixed overhead median [min, max] |");
    println!("|---|---|---|---|");
    for (kind, samples, change_bytes) in &changed {
        let (c, c0, c1) = stats(change_bytes.iter().map(|&b| b as f64).collect());
        let raw: Vec<f64> = samples
            .iter()
            .zip(change_bytes)
            .map(|(s, &c)| s.wire.bytes() as f64 / c as f64)
            .collect();
        let net: Vec<f64> = samples
            .iter()
            .zip(change_bytes)
            .map(|(s, &c)| (s.wire.bytes() as f64 - zero_bytes) / c as f64)
            .collect();
        let (r, r0, r1) = stats(raw);
        let (e, e0, e1) = stats(net);
        println!(
            "| {CHANGED} × {} | {} [{}, {}] | {r:.2} [{r0:.2}, {r1:.2}] | {e:.2} [{e0:.2}, {e1:.2}] |",
            kind.label(),
            fmt_num(c),
            fmt_num(c0),
            fmt_num(c1)
        );
    }
    relay.stop(rt);
    ReconnectResults {
        first,
        zero,
        changed,
    }
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: this
    // benchmark takes minutes, so it only runs under `cargo bench`
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("skipped: run it with `cargo bench --bench sync`");
        return;
    }
    // `cargo bench` passes `--bench`; there is nothing to filter
    let n = env_usize("SYNC_BENCH_N", 1_000);
    let runs = env_usize("SYNC_BENCH_RUNS", 5).max(1);
    let docs = env_usize("SYNC_BENCH_DOCS", 2_000).max(CHANGED);
    machine_facts();
    let cache = cache_capacity().unwrap_or(StoreOptions::default().cache_capacity);
    println!(
        "SYNC_BENCH_N={n} SYNC_BENCH_RUNS={runs} SYNC_BENCH_DOCS={docs} SYNC_BENCH_CACHE={cache}; \
         bytes and messages are the relay's counters (CBOR frames, both directions)"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let fresh = fresh_device_sync(&rt, n, runs);
    let rec = reconnect(&rt, docs, runs);

    println!("\n## summary\n");
    table_header();
    table_row(&format!("fresh device, {n} permits"), &fresh);
    table_row(
        &format!("first reconnect after the initial sync ({docs} docs)"),
        &[rec.first],
    );
    table_row(&format!("reconnect, 0 changed of {docs}"), &rec.zero);
    for (kind, samples, _) in &rec.changed {
        table_row(
            &format!("reconnect, {CHANGED} changed of {docs} ({})", kind.label()),
            samples,
        );
    }
    println!(
        "\ntotal bench time {}",
        fmt_secs(started.elapsed().as_secs_f64())
    );
}
