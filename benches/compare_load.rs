//! Load tool for any automerge-repo-compatible sync server: `N` simulated
//! devices over real WebSockets, plain protocol v1 (`permitsync::wire` frames,
//! Automerge sync states on the client side, no permitsync extension unless
//! asked for). `benches/compare.sh` starts the JavaScript sync server, a samod
//! server and a permitsync relay in turn and runs this against each.
//!
//! Run one measurement against a running server:
//!
//! ```text
//! COMPARE_URL=ws://127.0.0.1:PORT/v1/sync COMPARE_PID=<server pid> \
//!   COMPARE_SYSTEM=name cargo bench --bench compare_load
//! ```
//!
//! **Several relays of one cluster.** `COMPARE_URL` may hold several URLs
//! separated by commas (`ws://A/v1/sync,ws://B/v1/sync`), and `COMPARE_PID`
//! several process ids the same way. Device `d` then connects to URL
//! `d mod n`, so the device that follows device `d + 1`'s documents in
//! workload 2 sits on another relay (for every device when the device count
//! is not 1 more than a multiple of `n`): edit-to-visibility is cross-relay.
//! The fresh device of workloads 3 and 5 connects to the first URL, its
//! reconnects to the second (a device that moves relays); the server's CPU
//! is the sum over the processes, its peak RSS the largest relay's.
//! `COMPARE_DB_PID` (a PostgreSQL postmaster) adds the database's CPU during
//! the ingest (the postmaster and its children), and `COMPARE_DATABASE_URL`
//! its counters over the ingest: commits (`pg_stat_database.xact_commit`)
//! and WAL syncs (`pg_stat_wal.wal_sync`), which backends publish about once
//! a second (so up to the ingest's last second may be missing from them),
//! and, exactly, write transactions (transaction ids assigned) and WAL bytes
//! (`pg_current_wal_lsn`).
//!
//! The workloads, in order, against one fresh server:
//!
//! 1. **Ingest.** `COMPARE_DEVICES` devices (default 50) each create
//!    `COMPARE_DOCS` permits (default 100) and make `COMPARE_CHANGES` changes
//!    to each (default 20, the creation included): every change is synced and
//!    acknowledged (the server's heads equal the device's) before the next
//!    change of the same document, all documents of all devices in parallel.
//!    Throughput is changes / wall time until every document is acknowledged.
//! 2. **Edit-to-visibility.** Each device `request`s the documents of the next
//!    device (so the server pushes their changes to it). Then every device
//!    edits one of its documents' titles every `COMPARE_EDIT_MS` ms (default
//!    100), `COMPARE_EDITS` times (default 50), round robin; the title carries
//!    the wall-clock time. Latency is from that time until the follower has
//!    applied a sync message that shows the title.
//! 3. **Fresh device.** A new device `request`s every document (devices x
//!    docs) at once and is timed until it holds each with the owner's heads.
//! 4. **Reconnect, plain protocol.** The fresh device disconnects; 10 documents
//!    get one title edit each from their owners; it reconnects with its sync
//!    states restored from `sync::State::encode` (what a client persists) and
//!    sends one `sync` per document held, timed until every document is
//!    acknowledged and the 10 have the new heads.
//! 5. **permitsync extension** (`COMPARE_EXT=1`, permitsync servers only): a
//!    `permitsync::node` device (sled store, feed extension) does a one-shot
//!    fresh sync of all documents, then, after 10 other documents changed, a
//!    one-shot reconnect. Bytes are the relay's `/metrics` counters.
//!
//! Bytes are CBOR frame bytes counted on the client side, both directions.
//! The server's peak RSS is `VmHWM` of `COMPARE_PID` at the end. One JSON
//! line of results is appended to `COMPARE_OUT` (if set) and printed.
//! The whole measurement gives up after `COMPARE_TIMEOUT` seconds (default
//! 900). `COMPARE_SUMMARIZE=FILE` instead reads such lines and prints the medians
//! and ratios as a Markdown table, then one `RESULT` line per target of issue 5
//! it can check (see `loadkit::result_line`).

mod loadkit;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ChangeHash};
use loadkit::{
    append_result, cpu_secs, edit_permit, env_u64, memory_kib, new_permit, now_ms, parse_stamp,
    percentile, result_line, sync_message, title_of, Conn, Goal, WireCounters,
};
use permitsync::wire::{DocumentId, Message, PeerId};
use serde_json::{json, Value};

/// Documents changed before each reconnect.
const RECONNECT_CHANGED: usize = 10;
/// Phase-2 titles carry sequence numbers from here on (phase 1 uses smaller).
const VIS_SEQ_BASE: u64 = 1_000_000;
/// Longest wait for the next message while documents are not in sync.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

struct Doc {
    id: DocumentId,
    doc: Automerge,
    state: sync::State,
    /// Highest stamped title sequence seen.
    seen_seq: u64,
    /// A document of another device, followed for latency samples.
    follow: bool,
}

impl Doc {
    fn new(id: DocumentId, doc: Automerge) -> Doc {
        Doc {
            id,
            doc,
            state: sync::State::new(),
            seen_seq: 0,
            follow: false,
        }
    }

