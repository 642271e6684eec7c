//! Crash safety: real `permitsync serve` processes are SIGKILLed at random
//! moments while several writer threads hammer their REST API, then restarted
//! on the same data directory.
//!
//! The contract checked (DESIGN.md, Storage): a write is acknowledged only
//! once it is durable. So after every restart the store opens without any
//! repair step (the process starts and serves), and every write that got a 2xx
//! answer before the kill is in the views; a write that was in flight when the
//! process died may or may not be there. Writers retry a failed write on the
//! restarted node (every write they make is idempotent), so by the end every
//! write has been acknowledged once.
//!
//! * `relay_survives_sigkill_under_concurrent_writes`: a relay (tokens file,
//!   four writers with their own device tokens) killed `CRASH_KILLS` times and
//!   restarted on the same port (started again while another process holds
//!   it), with a device mirroring it over a live sync connection
//!   (`serve --connect`); the mirror ends identical to the relay.
//! * `device_survives_sigkill_and_converges_with_relay`: a device node killed
//!   while writing offline, then synced once with a relay (`permitsync sync`);
//!   then killed while writing *and* syncing (`serve --connect`); the device
//!   and the relay end with identical views (`fields` and `heads`).
//! * `a_change_is_never_shipped_before_it_is_durable` (a regression test; fixed by
//!   waiting for durability before generating sync messages, and a fresh actor per open):
//!   the same property in process, deterministic, with a backend whose fsync
//!   can be held or failed and that can forget everything after the last
//!   completed flush.
//!
//! Environment: `CRASH_KILLS` (default 3; e.g. 20 for a stress run),
//! `CRASH_SEED` (default: from the clock; printed, so that a failing run's
//! schedule of kills and writes can be replayed), `RUST_LOG` for the nodes'
//! logs (default `warn`; the logs' tails are printed on failure).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use support::{run_cli, NodeProcess};

const TENANT: &str = "acme";
/// How long all writers may take to notice that the node died.
const PARK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the device and the relay may take to converge.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// One HTTP request, at most.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a restart may wait for its port to be free again.
const PORT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the in-process regression test waits for one of its signals.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(60);

// ---- configuration and a seeded RNG ---------------------------------------

fn kills() -> usize {
    std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(3)
}

fn seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(42)
        })
}

/// splitmix64: small, seedable, good enough for schedules and test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.range(0, items.len() as u64) as usize].clone()
    }

    /// A random (version 4) UUID, as a string.
    fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

// ---- processes -------------------------------------------------------------

fn write_tokens(dir: &Path, tokens: &[(&str, &str)]) -> PathBuf {
    let entries: Vec<Value> = tokens
        .iter()
        .map(|(token, device)| {
            json!({"token": token, "tenant": TENANT, "device": device, "mode": "read-write"})
        })
        .collect();
    let path = dir.join("tokens.json");
    fs::write(
        &path,
        serde_json::to_vec_pretty(&json!({ "tokens": entries })).expect("tokens JSON"),
    )
    .expect("write tokens.json");
    path
}

// ---- a blocking JSON HTTP client -------------------------------------------

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
            .timeout(REQUEST_TIMEOUT)
            // no keep-alive: a pooled connection to a killed node is only noise
            .pool_max_idle_per_host(0)
            .build()
            .expect("an HTTP client");
        Http { rt, client }
    }

    /// The status and the JSON body (Null when not JSON); Err when no answer
    /// came (refused, reset, timed out).
    fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        self.rt.block_on(async {
            let mut req = self.client.request(method.clone(), url);
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let res = req
                .send()
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            let status = res.status().as_u16();
            let text = res
                .text()
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
        })
    }

    fn get(&self, url: &str, token: Option<&str>) -> Result<(u16, Value), String> {
        self.call(reqwest::Method::GET, url, token, None)
    }
}

// ---- the gate: where writers find the node, and wait while it is down -----

#[derive(Default)]
struct GateState {
    /// Bumped on every (re)start.
    generation: u64,
    /// The node's base URL; None while it is down.
    base: Option<String>,
    /// Writers waiting for the node to come back.
    parked: usize,
    /// Writers still running.
    active: usize,
    /// Failed requests while the node was up (timeouts under load).
    transient_errors: u64,
}

#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
    /// Writers start no new write once this is set.
    stop: AtomicBool,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().expect("gate lock")
    }

    /// The node is up at `base`.
    fn open(&self, base: &str) {
        let mut st = self.lock();
        st.generation += 1;
        st.base = Some(base.to_string());
        self.cv.notify_all();
    }

    /// The node is about to go down: writers park on their next failure.
    fn close(&self) {
        self.lock().base = None;
    }

    /// Where to send the next attempt of a write. `failed` is the generation
    /// of the node the previous attempt failed on: if that node is still up
    /// the failure was transient (retry after a pause); otherwise wait until
    /// the node is back.
    fn base_for_attempt(&self, failed: Option<u64>) -> (u64, String) {
        let mut st = self.lock();
        if let (Some(g), Some(base)) = (failed, st.base.clone()) {
            if g == st.generation {
                st.transient_errors += 1;
                drop(st);
                thread::sleep(Duration::from_millis(50));
                return (g, base);
            }
        }
        let mut counted = false;
        loop {
            if let Some(base) = st.base.clone() {
                if failed != Some(st.generation) {
                    if counted {
                        st.parked -= 1;
                    }
                    return (st.generation, base);
                }
            }
            if !counted {
                st.parked += 1;
                counted = true;
                self.cv.notify_all();
            }
            st = self.cv.wait(st).expect("gate wait");
        }
    }

    /// Wait until every running writer is parked (so that no acknowledgement
    /// can still arrive and the ledger is stable).
    fn wait_all_parked(&self) {
        let deadline = Instant::now() + PARK_TIMEOUT;
        let mut st = self.lock();
        while st.parked < st.active {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "writers did not notice the kill within {PARK_TIMEOUT:?} ({} of {} parked)",
                st.parked,
                st.active
            );
            st = self.cv.wait_timeout(st, left).expect("gate wait").0;
        }
    }

    fn transient_errors(&self) -> u64 {
        self.lock().transient_errors
    }
}

/// Counts a writer as active while it lives (also when it panics).
struct ActiveWriter(Arc<Gate>);

impl ActiveWriter {
    fn new(gate: &Arc<Gate>) -> ActiveWriter {
        gate.lock().active += 1;
        ActiveWriter(gate.clone())
    }
}

impl Drop for ActiveWriter {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        st.active -= 1;
        self.0.cv.notify_all();
    }
}

// ---- the ledger of acknowledged writes -------------------------------------

/// One acknowledged write, as it must show in the view.
#[derive(Clone, Debug)]
enum Acked {
    Create {
        id: String,
        ppe: Vec<String>,
        checklist: Vec<String>,
    },
    /// Checked through [`Ledger::titles`] (last-writer-wins).
    Title {
        id: String,
    },
    Ppe {
        id: String,
        item: String,
    },
    Tick {
        id: String,
        item: String,
    },
    Gas {
        id: String,
        reading: String,
        gas: String,
        value: f64,
    },
}

impl Acked {
    fn id(&self) -> &str {
        match self {
            Acked::Create { id, .. }
            | Acked::Title { id }
            | Acked::Ppe { id, .. }
            | Acked::Tick { id, .. }
            | Acked::Gas { id, .. } => id,
        }
    }
}

#[derive(Default)]
struct Ledger {
    acked: Vec<Acked>,
    /// Permits whose creation was acknowledged, in order.
    permits: Vec<String>,
    /// Per permit, every title written to it in order (one writer owns a
    /// permit's title), and whether that write was acknowledged yet.
    titles: HashMap<String, Vec<(String, bool)>>,
    /// Attempts that got no answer (the node died under them).
    failed_attempts: u64,
}

type SharedLedger = Arc<Mutex<Ledger>>;

fn lock_ledger(ledger: &SharedLedger) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// What verification found.
#[derive(Default, Debug)]
struct Verified {
    checked: usize,
    lost: Vec<String>,
}

/// Check every acknowledged write of `ledger` against the views served at
/// `base`.
fn verify(http: &Http, base: &str, token: Option<&str>, ledger: &Ledger) -> Verified {
    let mut views: BTreeMap<String, Result<Value, String>> = BTreeMap::new();
    let mut out = Verified::default();
    let mut view_of = |id: &str| -> Result<Value, String> {
        views
            .entry(id.to_string())
            .or_insert_with(|| {
                let url = format!("{base}/v1/entities/{id}");
                // the node's per-token rate limit answers 429 to a verifier
                // reading hundreds of permits at once: wait as it asks
                for _ in 0..120 {
                    match http.get(&url, token) {
                        Ok((429, _)) => thread::sleep(Duration::from_millis(500)),
                        Ok((200, view)) => return Ok(view),
                        Ok((status, body)) => return Err(format!("GET {url}: {status} {body}")),
                        Err(e) => panic!("verification: {e}"),
                    }
                }
                panic!("verification: GET {url} still rate limited after 60 s")
            })
            .clone()
    };
    for w in &ledger.acked {
        out.checked += 1;
        let view = match view_of(w.id()) {
            Ok(view) => view,
            Err(e) => {
                out.lost.push(format!("{w:?}: the entity is missing ({e})"));
                continue;
            }
        };
        let f = &view["fields"];
        let present = match w {
            Acked::Create { ppe, checklist, .. } => {
                view["type"] == "permit"
                    && ppe.iter().all(|p| has_item(&f["ppe_requirements"], p))
                    && checklist
                        .iter()
                        .all(|c| f["safety_checklist"].get(c).is_some())
            }
            Acked::Title { .. } => true, // below
            Acked::Ppe { item, .. } => has_item(&f["ppe_requirements"], item),
            Acked::Tick { item, .. } => f["safety_checklist"][item.as_str()] == true,
            Acked::Gas {
                reading,
                gas,
                value,
                ..
            } => {
                let r = &f["gas_readings"][reading.as_str()];
                r["gas"] == gas.as_str() && r["value"].as_f64() == Some(*value)
            }
        };
        if !present {
            out.lost.push(format!("{w:?} not in the view: {view}"));
        }
    }
    // last-writer-wins titles: the view shows the last acknowledged title or
    // a later one (written, maybe not acknowledged); anything else means the
    // acknowledged titles after the shown one were lost
    for id in &ledger.permits {
        let Some(titles) = ledger.titles.get(id) else {
            continue;
        };
        let Some(last_acked) = titles.iter().rposition(|(_, acked)| *acked) else {
            continue;
        };
        let Ok(view) = view_of(id) else {
            continue; // reported with its creation
        };
        let shown = view["fields"]["title"].as_str().unwrap_or_default();
        let at = titles.iter().rposition(|(t, _)| t == shown);
        if at.is_none_or(|at| at < last_acked) {
            let since = at.map_or(0, |a| a + 1);
            for (t, acked) in &titles[since..=last_acked] {
                if *acked {
                    out.lost.push(format!(
                        "title {t:?} of permit {id} (acknowledged) lost: the view shows {shown:?}"
                    ));
                }
            }
        }
    }
    out
}