    /// The server said its heads are ours (and we have something).
    fn acked(&self) -> bool {
        let ours = sorted(self.doc.get_heads());
        !ours.is_empty() && self.state.their_heads.as_ref().map(|h| sorted(h.clone())) == Some(ours)
    }
}

fn sorted(mut h: Vec<ChangeHash>) -> Vec<ChangeHash> {
    h.sort();
    h
}

/// One connection and the documents it syncs.
struct Replica {
    conn: Conn,
    docs: Vec<Doc>,
    index: HashMap<DocumentId, usize>,
    latencies: Vec<u64>,
}

impl Replica {
    fn new(conn: Conn) -> Replica {
        Replica {
            conn,
            docs: Vec::new(),
            index: HashMap::new(),
            latencies: Vec::new(),
        }
    }

    fn add(&mut self, d: Doc) -> usize {
        let i = self.docs.len();
        self.index.insert(d.id, i);
        self.docs.push(d);
        i
    }

    /// Send the next sync message of document `i`, if there is one.
    async fn sync_out(&mut self, i: usize, request: bool) -> anyhow::Result<()> {
        let d = &mut self.docs[i];
        let Some(m) = d.doc.generate_sync_message(&mut d.state) else {
            return Ok(());
        };
        let msg = sync_message(
            request,
            self.conn.me.clone(),
            self.conn.server.clone(),
            d.id,
            m.encode(),
        );
        self.conn.send(&msg).await
    }

    /// Receive one message and apply it; returns the document it was about.
    /// Stamped titles of phase 2 on followed documents give latency samples.
    async fn recv_apply(&mut self) -> anyhow::Result<Option<usize>> {
        match self.conn.recv().await? {
            Message::Sync {
                document_id, data, ..
            }
            | Message::Request {
                document_id, data, ..
            } => {
                let Some(&i) = self.index.get(&document_id) else {
                    anyhow::bail!("sync for an unknown document {document_id}");
                };
                let m = sync::Message::decode(&data)?;
                let d = &mut self.docs[i];
                d.doc.receive_sync_message(&mut d.state, m)?;
                if let Some((t, seq)) = parse_stamp(&title_of(&d.doc)) {
                    if seq > d.seen_seq {
                        d.seen_seq = seq;
                        if d.follow && seq >= VIS_SEQ_BASE {
                            self.latencies.push(now_ms().saturating_sub(t));
                        }
                    }
                }
                Ok(Some(i))
            }
            Message::DocUnavailable { document_id, .. } => {
                anyhow::bail!("doc-unavailable for {document_id}")
            }
            Message::Error { message } => anyhow::bail!("server error: {message}"),
            _ => Ok(None),
        }
    }

    /// Receive and answer until every document in `which` satisfies `ok`.
    /// A document's state changes only with a message about it, so each
    /// message re-checks only its own document.
    async fn pump_docs(
        &mut self,
        which: impl IntoIterator<Item = usize>,
        ok: impl Fn(&Doc) -> bool,
    ) -> anyhow::Result<()> {
        let mut open: HashSet<usize> = which.into_iter().filter(|&i| !ok(&self.docs[i])).collect();
        while !open.is_empty() {
            let got = tokio::time::timeout(STALL_TIMEOUT, self.recv_apply())
                .await
                .map_err(|_| anyhow::anyhow!("stalled: {} documents not in sync", open.len()))?;
            if let Some(i) = got? {
                self.sync_out(i, false).await?;
                if open.contains(&i) && ok(&self.docs[i]) {
                    open.remove(&i);
                }
            }
        }
        Ok(())
    }
}

impl Replica {
    /// Wait for `fut` while still reading and answering the server (the
    /// JavaScript server drops connections that do not answer its pings).
    async fn pumping<T>(&mut self, fut: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                v = &mut fut => return Ok(v),
                got = self.recv_apply() => {
                    if let Some(i) = got? {
                        self.sync_out(i, false).await?;
                    }
                }
            }
        }
    }
}

fn doc_id(nonce: u64, device: usize, j: usize) -> DocumentId {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&nonce.to_be_bytes());
    b[8..12].copy_from_slice(&(device as u32).to_be_bytes());
    b[12..].copy_from_slice(&(j as u32).to_be_bytes());
    DocumentId::from(uuid::Builder::from_random_bytes(b).into_uuid())
}

#[derive(Clone)]
struct Config {
    /// The relays' sync URLs (one for a single server).
    urls: Vec<String>,
    devices: usize,
    docs: usize,
    changes: u64,
    edits: u64,
    edit_ms: u64,
    nonce: u64,
    /// The servers' process ids (none: unknown), for their CPU time.
    pids: Vec<u32>,
    /// A PostgreSQL postmaster's process id (0: none), for its CPU time.
    db_pid: u32,
    /// The database the relays use, for its commit and WAL counters.
    db_url: Option<String>,
}

impl Config {
    /// The URL device `device` connects to: round robin over the relays.
    fn url_for(&self, device: usize) -> &str {
        &self.urls[device % self.urls.len()]
    }