fn has_item(list: &Value, item: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(item)))
}

// ---- writers ---------------------------------------------------------------

/// One write: the request and what to record once it is acknowledged.
struct Write {
    method: reqwest::Method,
    path: String,
    body: Value,
    acked: Vec<Acked>,
    /// A new permit (its id), when this write creates one.
    creates: Option<String>,
    /// A title written to a permit: (permit, title).
    title: Option<(String, String)>,
}

/// A writer thread's own state.
struct Writer {
    index: usize,
    rng: Rng,
    token: Option<String>,
    /// Permits this writer created (it alone writes their titles).
    own: Vec<String>,
    counter: u64,
}

impl Writer {
    fn next_write(&mut self, ledger: &SharedLedger) -> Write {
        self.counter += 1;
        let (w, n) = (self.index, self.counter);
        let roll = self.rng.range(0, 100);
        if self.own.is_empty() || roll < 12 {
            let id = self.rng.uuid();
            let title = format!("w{w}-p{n}");
            let ppe = vec!["helmet".to_string(), format!("ppe-w{w}-{n}-init")];
            let checklist = vec![format!("chk-w{w}-{n}-a"), format!("chk-w{w}-{n}-b")];
            return Write {
                method: reqwest::Method::POST,
                path: "/v1/entities".into(),
                body: json!({"type": "permit", "id": id, "title": title,
                    "location": format!("Bay {w}"), "ppe_requirements": ppe,
                    "safety_checklist": checklist}),
                acked: vec![Acked::Create {
                    id: id.clone(),
                    ppe,
                    checklist,
                }],
                creates: Some(id.clone()),
                title: Some((id, title)),
            };
        }
        let own = self.rng.pick(&self.own);
        // any acknowledged permit, also other writers': same-document contention
        let any = {
            let l = lock_ledger(ledger);
            let i = self.rng.range(0, l.permits.len() as u64) as usize;
            l.permits[i].clone()
        };
        let patch = |id: &str, body: Value, acked: Vec<Acked>, title: Option<String>| Write {
            method: reqwest::Method::PATCH,
            path: format!("/v1/entities/{id}"),
            body,
            acked,
            creates: None,
            title: title.map(|t| (id.to_string(), t)),
        };
        match roll {
            12..=36 => {
                let title = format!("w{w}-t{n}");
                patch(
                    &own,
                    json!({ "title": title }),
                    vec![Acked::Title { id: own.clone() }],
                    Some(title),
                )
            }
            37..=52 => {
                let item = format!("ppe-w{w}-{n}");
                patch(
                    &any,
                    json!({ "ppe_add": [item] }),
                    vec![Acked::Ppe {
                        id: any.clone(),
                        item,
                    }],
                    None,
                )
            }
            53..=68 => {
                let item = format!("chk-w{w}-{n}");
                patch(
                    &any,
                    json!({ "checklist": { item.as_str(): true } }),
                    vec![Acked::Tick {
                        id: any.clone(),
                        item,
                    }],
                    None,
                )
            }
            69..=84 => {
                let reading = self.rng.uuid();
                let gas = self.rng.pick(&["H2S", "O2", "LEL", "CO"]).to_string();
                let value = self.rng.range(0, 10_000) as f64 / 100.0;
                Write {
                    method: reqwest::Method::POST,
                    path: format!("/v1/entities/{any}/gas-readings"),
                    body: json!({"id": reading, "gas": gas, "value": value, "unit": "ppm",
                        "min": 0.0, "max": 1000.0, "taken_at": 1_700_000_000_000_i64 + n as i64}),
                    acked: vec![Acked::Gas {
                        id: any,
                        reading,
                        gas,
                        value,
                    }],
                    creates: None,
                    title: None,
                }
            }
            _ => {
                // several edits as one change
                let title = format!("w{w}-t{n}-multi");
                let (ppe, chk) = (format!("ppe-w{w}-{n}-m"), format!("chk-w{w}-{n}-m"));
                patch(
                    &own,
                    json!({"title": title, "ppe_add": [ppe], "checklist": { chk.as_str(): true }}),
                    vec![
                        Acked::Title { id: own.clone() },
                        Acked::Ppe {
                            id: own.clone(),
                            item: ppe,
                        },
                        Acked::Tick {
                            id: own.clone(),
                            item: chk,
                        },
                    ],
                    Some(title),
                )
            }
        }
    }