    /// The URL a device that moves to another relay connects to (the
    /// second, if there are several).
    fn other_url(&self) -> &str {
        &self.urls[1 % self.urls.len()]
    }

    /// User plus system CPU seconds of all the servers (none if any is gone).
    fn server_cpu(&self) -> Option<f64> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&p| cpu_secs(p)).sum()
    }
}

/// Values separated by commas (empty items dropped).
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// CPU seconds of process `pid`, its live children and the children it
/// reaped (`cutime`, `cstime`): a PostgreSQL postmaster and its backends.
fn tree_cpu_secs(pid: u32) -> Option<f64> {
    // the fields after the command's closing ')' and the state: ppid,
    // ..., utime (10), stime, cutime, cstime
    let fields = |p: &str| -> Option<Vec<u64>> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        Some(
            rest.split_whitespace()
                .skip(1)
                .take(14)
                .map(|f| f.parse().unwrap_or(0))
                .collect(),
        )
    };
    let own = fields(&pid.to_string())?;
    let mut ticks = own.get(10)? + own.get(11)? + own.get(12)? + own.get(13)?;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name();
        let Some(p) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some(f) = fields(p) {
            if f.first() == Some(&(pid as u64)) {
                ticks += f.get(10).unwrap_or(&0) + f.get(11).unwrap_or(&0);
            }
        }
    }
    Some(ticks as f64 / 100.0)
}

/// The database's counters so far: committed transactions and WAL syncs
/// (statistics the backends publish about once a second), the next
/// transaction id (write transactions, exact) and the WAL position in bytes
/// (exact).
async fn db_counters(url: &str) -> anyhow::Result<[f64; 4]> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT d.xact_commit, w.wal_sync, \
             pg_snapshot_xmax(pg_current_snapshot())::text::bigint, \
             pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint \
             FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()",
            &[],
        )
        .await?;
    drop(client);
    let _ = task.await;
    Ok([
        row.get::<_, i64>(0) as f64,
        row.get::<_, i64>(1) as f64,
        row.get::<_, i64>(2) as f64,
        row.get::<_, i64>(3) as f64,
    ])
}

/// Workload 1 for one device: create its documents and make every change,
/// each acknowledged before the next of the same document.
async fn ingest(cfg: Config, device: usize, wire: Arc<WireCounters>) -> anyhow::Result<Replica> {
    let me = PeerId::new(format!("cmp-{device}-{}", uuid::Uuid::new_v4()));
    let mut r = Replica::new(Conn::open(cfg.url_for(device), me, wire).await?);
    let mut made = vec![1u64; cfg.docs];
    for j in 0..cfg.docs {
        r.add(Doc::new(doc_id(cfg.nonce, device, j), new_permit(device)));
    }
    for j in 0..cfg.docs {
        r.sync_out(j, false).await?;
    }
    let mut open = cfg.docs;
    while open > 0 {
        let Some(j) = r.recv_apply().await? else {
            continue;
        };
        if j < cfg.docs && made[j] <= cfg.changes && r.docs[j].acked() {
            if made[j] < cfg.changes {
                let seq = made[j];
                edit_permit(&mut r.docs[j].doc, seq % 3 != 0, seq);
            } else {
                open -= 1;
            }
            made[j] += 1;
        }
        r.sync_out(j, false).await?;
    }
    Ok(r)
}

/// Workload 2 for one device: follow the next device's documents, then edit
/// its own at a fixed pace; returns when its edits are acknowledged and it
/// saw the last edit of each followed document (or after a grace period).
async fn visibility(
    cfg: Config,
    device: usize,
    mut r: Replica,
    barrier: Arc<tokio::sync::Barrier>,
) -> anyhow::Result<Replica> {
    let next = (device + 1) % cfg.devices;
    let first = r.docs.len();
    for j in 0..cfg.docs {
        let mut d = Doc::new(doc_id(cfg.nonce, next, j), Automerge::new());
        d.follow = true;
        let i = r.add(d);
        r.sync_out(i, true).await?;
    }
    let n = r.docs.len();
    r.pump_docs(first..n, Doc::acked).await?;
    r.pumping(barrier.wait()).await?;
    let start = tokio::time::Instant::now();
    let pace = Duration::from_millis(cfg.edit_ms.max(1));
    let mut made = 0u64;
    let mut next_edit = start + pace.mul_f64((device as f64 / cfg.devices as f64).fract());
    let grace = Duration::from_secs(30);
    // every followed document has shown the last edit made to it: edits of
    // different documents may arrive out of order (from another relay, or
    // when a relay pushes documents in another order), so seeing the very
    // last edit does not mean the earlier ones arrived
    let docs = cfg.docs as u64;
    let followed_done = |r: &Replica| {
        (0..docs.min(cfg.edits)).all(|j| {
            // edit k (from 1) lands on document (k - 1) % docs
            let last = j + 1 + (cfg.edits - 1 - j) / docs * docs;
            r.docs[first + j as usize].seen_seq >= VIS_SEQ_BASE + last
        })
    };
    loop {
        if made >= cfg.edits {
            let own_acked = r.docs[..first].iter().all(Doc::acked);
            if (own_acked && followed_done(&r)) || start.elapsed() > pace * cfg.edits as u32 + grace
            {
                break;
            }
        }
        let wake = if made < cfg.edits {
            next_edit
        } else {
            tokio::time::Instant::now() + Duration::from_millis(200)
        };
        tokio::select! {
            got = r.recv_apply() => {
                if let Some(i) = got? {
                    r.sync_out(i, false).await?;
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if made < cfg.edits {
                    made += 1;
                    let j = (made as usize - 1) % cfg.docs;
                    edit_permit(&mut r.docs[j].doc, true, VIS_SEQ_BASE + made);
                    r.sync_out(j, false).await?;
                    next_edit += pace;
                }
            }
        }
    }
    Ok(r)
}

/// What the main task asks a device for once workloads 1 and 2 are done.
enum Cmd {
    /// Edit the title of own document `j`, sync until acknowledged, and
    /// answer with the new change's raw bytes and the document's heads.
    Change(usize, tokio::sync::oneshot::Sender<(u64, Vec<ChangeHash>)>),
}

/// Everything a device does, in one task so that it always reads its
/// connection: workload 1, a barrier, workload 2, a barrier, then commands.
async fn device_task(
    cfg: Config,
    device: usize,
    wires: [Arc<WireCounters>; 2],
    barriers: [Arc<tokio::sync::Barrier>; 3],
    mut cmds: tokio::sync::mpsc::UnboundedReceiver<Cmd>,
    shared: Arc<std::sync::Mutex<Shared>>,
) -> anyhow::Result<()> {
    let mut r = ingest(cfg.clone(), device, wires[0].clone()).await?;
    r.pumping(barriers[0].wait()).await?;
    r.conn.wire = wires[1].clone();
    let mut r = visibility(cfg.clone(), device, r, barriers[1].clone()).await?;
    {
        let mut sh = shared.lock().expect("shared");
        sh.latencies.append(&mut r.latencies);
        for d in &r.docs[..cfg.docs] {
            sh.heads.insert(d.id, sorted(d.doc.get_heads()));
        }
    }
    r.pumping(barriers[2].wait()).await?;
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Change(j, reply)) => {
                    edit_permit(&mut r.docs[j].doc, true, 999);
                    let raw = r.docs[j]
                        .doc
                        .get_last_local_change()
                        .map(|c| c.raw_bytes().len() as u64)
                        .unwrap_or(0);
                    r.sync_out(j, false).await?;
                    r.pump_docs([j], Doc::acked).await?;
                    let _ = reply.send((raw, sorted(r.docs[j].doc.get_heads())));
                }
                None => break,
            },
            got = r.recv_apply() => {
                if let Some(i) = got? {
                    r.sync_out(i, false).await?;
                }
            }
        }
    }
    r.conn.close().await;
    Ok(())
}

/// What the devices report to the main task.
#[derive(Default)]
struct Shared {
    latencies: Vec<u64>,
    heads: HashMap<DocumentId, Vec<ChangeHash>>,
}

/// Change one document of each of the given devices (a title edit) and wait
/// until the server acknowledged it. Returns the new changes' raw bytes.
async fn change_docs(
    devices: &[tokio::sync::mpsc::UnboundedSender<Cmd>],
    pick: &[(usize, usize)],
    shared: &std::sync::Mutex<Shared>,
    nonce: u64,
) -> anyhow::Result<u64> {
    let mut raw = 0u64;
    for &(dev, j) in pick {
        let (tx, rx) = tokio::sync::oneshot::channel();
        devices[dev]
            .send(Cmd::Change(j, tx))
            .map_err(|_| anyhow::anyhow!("device {dev} is gone"))?;
        let (bytes, heads) = rx
            .await
            .map_err(|_| anyhow::anyhow!("device {dev} failed"))?;
        raw += bytes;
        shared
            .lock()
            .expect("shared")
            .heads
            .insert(doc_id(nonce, dev, j), heads);
    }
    Ok(raw)
}

/// Acknowledged, with the owner's heads.
fn matches(want: &HashMap<DocumentId, Vec<ChangeHash>>) -> impl Fn(&Doc) -> bool + '_ {
    move |d: &Doc| d.acked() && want.get(&d.id) == Some(&sorted(d.doc.get_heads()))
}