    /// Send `write` until it is acknowledged (retrying on the restarted node).
    fn run_write(&mut self, http: &Http, gate: &Gate, ledger: &SharedLedger, write: Write) {
        if let Some((id, title)) = &write.title {
            lock_ledger(ledger)
                .titles
                .entry(id.clone())
                .or_default()
                .push((title.clone(), false));
        }
        let mut failed: Option<u64> = None;
        let mut retried = false;
        loop {
            let (generation, base) = gate.base_for_attempt(failed);
            let url = format!("{base}{}", write.path);
            match http.call(
                write.method.clone(),
                &url,
                self.token.as_deref(),
                Some(&write.body),
            ) {
                Ok((status, _)) if (200..300).contains(&status) => break,
                // a retried creation that had become durable before the kill
                Ok((409, body)) if retried && body["error"] == "already_exists" => break,
                Ok((status, body)) => panic!(
                    "writer {}: {} {url} {}: unexpected answer {status} {body}",
                    self.index, write.method, write.body
                ),
                Err(_) => {
                    lock_ledger(ledger).failed_attempts += 1;
                    failed = Some(generation);
                    retried = true;
                }
            }
        }
        let mut l = lock_ledger(ledger);
        if let Some(id) = &write.creates {
            l.permits.push(id.clone());
            self.own.push(id.clone());
        }
        if let Some((id, title)) = &write.title {
            if let Some(t) = l
                .titles
                .get_mut(id)
                .and_then(|ts| ts.iter_mut().rev().find(|(t, _)| t == title))
            {
                t.1 = true;
            }
        }
        l.acked.extend(write.acked);
    }
}

/// Start `count` writer threads; each writes until the gate's stop flag is set.
fn spawn_writers(
    count: usize,
    seed: u64,
    tokens: &[Option<String>],
    gate: &Arc<Gate>,
    ledger: &SharedLedger,
) -> Vec<thread::JoinHandle<()>> {
    (0..count)
        .map(|index| {
            let gate = gate.clone();
            let ledger = ledger.clone();
            let token = tokens[index % tokens.len()].clone();
            let active = ActiveWriter::new(&gate);
            thread::Builder::new()
                .name(format!("writer-{index}"))
                .spawn(move || {
                    let _active = active;
                    let http = Http::new();
                    let mut w = Writer {
                        index,
                        rng: Rng::new(
                            seed ^ (index as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407),
                        ),
                        token,
                        own: Vec::new(),
                        counter: 0,
                    };
                    while !gate.stop.load(Ordering::SeqCst) {
                        let write = w.next_write(&ledger);
                        w.run_write(&http, &gate, &ledger, write);
                    }
                })
                .expect("spawn a writer")
        })
        .collect()
}

fn join_writers(writers: Vec<thread::JoinHandle<()>>) {
    for w in writers {
        if let Err(e) = w.join() {
            std::panic::resume_unwind(e);
        }
    }
}

/// The node serves again after a crash: health and status answer.
fn assert_serves(http: &Http, node: &NodeProcess, token: Option<&str>) {
    for path in ["/healthz", "/v1/status"] {
        let url = format!("{}{path}", node.base);
        match http.get(&url, token) {
            Ok((200, _)) => {}
            other => panic!("{url} after restart: {other:?}\n{}", node.log_tail()),
        }
    }
}

fn assert_nothing_lost(v: &Verified, when: &str, seed: u64, logs: &dyn Fn() -> String) {
    if !v.lost.is_empty() {
        let shown: Vec<&String> = v.lost.iter().take(20).collect();
        panic!(
            "{when}: {} of {} acknowledged writes lost (CRASH_SEED={seed}):\n{shown:#?}\n{}",
            v.lost.len(),
            v.checked,
            logs()
        );
    }
}

/// Let the writers run against `node` for a random 50..500 ms, SIGKILL it,
/// wait until every writer noticed, restart it on the same data directory and
/// check that it serves and holds every acknowledged write. Returns the
/// restarted node (the writers are let loose on it by the caller).
#[allow(clippy::too_many_arguments)]
fn kill_and_restart(
    node: &mut NodeProcess,
    restart: &dyn Fn() -> NodeProcess,
    rng: &mut Rng,
    http: &Http,
    token: Option<&str>,
    gate: &Gate,
    ledger: &SharedLedger,
    seed: u64,
    when: &str,
) -> usize {
    thread::sleep(Duration::from_millis(rng.range(50, 500)));
    gate.close();
    node.sigkill();
    gate.wait_all_parked();
    *node = restart();
    assert_serves(http, node, token);
    let v = verify(http, &node.base, token, &lock_ledger(ledger));
    assert_nothing_lost(&v, when, seed, &|| node.log_tail());
    gate.open(&node.base);
    v.checked
}