/// Sum of the `permitsync_bytes_{in,out}_total` counters of a relay.
async fn relay_bytes(http: &str) -> anyhow::Result<u64> {
    let text = reqwest::get(format!("{http}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    let mut total = 0u64;
    for line in text.lines() {
        if let Some(v) = line
            .strip_prefix("permitsync_bytes_in_total ")
            .or_else(|| line.strip_prefix("permitsync_bytes_out_total "))
        {
            total += v.trim().parse::<f64>()? as u64;
        }
    }
    Ok(total)
}

/// Workload 5: the permitsync node client with the feed extension.
async fn extension_runs(
    devices: &[tokio::sync::mpsc::UnboundedSender<Cmd>],
    shared: &std::sync::Mutex<Shared>,
    cfg: &Config,
    out: &mut BTreeMap<String, Value>,
) -> anyhow::Result<()> {
    use permitsync::node::{build_state, connect, NodeOptions};
    use permitsync::store::Store;
    // (a token rides in the query: COMPARE_TOKENS=1)
    let http = |url: &str| {
        url.split('?')
            .next()
            .unwrap_or(url)
            .replacen("ws://", "http://", 1)
            .trim_end_matches("/v1/sync")
            .to_string()
    };
    // the bytes of every relay (the reconnect goes to another one)
    let all_bytes = || async {
        let mut total = 0;
        for u in &cfg.urls {
            total += relay_bytes(&http(u)).await?;
        }
        anyhow::Ok(total)
    };
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let state = build_state(store, &NodeOptions::default())?;
    let n = cfg.devices * cfg.docs;
    let t = Instant::now();
    let ended = connect(state.clone(), &cfg.urls[0], true)
        .await
        .map_err(anyhow::Error::msg)?;
    anyhow::ensure!(ended.was_idle, "extension fresh sync ended: {ended:?}");
    out.insert("ext_fresh_secs".into(), json!(t.elapsed().as_secs_f64()));
    let held = state.store.summaries()?.len();
    anyhow::ensure!(held == n, "extension device holds {held} of {n}");

    let pick: Vec<(usize, usize)> = (0..RECONNECT_CHANGED)
        .map(|k| ((k + RECONNECT_CHANGED) % cfg.devices, 1 % cfg.docs))
        .collect();
    let raw = change_docs(devices, &pick, shared, cfg.nonce).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = all_bytes().await?;
    let t = Instant::now();
    let ended = connect(state.clone(), cfg.other_url(), true)
        .await
        .map_err(anyhow::Error::msg)?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(ended.was_idle, "extension reconnect ended: {ended:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bytes = all_bytes().await? - before;
    out.insert("ext_reconnect_secs".into(), json!(secs));
    out.insert("ext_reconnect_bytes".into(), json!(bytes));
    out.insert("ext_change_bytes".into(), json!(raw));
    Ok(())
}

async fn measure(cfg: Config, out: &mut BTreeMap<String, Value>) -> anyhow::Result<()> {
    let wires = [
        Arc::new(WireCounters::default()),
        Arc::new(WireCounters::default()),
    ];
    let barriers = [(); 3].map(|_| Arc::new(tokio::sync::Barrier::new(cfg.devices + 1)));
    let shared = Arc::new(std::sync::Mutex::new(Shared::default()));
    let mut cmds = Vec::with_capacity(cfg.devices);
    let mut tasks = Vec::with_capacity(cfg.devices);
    // 1. ingest
    let cpu_before = cfg.server_cpu();
    let db_cpu_before = (cfg.db_pid != 0)
        .then(|| tree_cpu_secs(cfg.db_pid))
        .flatten();
    let db_before = match &cfg.db_url {
        Some(u) => Some(db_counters(u).await?),
        None => None,
    };
    let t = Instant::now();
    for d in 0..cfg.devices {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        cmds.push(tx);
        tasks.push(tokio::spawn(device_task(
            cfg.clone(),
            d,
            wires.clone(),
            barriers.clone(),
            rx,
            shared.clone(),
        )));
    }
    // a failed device never reaches the barrier: watch the tasks too
    let wait = |b: Arc<tokio::sync::Barrier>| async move {
        b.wait().await;
    };
    tokio::select! {
        _ = wait(barriers[0].clone()) => {}
        e = first_failure(&mut tasks) => return Err(e),
    }
    let secs = t.elapsed().as_secs_f64();
    let changes = cfg.devices as u64 * cfg.docs as u64 * cfg.changes;
    eprintln!(
        "compare: ingest {changes} changes in {secs:.2} s ({:.0}/s)",
        changes as f64 / secs
    );
    out.insert("ingest_changes".into(), json!(changes));
    out.insert("ingest_secs".into(), json!(secs));
    out.insert("ingest_rate".into(), json!(changes as f64 / secs));
    if let (Some(before), Some(after)) = (cpu_before, cfg.server_cpu()) {
        // the server's CPU over the ingest, per change (µs)
        let per_change = (after - before) * 1e6 / changes as f64;
        out.insert("ingest_cpu_us_per_change".into(), json!(per_change));
    }
    if let (Some(before), Some(after)) = (db_cpu_before, tree_cpu_secs(cfg.db_pid)) {
        let per_change = (after - before) * 1e6 / changes as f64;
        out.insert("ingest_db_cpu_us_per_change".into(), json!(per_change));
    }
    if let (Some(before), Some(u)) = (db_before, &cfg.db_url) {
        let after = db_counters(u).await?;
        let per = |k: usize| (after[k] - before[k]) / changes as f64;
        out.insert("ingest_db_commits_per_change".into(), json!(per(0)));
        out.insert("ingest_wal_syncs_per_change".into(), json!(per(1)));
        out.insert("ingest_db_writes_per_change".into(), json!(per(2)));
        out.insert("ingest_wal_bytes_per_change".into(), json!(per(3)));
    }
    out.insert("ingest_bytes".into(), json!(wires[0].bytes()));
    out.insert("ingest_frames".into(), json!(wires[0].frames()));

    // 2. edit-to-visibility (the devices' second barrier is inside `visibility`)
    let t = Instant::now();
    tokio::select! {
        _ = wait(barriers[1].clone()) => {}
        e = first_failure(&mut tasks) => return Err(e),
    }
    tokio::select! {
        _ = wait(barriers[2].clone()) => {}
        e = first_failure(&mut tasks) => return Err(e),
    }
    let mut lat = std::mem::take(&mut shared.lock().expect("shared").latencies);
    lat.sort_unstable();
    let expected = cfg.devices as u64 * cfg.edits;
    eprintln!(
        "compare: visibility {} of {expected} edits seen, p50 {} ms, p99 {} ms ({:.1} s)",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        t.elapsed().as_secs_f64()
    );
    out.insert("vis_edits".into(), json!(expected));
    out.insert("vis_seen".into(), json!(lat.len()));
    out.insert("vis_p50_ms".into(), json!(percentile(&lat, 0.5)));
    out.insert("vis_p99_ms".into(), json!(percentile(&lat, 0.99)));
    out.insert("vis_bytes".into(), json!(wires[1].bytes()));

    // 3. fresh device
    let want = shared.lock().expect("shared").heads.clone();
    let n = want.len();
    let wire = Arc::new(WireCounters::default());
    let t = Instant::now();
    let me = PeerId::new(format!("cmp-fresh-{}", uuid::Uuid::new_v4()));
    let mut fresh = Replica::new(Conn::open(&cfg.urls[0], me, wire.clone()).await?);
    for d in 0..cfg.devices {
        for j in 0..cfg.docs {
            let i = fresh.add(Doc::new(doc_id(cfg.nonce, d, j), Automerge::new()));
            fresh.sync_out(i, true).await?;
        }
    }
    let n_docs = fresh.docs.len();
    fresh.pump_docs(0..n_docs, matches(&want)).await?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!("compare: fresh device got {n} documents in {secs:.2} s");
    out.insert("fresh_docs".into(), json!(n));
    out.insert("fresh_secs".into(), json!(secs));
    out.insert("fresh_bytes".into(), json!(wire.bytes()));

    // 4. reconnect, plain protocol
    let Replica { conn, docs, .. } = fresh;
    conn.close().await;
    let pick: Vec<(usize, usize)> = (0..RECONNECT_CHANGED)
        .map(|k| (k % cfg.devices, 0))
        .collect();
    let raw = change_docs(&cmds, &pick, &shared, cfg.nonce).await?;
    let want = shared.lock().expect("shared").heads.clone();
    let wire = Arc::new(WireCounters::default());
    let t = Instant::now();
    // a new peer id, as a restarted automerge-repo client has (sync states
    // are what a client persists)
    let me = PeerId::new(format!("cmp-fresh-{}", uuid::Uuid::new_v4()));
    let mut again = Replica::new(Conn::open(cfg.other_url(), me, wire.clone()).await?);
    for d in docs {
        let state = sync::State::decode(&d.state.encode())?;
        let i = again.add(Doc { state, ..d });
        again.sync_out(i, false).await?;
    }
    let n_docs = again.docs.len();
    again.pump_docs(0..n_docs, matches(&want)).await?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "compare: reconnect ({RECONNECT_CHANGED} of {n} changed) in {secs:.3} s, {} B (changes {raw} B)",
        wire.bytes()
    );
    out.insert("reconnect_secs".into(), json!(secs));
    out.insert("reconnect_bytes".into(), json!(wire.bytes()));
    out.insert("reconnect_frames".into(), json!(wire.frames()));
    out.insert("reconnect_change_bytes".into(), json!(raw));
    again.conn.close().await;

    // 5. permitsync's own client with the feed extension
    if env_u64("COMPARE_EXT", 0) == 1 {
        extension_runs(&cmds, &shared, &cfg, out).await?;
        eprintln!(
            "compare: extension fresh {:.2} s, reconnect {:.3} s, {} B",
            out["ext_fresh_secs"], out["ext_reconnect_secs"], out["ext_reconnect_bytes"]
        );
    }
    drop(cmds);
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The error of the first device task that fails (pending while none does).
async fn first_failure(tasks: &mut [tokio::task::JoinHandle<anyhow::Result<()>>]) -> anyhow::Error {
    loop {
        for t in tasks.iter_mut() {
            if t.is_finished() {
                return match t.await {
                    Ok(Err(e)) => e.context("a device failed"),
                    Ok(Ok(())) => anyhow::anyhow!("a device ended early"),
                    Err(e) => anyhow::anyhow!("a device panicked: {e}"),
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- summary ------------------------------------------------------------------

/// Metrics of the summary table: key, label, whether higher is better.
const METRICS: &[(&str, &str, bool)] = &[
    (
        "ingest_rate",
        "ingest throughput (changes/s acknowledged)",
        true,
    ),
    ("ingest_secs", "ingest wall time (s)", false),
    (
        "ingest_cpu_us_per_change",
        "server CPU per change during ingest (µs)",
        false,
    ),
    (
        "ingest_db_cpu_us_per_change",
        "database CPU per change during ingest (µs)",
        false,
    ),
    (
        "ingest_db_commits_per_change",
        "database commits per change during ingest",
        false,
    ),
    (
        "ingest_db_writes_per_change",
        "database write transactions per change during ingest",
        false,
    ),
    (
        "ingest_wal_syncs_per_change",
        "WAL syncs per change during ingest",
        false,
    ),
    (
        "ingest_wal_bytes_per_change",
        "WAL bytes per change during ingest",
        false,
    ),
    ("ingest_bytes", "ingest bytes on the wire", false),
    ("vis_p50_ms", "edit-to-visibility p50 (ms)", false),
    ("vis_p99_ms", "edit-to-visibility p99 (ms)", false),
    ("vis_seen", "edits seen by followers", true),
    ("fresh_secs", "fresh device initial sync (s)", false),
    ("fresh_bytes", "fresh device bytes", false),
    ("reconnect_secs", "reconnect, plain, 10 changed (s)", false),
    ("reconnect_bytes", "reconnect, plain, bytes", false),
    (
        "reconnect_change_bytes",
        "raw bytes of the 10 changes",
        false,
    ),
    (
        "ext_fresh_secs",
        "fresh device, permitsync client + feed (s)",
        false,
    ),
    (
        "ext_reconnect_secs",
        "reconnect, permitsync feed extension (s)",
        false,
    ),
    (
        "ext_reconnect_bytes",
        "reconnect, feed extension, bytes",
        false,
    ),
    ("ext_change_bytes", "raw bytes of those 10 changes", false),
    ("rss_hwm_mib", "server peak RSS (VmHWM, MiB)", false),
];

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn fmt(x: f64) -> String {
    if x >= 100.0 {
        let s = format!("{:.0}", x);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn summarize(path: &str) {
    let text = std::fs::read_to_string(path).expect("read the results file");
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("a JSON result line");
        let sys = v["system"].as_str().unwrap_or("?").to_string();
        if !order.contains(&sys) {
            order.push(sys.clone());
        }
        by.entry(sys).or_default().push(v);
    }
    // the sled relay is the reference when it ran (not permitsync-pg)
    let ps = order
        .iter()
        .find(|s| *s == "permitsync")
        .or_else(|| order.iter().find(|s| s.starts_with("permitsync")))
        .cloned();
    let others: Vec<&String> = order.iter().filter(|&s| Some(s) != ps.as_ref()).collect();
    let med = |sys: &str, key: &str| {
        median(
            by.get(sys)
                .map(|runs| runs.iter().filter_map(|r| r[key].as_f64()).collect())
                .unwrap_or_default(),
        )
    };
    let mut head = String::from("| metric (median of runs) |");
    let mut rule = String::from("|---|");
    for s in &order {
        head += &format!(" {s} ({} runs) |", by[s].len());
        rule += "---:|";
    }
    if let Some(p) = &ps {
        for o in &others {
            head += &format!(" {p} vs {o} |");
            rule += "---:|";
        }
    }
    println!("{head}\n{rule}");
    for &(key, label, higher_better) in METRICS {
        let vals: Vec<Option<f64>> = order.iter().map(|s| med(s, key)).collect();
        if vals.iter().all(Option::is_none) {
            continue;
        }
        let mut row = format!("| {label} |");
        for v in &vals {
            row += &format!(" {} |", v.map(fmt).unwrap_or_else(|| "–".into()));
        }
        if let Some(p) = &ps {
            for o in &others {
                let ratio = match (med(p, key), med(o, key)) {
                    (Some(a), Some(b)) if a > 0.0 && b > 0.0 => {
                        let r = if higher_better { a / b } else { b / a };
                        format!("{r:.2}× {}", if r >= 1.0 { "better" } else { "worse" })
                    }
                    _ => "–".into(),
                };
                row += &format!(" {ratio} |");
            }
        }
        println!("{row}");
    }
    println!();
    for line in target_lines(&by, ps.as_deref()) {
        println!("{line}");
    }
}

/// The size issue 5's reconnect and fresh-device targets are set for.
const TARGET_DOCS: u64 = 10_000;

/// Issue 5's targets that a comparison run can check, as `RESULT` lines (see
/// `loadkit::result_line`), from the medians of each system's runs. A target
/// whose figure is missing (a system failed every run, or was not run) says
/// `met=unknown`, and so does a size target (reconnect and fresh device, for
/// [`TARGET_DOCS`] documents) measured on fewer documents (`docs=`).
fn target_lines(by: &BTreeMap<String, Vec<Value>>, permitsync: Option<&str>) -> Vec<String> {
    let med = |sys: &str, key: &str| {
        median(
            by.get(sys)
                .map(|runs| runs.iter().filter_map(|r| r[key].as_f64()).collect())
                .unwrap_or_default(),
        )
    };
    let ps = permitsync.unwrap_or("permitsync");
    let runs = |sys: &str| by.get(sys).map_or(0, Vec::len);
    let first = by.get(ps).and_then(|r| r.first());
    let field = |key: &str| first.and_then(|r| r[key].as_u64()).unwrap_or(0);
    let docs = field("devices") * field("docs_per_device");
    let workload = format!(
        "{}x{}x{}",
        field("devices"),
        field("docs_per_device"),
        field("changes_per_doc")
    );
    let context = |others: &[&str]| {
        let mut c = vec![
            ("workload", workload.clone()),
            ("docs", docs.to_string()),
            ("runs", runs(ps).to_string()),
        ];
        for o in others {
            c.push(("runs_of", format!("{o}:{}", runs(o))));
        }
        c
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let ingest = med(ps, "ingest_rate");
    // the reconnect and fresh-device targets are for 10,000 documents: a
    // smaller run shows its figure, but cannot say whether the target is met
    let at_size = |line: String| {
        if docs >= TARGET_DOCS {
            return line;
        }
        let line =
            line.replacen(" met=yes ", " met=unknown ", 1)
                .replacen(" met=no ", " met=unknown ", 1);
        format!("{line} target_docs={TARGET_DOCS}")
    };
    vec![
        result_line(
            "compare.ingest_vs_js",
            ratio(ingest, med("js", "ingest_rate")),
            "x",
            Goal::AtLeast,
            10.0,
            &context(&["js"]),
        ),
        result_line(
            "compare.ingest_vs_samod",
            ratio(ingest, med("samod", "ingest_rate")),
            "x",
            Goal::AtLeast,
            1.0,
            &context(&["samod"]),
        ),
        result_line(
            "compare.ingest_vs_floor",
            ratio(ingest, med("floor", "ingest_rate")),
            "fraction",
            Goal::AtLeast,
            0.5,
            &context(&["floor"]),
        ),
        at_size(result_line(
            "compare.reconnect_feed_ms",
            med(ps, "ext_reconnect_secs").map(|s| s * 1e3),
            "ms",
            Goal::Below,
            100.0,
            &context(&[]),
        )),
        result_line(
            "compare.reconnect_feed_bytes_per_change_byte",
            ratio(med(ps, "ext_reconnect_bytes"), med(ps, "ext_change_bytes")),
            "x",
            Goal::AtMost,
            2.0,
            &context(&[]),
        ),
        at_size(result_line(
            "compare.fresh_device_s",
            med(ps, "fresh_secs"),
            "s",
            Goal::Below,
            2.0,
            &context(&[]),
        )),
    ]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "skipped: run it with `cargo bench --bench compare_load` (see benches/compare.sh)"
        );
        return;
    }
    if let Ok(path) = std::env::var("COMPARE_SUMMARIZE") {
        summarize(&path);
        return;
    }
    let urls =
        list(&std::env::var("COMPARE_URL").expect("COMPARE_URL=ws://HOST:PORT/v1/sync[,ws://...]"));
    assert!(!urls.is_empty(), "COMPARE_URL holds no URL");
    let pids: Vec<u32> = list(&std::env::var("COMPARE_PID").unwrap_or_default())
        .iter()
        .map(|p| {
            p.parse()
                .expect("COMPARE_PID: process ids separated by commas")
        })
        .filter(|&p| p != 0)
        .collect();
    let system = std::env::var("COMPARE_SYSTEM").unwrap_or_else(|_| "server".into());
    let cfg = Config {
        urls,
        devices: env_u64("COMPARE_DEVICES", 50).max(2) as usize,
        docs: env_u64("COMPARE_DOCS", 100).max(2) as usize,
        changes: env_u64("COMPARE_CHANGES", 20).max(1),
        edits: env_u64("COMPARE_EDITS", 50),
        edit_ms: env_u64("COMPARE_EDIT_MS", 100),
        nonce: rand::random(),
        pids: pids.clone(),
        db_pid: env_u64("COMPARE_DB_PID", 0) as u32,
        db_url: std::env::var("COMPARE_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut out = BTreeMap::new();
    out.insert("system".to_string(), json!(system));
    out.insert("devices".into(), json!(cfg.devices));
    out.insert("docs_per_device".into(), json!(cfg.docs));
    out.insert("changes_per_doc".into(), json!(cfg.changes));
    out.insert("relays".into(), json!(cfg.urls.len()));
    let limit = Duration::from_secs(env_u64("COMPARE_TIMEOUT", 900));
    let result = rt.block_on(async {
        tokio::time::timeout(limit, measure(cfg, &mut out))
            .await
            .map_err(|_| anyhow::anyhow!("did not finish within {limit:?} (COMPARE_TIMEOUT)"))?
    });
    if let Err(e) = &result {
        eprintln!("compare: {system}: failed: {e:#}");
        out.insert("error".into(), json!(format!("{e:#}")));
    }
    // the largest relay's peak (one relay: its own)
    if let Some(hwm) = pids
        .iter()
        .filter_map(|&p| memory_kib(p))
        .map(|m| m.1)
        .max()
    {
        out.insert("rss_hwm_mib".into(), json!(hwm as f64 / 1024.0));
    }
    let line = serde_json::to_string(&out).expect("json");
    println!("{line}");
    append_result(&line);
    let failed = out.contains_key("error");
    if failed {
        std::process::exit(1);
    }
}