/// Start a node on the fixed address of `options` (a restart on the port its
/// peers dial). Once the old process is gone the kernel may hand that port to
/// any other process as an ephemeral port; such a process holds it only for a
/// moment, so a node that cannot listen is started again, for up to
/// [`PORT_TIMEOUT`].
fn start_on_its_port(options: &support::NodeOptions) -> NodeProcess {
    let deadline = Instant::now() + PORT_TIMEOUT;
    loop {
        match options.try_start() {
            Ok(node) => return node,
            Err(e) if e.log.contains("cannot listen on") && Instant::now() < deadline => {
                eprintln!(
                    "the port is taken, starting again: {}",
                    e.log.lines().last().unwrap_or_default()
                );
                thread::sleep(Duration::from_millis(250));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

// ---- the tests -------------------------------------------------------------

#[test]
fn relay_survives_sigkill_under_concurrent_writes() {
    const WRITERS: usize = 4;
    const MIRROR_TOKEN: &str = "tok-mirror";
    let (kills, seed) = (kills(), seed());
    println!("relay crash test: CRASH_KILLS={kills} CRASH_SEED={seed}");
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let mut device_tokens: Vec<(String, String)> = (0..WRITERS)
        .map(|i| (format!("tok-writer-{i}"), format!("tablet-{i}")))
        .collect();
    device_tokens.push((MIRROR_TOKEN.into(), "mirror".into()));
    let pairs: Vec<(&str, &str)> = device_tokens
        .iter()
        .map(|(t, d)| (t.as_str(), d.as_str()))
        .collect();
    let tokens_file = write_tokens(dir, &pairs);
    let tokens_arg = tokens_file.to_str().expect("a UTF-8 temp path").to_string();
    let data = dir.join("relay-data");
    let log = dir.join("relay.stderr.log");
    let relay_options = NodeProcess::options(&data)
        .name("relay")
        .log(&log)
        .args(&["--tokens", &tokens_arg]);
    let mut relay = relay_options.start();
    // restarts reuse the port, so that the mirror's --connect URL stays valid
    // (the writers would follow a new one); the port is retried while
    // another process holds it
    let relay_options = relay_options.listen(relay.addr());
    let restart = || start_on_its_port(&relay_options);
    let reader = Some(device_tokens[0].0.as_str());

    // a device that mirrors the relay over a live sync connection while the
    // relay is killed under it
    let mirror_url = relay.sync_url_with_token(MIRROR_TOKEN);
    let mirror = NodeProcess::options(&dir.join("mirror-data"))
        .name("mirror")
        .log(&dir.join("mirror.stderr.log"))
        .args(&["--connect", &mirror_url])
        .start();

    let http = Http::new();
    let gate = Arc::new(Gate::default());
    let ledger = SharedLedger::default();
    gate.open(&relay.base);
    let tokens: Vec<Option<String>> = device_tokens[..WRITERS]
        .iter()
        .map(|(t, _)| Some(t.clone()))
        .collect();
    let writers = spawn_writers(WRITERS, seed, &tokens, &gate, &ledger);

    let mut rng = Rng::new(seed);
    let mut checks = 0;
    for k in 1..=kills {
        checks += kill_and_restart(
            &mut relay,
            &restart,
            &mut rng,
            &http,
            reader,
            &gate,
            &ledger,
            seed,
            &format!("relay, after kill {k} of {kills}"),
        );
    }
    thread::sleep(Duration::from_millis(300));
    gate.stop.store(true, Ordering::SeqCst);
    join_writers(writers);

    // at the end: on the live relay, and once more after a last kill
    let logs = || format!("{}\n{}", relay.log_tail(), mirror.log_tail());
    let live = verify(&http, &relay.base, reader, &lock_ledger(&ledger));
    assert_nothing_lost(&live, "relay, at the end", seed, &logs);
    relay.sigkill();
    relay = restart();
    let logs = || format!("{}\n{}", relay.log_tail(), mirror.log_tail());
    assert_serves(&http, &relay, reader);
    let l = lock_ledger(&ledger);
    let last = verify(&http, &relay.base, reader, &l);
    assert_nothing_lost(&last, "relay, after the final kill", seed, &logs);
    // every write ended acknowledged: titles are exact now
    for id in &l.permits {
        let (_, view) = http
            .get(&format!("{}/v1/entities/{id}", relay.base), reader)
            .expect("GET the permit");
        let expected = l.titles.get(id).and_then(|t| t.last()).map(|(t, _)| t);
        assert_eq!(
            view["fields"]["title"].as_str(),
            expected.map(String::as_str),
            "title of {id}"
        );
    }
    // the mirror converges on the relay
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    while let Some(diff) = diverging(&http, &l, &mirror, &relay, MIRROR_TOKEN) {
        assert!(
            Instant::now() < deadline,
            "the mirror did not converge on the relay within {CONVERGE_TIMEOUT:?} \
             (CRASH_SEED={seed}):\n{diff}\n{}",
            logs()
        );
        thread::sleep(Duration::from_millis(200));
    }
    println!(
        "relay crash test: kills survived {}, acknowledged writes {} (checked {} times in all, \
         over {} permits), attempts cut off by a kill {}, transient errors {}, writes lost 0, \
         mirror converged, {:.1} s",
        kills + 1,
        l.acked.len(),
        checks + live.checked + last.checked,
        l.permits.len(),
        l.failed_attempts,
        gate.transient_errors(),
        started.elapsed().as_secs_f64()
    );
    assert!(!l.permits.is_empty(), "the writers created no permit");
}

/// Every permit of the ledger has the same `fields` and `heads` on both nodes.
/// Returns the first difference.
fn diverging(
    http: &Http,
    ledger: &Ledger,
    device: &NodeProcess,
    relay: &NodeProcess,
    token: &str,
) -> Option<String> {
    for id in &ledger.permits {
        let get = |node: &NodeProcess, token: Option<&str>| {
            let url = format!("{}/v1/entities/{id}", node.base);
            match http.get(&url, token) {
                Ok((200, v)) => Ok(v),
                other => Err(format!("GET {url}: {other:?}")),
            }
        };
        let d = match get(device, None) {
            Ok(v) => v,
            Err(e) => return Some(e),
        };
        let r = match get(relay, Some(token)) {
            Ok(v) => v,
            Err(e) => return Some(e),
        };
        if d["fields"] != r["fields"] || d["heads"] != r["heads"] {
            return Some(format!("permit {id}\ndevice: {d}\nrelay:  {r}"));
        }
    }
    None
}

#[test]
fn device_survives_sigkill_and_converges_with_relay() {
    const WRITERS: usize = 2;
    const TOKEN: &str = "tok-field-tablet";
    let (kills, seed) = (kills(), seed());
    println!("device crash test: CRASH_KILLS={kills} CRASH_SEED={seed}");
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let tokens_file = write_tokens(dir, &[(TOKEN, "field-tablet")]);
    let tokens_arg = tokens_file.to_str().expect("a UTF-8 temp path").to_string();
    let relay_data = dir.join("relay-data");
    let relay_log = dir.join("relay.stderr.log");
    let relay = NodeProcess::options(&relay_data)
        .name("relay")
        .log(&relay_log)
        .args(&["--tokens", &tokens_arg])
        .start();
    let sync_url = relay.sync_url_with_token(TOKEN);

    let device_data = dir.join("device-data");
    let device_log = dir.join("device.stderr.log");
    let offline_options = NodeProcess::options(&device_data)
        .name("device")
        .log(&device_log);
    let online_options = offline_options.clone().args(&["--connect", &sync_url]);
    let offline = || offline_options.start();
    let online = || online_options.start();
    let http = Http::new();
    let gate = Arc::new(Gate::default());
    let ledger = SharedLedger::default();
    let mut rng = Rng::new(seed);
    let mut kills_survived = 0;

    // 1. offline: write locally, SIGKILL, restart, check
    let mut device = offline();
    gate.open(&device.base);
    let writers = spawn_writers(WRITERS, seed, &[None], &gate, &ledger);
    for k in 1..=kills {
        kill_and_restart(
            &mut device,
            &offline,
            &mut rng,
            &http,
            None,
            &gate,
            &ledger,
            seed,
            &format!("device (offline), after kill {k} of {kills}"),
        );
        kills_survived += 1;
    }
    // the last kill lands while writing; the writers wait for the device
    thread::sleep(Duration::from_millis(rng.range(50, 500)));
    gate.close();
    device.sigkill();
    kills_survived += 1;
    gate.wait_all_parked();

    // 2. a one-shot sync of the crashed store with the relay
    let out = run_cli(&device_data, &["sync", &sync_url, "--timeout", "60"]);
    assert!(
        out.status.success(),
        "permitsync sync failed ({}):\n{}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        relay.log_tail()
    );
    let logs = |device: &NodeProcess| format!("{}\n{}", device.log_tail(), relay.log_tail());
    {
        let l = lock_ledger(&ledger);
        let on_relay = verify(&http, &relay.base, Some(TOKEN), &l);
        assert_nothing_lost(
            &on_relay,
            "relay, after the device's one-shot sync",
            seed,
            &|| relay.log_tail(),
        );
        let check = offline();
        assert_serves(&http, &check, None);
        let on_device = verify(&http, &check.base, None, &l);
        assert_nothing_lost(&on_device, "device, after its one-shot sync", seed, &|| {
            logs(&check)
        });
        if let Some(diff) = diverging(&http, &l, &check, &relay, TOKEN) {
            panic!(
                "after a one-shot sync the device and the relay differ (CRASH_SEED={seed}):\n\
                 {diff}\n{}",
                logs(&check)
            );
        }
        drop(check);
    }

    // 3. online: write while syncing with the relay, SIGKILL, restart
    device = online();
    gate.open(&device.base);
    for k in 1..=kills {
        kill_and_restart(
            &mut device,
            &online,
            &mut rng,
            &http,
            None,
            &gate,
            &ledger,
            seed,
            &format!("device (online), after kill {k} of {kills}"),
        );
        kills_survived += 1;
    }
    thread::sleep(Duration::from_millis(300));
    gate.stop.store(true, Ordering::SeqCst);
    join_writers(writers);

    // the device's sync connection brings the relay up to date
    let l = lock_ledger(&ledger);
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    while let Some(diff) = diverging(&http, &l, &device, &relay, TOKEN) {
        assert!(
            Instant::now() < deadline,
            "the device and the relay did not converge within {CONVERGE_TIMEOUT:?} \
             (CRASH_SEED={seed}):\n{diff}\n{}",
            logs(&device)
        );
        thread::sleep(Duration::from_millis(200));
    }
    let on_device = verify(&http, &device.base, None, &l);
    assert_nothing_lost(&on_device, "device, at the end", seed, &|| logs(&device));
    let on_relay = verify(&http, &relay.base, Some(TOKEN), &l);
    assert_nothing_lost(&on_relay, "relay, at the end", seed, &|| logs(&device));
    println!(
        "device crash test: kills survived {kills_survived}, acknowledged writes {} over {} \
         permits (verified on the device and on the relay), attempts cut off by a kill {}, \
         transient errors {}, writes lost 0, converged, {:.1} s",
        l.acked.len(),
        l.permits.len(),
        l.failed_attempts,
        gate.transient_errors(),
        started.elapsed().as_secs_f64()
    );
}

// ---- a change shipped to a peer before it was durable ----------------------

/// What a flush of [`HeldFlushBackend`] does once it started.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum FlushGate {
    /// Completes.
    #[default]
    Open,
    /// Waits until the gate changes.
    Held,
    /// The next flush fails (the write it covers is not durable); the gate
    /// is `Held` again after it.
    FailOne,
}

/// What the regression test waits for: a flush started, or the device's
/// answer to its peer.
#[derive(Debug)]
enum Signal {
    FlushStarted,
    Reply(Result<Option<automerge::sync::Message>, String>),
}

/// A backend whose flush (fsync) can be held or failed, that reports each
/// flush it starts, and that can "crash": a store reopened on
/// [`HeldFlushBackend::after_crash`] sees only what the last completed flush
/// covered.
#[derive(Default)]
struct HeldFlushBackend {
    live: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    durable: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    gate: Mutex<FlushGate>,
    gate_changed: Condvar,
    signals: Mutex<Option<std::sync::mpsc::Sender<Signal>>>,
}

impl HeldFlushBackend {
    fn live(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_gate(&self, gate: FlushGate) {
        *self.gate.lock().unwrap_or_else(|e| e.into_inner()) = gate;
        self.gate_changed.notify_all();
    }

    /// Send [`Signal::FlushStarted`] to `to` whenever a flush starts.
    fn report_flushes(&self, to: std::sync::mpsc::Sender<Signal>) {
        *self.signals.lock().unwrap_or_else(|e| e.into_inner()) = Some(to);
    }

    /// The disk as a SIGKILL would leave it.
    fn after_crash(&self) -> HeldFlushBackend {
        let durable = self
            .durable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        HeldFlushBackend {
            live: Mutex::new(durable.clone()),
            durable: Mutex::new(durable),
            ..HeldFlushBackend::default()
        }
    }
}

impl permitsync::store::Backend for HeldFlushBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, permitsync::store::StorageError> {
        Ok(self.live().get(key).cloned())
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<permitsync::store::Pair>, permitsync::store::StorageError> {
        Ok(self
            .live()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn last_with_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<Option<permitsync::store::Pair>, permitsync::store::StorageError> {
        Ok(self
            .live()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .last()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn apply(
        &self,
        batch: Vec<permitsync::store::BatchOp>,
    ) -> Result<(), permitsync::store::StorageError> {
        let mut live = self.live();
        for (k, v) in batch {
            match v {
                Some(v) => live.insert(k, v),
                None => live.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), permitsync::store::StorageError> {
        // an fsync covers what was applied before it started
        let covered = self.live().clone();
        if let Some(to) = &*self.signals.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = to.send(Signal::FlushStarted);
        }
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match *gate {
                FlushGate::Open => break,
                FlushGate::Held => {
                    gate = self
                        .gate_changed
                        .wait(gate)
                        .unwrap_or_else(|e| e.into_inner());
                }
                FlushGate::FailOne => {
                    *gate = FlushGate::Held;
                    return Err(permitsync::store::StorageError::new(
                        "fsync failed (injected)",
                    ));
                }
            }
        }
        drop(gate);
        *self.durable.lock().unwrap_or_else(|e| e.into_inner()) = covered;
        Ok(())
    }
}

/// Run the automerge sync protocol for `id` between two stores until neither
/// has anything to say; the first error, if any.
fn sync_stores(
    a: &permitsync::store::Store,
    b: &permitsync::store::Store,
    id: permitsync::EntityId,
) -> Result<(), String> {
    let (mut sa, mut sb) = (automerge::sync::State::new(), automerge::sync::State::new());
    for _ in 0..20 {
        let to_b = a.generate_sync(id, &mut sa).map_err(|e| e.to_string())?;
        if let Some(m) = &to_b {
            b.receive_sync(id, &mut sb, m.clone())
                .map_err(|e| format!("b receiving: {e}"))?;
        }
        let to_a = b.generate_sync(id, &mut sb).map_err(|e| e.to_string())?;
        if let Some(m) = &to_a {
            a.receive_sync(id, &mut sa, m.clone())
                .map_err(|e| format!("a receiving: {e}"))?;
        }
        if to_b.is_none() && to_a.is_none() {
            return Ok(());
        }
    }
    Ok(())
}

/// A device's change that reached a peer before it was durable, then lost in
/// a crash: the restarted device writes its next change with the same actor
/// and sequence number, and the two replicas can never merge that document
/// again (automerge refuses a second change with the same actor and seq).
///
/// Deterministic, in process. The device's write is applied in memory while
/// its fsync is held; then that fsync fails, so the write is never
/// acknowledged and is not durable (`Store::persist` releases the document's
/// lock before waiting for the flush, and `Store::generate_sync` reads the
/// in-memory document, so a message may carry changes that are not durable
/// yet). Meanwhile the device answers its peer. Two positive signals decide:
/// the answer arrives (with the change: shipped), or the device starts a
/// flush of its own first (it waits for durability before answering: not
/// shipped; that flush is held for good). Then the device "crashes". In a
/// real node the window is one fsync long; the SIGKILL tests above rarely
/// land in it.
#[test]
fn a_change_is_never_shipped_before_it_is_durable() {
    use permitsync::store::{Store, StoreOptions};
    use permitsync::write::{Edit, NewPermit};
    use std::sync::mpsc;

    let disk = Arc::new(HeldFlushBackend::default());
    let device = Store::with_backend(disk.clone(), StoreOptions::default()).expect("device");
    let relay = Store::with_backend(
        Arc::new(permitsync::store::MemBackend::new()),
        StoreOptions::default(),
    )
    .expect("relay");
    let id = device
        .create_permit(NewPermit {
            title: "Created".into(),
            ..Default::default()
        })
        .expect("create");
    sync_stores(&device, &relay, id).expect("first sync");
    // the relay opens a new exchange; the device takes its message in before
    // the write (a message that brings nothing new makes the device flush
    // what it holds, which would hide the window)
    let mut relay_state = automerge::sync::State::new();
    let mut device_state = automerge::sync::State::new();
    if let Some(m) = relay
        .generate_sync(id, &mut relay_state)
        .expect("relay msg")
    {
        device
            .receive_sync(id, &mut device_state, m)
            .expect("the device receives the relay's message");
    }

    // a write whose fsync has not finished: not acknowledged
    let (signal, signals) = mpsc::channel();
    disk.report_flushes(signal.clone());
    disk.set_gate(FlushGate::Held);
    let before = device.heads(id).expect("heads");
    let writer = {
        let device = device.clone();
        thread::spawn(move || {
            device.edit(
                id,
                Edit::SetField {
                    field: "title".into(),
                    value: "Never acknowledged".into(),
                },
            )
        })
    };
    match signals.recv_timeout(SIGNAL_TIMEOUT) {
        Ok(Signal::FlushStarted) => {}
        other => panic!("expected the writer's flush to start, got {other:?}"),
    }
    assert_ne!(
        device.heads(id).expect("heads"),
        before,
        "the edit is in memory"
    );
    // the device answers the relay now, and the write's fsync fails
    {
        let device = device.clone();
        thread::spawn(move || {
            let reply = device
                .generate_sync(id, &mut device_state)
                .map_err(|e| e.to_string());
            let _ = signal.send(Signal::Reply(reply));
        });
    }
    disk.set_gate(FlushGate::FailOne);
    let shipped = match signals.recv_timeout(SIGNAL_TIMEOUT) {
        // it waits for the change to be durable before it answers
        Ok(Signal::FlushStarted) => false,
        Ok(Signal::Reply(Ok(Some(m)))) => {
            relay
                .receive_sync(id, &mut relay_state, m)
                .expect("relay receives");
            relay.view(id).expect("relay view").fields["title"] == "Never acknowledged"
        }
        Ok(Signal::Reply(Ok(None))) => {
            panic!("the device had nothing to send: the test no longer opens the window")
        }
        Ok(Signal::Reply(Err(e))) => panic!("the device could not answer the relay: {e}"),
        Err(e) => panic!("neither an answer nor a flush within {SIGNAL_TIMEOUT:?}: {e}"),
    };
    let written = writer.join().expect("the writer thread");
    assert!(
        written.is_err(),
        "a write whose fsync failed is not acknowledged: {written:?}"
    );

    // SIGKILL before any later fsync returned: the old process and its
    // blocked threads are gone
    let crashed = Arc::new(disk.after_crash());
    let device = Store::with_backend(crashed, StoreOptions::default()).expect("restart");
    assert_eq!(
        device.view(id).expect("device view").fields["title"],
        "Created",
        "the unacknowledged write is gone from the device (allowed)"
    );
    device
        .edit(
            id,
            Edit::SetField {
                field: "title".into(),
                value: "After the restart".into(),
            },
        )
        .expect("a write after the restart");
    let synced = sync_stores(&device, &relay, id);
    assert!(
        !shipped && synced.is_ok(),
        "the relay received a change the device had not made durable ({shipped}); after the \
         device lost it in a crash and wrote again, syncing fails: {synced:?}\n\
         device heads {:?}\nrelay heads  {:?}",
        device.heads(id).expect("heads"),
        relay.heads(id).expect("heads")
    );
}
