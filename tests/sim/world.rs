//! The simulated world: nodes, connections, the seeded scheduler that picks
//! one event at a time, and the invariant checks run after every event.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use automerge::ChangeHash;
use permitsync::identity::{NodeKey, Role, RoleSet};
use permitsync::model::{EntityId, EntityType, IsolationStatus, DEFAULT_TENANT};
use permitsync::store::{CertificateRequest, StoreOptions};

use super::net::Conn;
use super::node::{Node, SimClock};
use super::params::Params;
use crate::support::rng::Rng;

/// Counters of one run (summed over a stress run).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub events: usize,
    pub frames: usize,
    pub hub_events: usize,
    pub writes_ok: usize,
    pub writes_noop: usize,
    pub writes_refused: usize,
    pub raw_writes: usize,
    pub connects: usize,
    pub drops: usize,
    pub half_open: usize,
    pub dups: usize,
    pub garbage: usize,
    pub partitions: usize,
    pub crashes: usize,
    pub lossy_crashes: usize,
    pub revocations: usize,
    pub final_frames: usize,
    /// Runs (and sessions) that converged but stayed pending at the end.
    pub stuck_runs: usize,
    pub stuck_sessions: usize,
    /// ... of which the peer does not hold the same heads (not crossed messages).
    pub stuck_unexplained: usize,
}

impl Stats {
    /// Add another run's counters.
    pub fn add(&mut self, o: &Stats) {
        self.events += o.events;
        self.frames += o.frames;
        self.hub_events += o.hub_events;
        self.writes_ok += o.writes_ok;
        self.writes_noop += o.writes_noop;
        self.writes_refused += o.writes_refused;
        self.raw_writes += o.raw_writes;
        self.connects += o.connects;
        self.drops += o.drops;
        self.half_open += o.half_open;
        self.dups += o.dups;
        self.garbage += o.garbage;
        self.partitions += o.partitions;
        self.crashes += o.crashes;
        self.lossy_crashes += o.lossy_crashes;
        self.revocations += o.revocations;
        self.final_frames += o.final_frames;
        self.stuck_runs += o.stuck_runs;
        self.stuck_sessions += o.stuck_sessions;
        self.stuck_unexplained += o.stuck_unexplained;
    }
}

/// The result of a run that broke an invariant.
pub type Outcome = Result<(), String>;

/// Everything of one run.
pub struct World {
    pub p: Params,
    pub rng: Rng,
    pub now: Arc<AtomicI64>,
    pub nodes: Vec<Node>,
    pub conns: Vec<Conn>,
    pub next_conn: u64,
    /// While partitioned: the side of the split each node is on.
    pub groups: Option<Vec<bool>>,
    /// Every entity created anywhere, in creation order (named `e0`, `e1`, ...).
    pub entities: Vec<(EntityId, EntityType)>,
    /// Changes written through the API: every node must end up with them.
    pub honest: Vec<(EntityId, ChangeHash)>,
    /// Hex hashes of changes written with raw Automerge.
    pub foreign: HashSet<String>,
    pub log: Vec<String>,
    /// Sessions that stayed pending after the final phase, explained.
    pub stuck: Vec<String>,
    pub step: usize,
    pub stats: Stats,
    /// FNV-1a over every delivered frame and the final views.
    pub fingerprint: u64,
    /// With roles: each node's roles (node 0, the authority, holds all).
    pub roles: Vec<RoleSet>,
    /// With roles: the nodes whose certificates node 0 revoked.
    pub revoked: BTreeSet<usize>,
}

impl World {
    /// A world of `p.nodes` empty nodes.
    pub fn new(seed: u64, p: Params) -> World {
        let mut rng = Rng::new(seed);
        // who may do what is drawn on a stream of its own, so the seeds
        // without roles run as they always did
        let mut ir = Rng::new(seed ^ 0x1de7_7171_0a11_7e57);
        let authority: Option<[u8; 32]> = p.roles.then(|| {
            let mut k = [0u8; 32];
            k[..16].copy_from_slice(&ir.bytes16());
            k[16..].copy_from_slice(&ir.bytes16());
            k
        });
        let now = Arc::new(AtomicI64::new(1_700_000_000_000));
        let nodes: Vec<Node> = (0..p.nodes)
            .map(|i| {
                let clock = Arc::new(SimClock {
                    now: now.clone(),
                    skew_ms: rng.below(600_000) as i64 - 300_000,
                });
                let opts = StoreOptions {
                    cache_capacity: p.cache_capacity,
                    compact_after_chunks: p.compact_after,
                    device: Some(format!("n{i}")),
                    clock,
                    actor: None,
                    ..Default::default()
                };
                Node::new(
                    format!("n{i}"),
                    rng.bytes16(),
                    opts,
                    authority.filter(|_| i == 0),
                )
            })
            .collect();
        let roles = match authority {
            Some(secret) => enroll(&nodes, secret, &mut ir),
            None => Vec::new(),
        };
        World {
            p,
            rng,
            now,
            nodes,
            conns: Vec::new(),
            next_conn: 1,
            groups: None,
            entities: Vec::new(),
            honest: Vec::new(),
            foreign: HashSet::new(),
            log: Vec::new(),
            stuck: Vec::new(),
            step: 0,
            stats: Stats::default(),
            fingerprint: 0xcbf2_9ce4_8422_2325,
            roles,
            revoked: BTreeSet::new(),
        }
    }

    /// The roles node 0 certifies `n` for when it connects (none once revoked).
    pub fn roles_of(&self, n: usize) -> Option<RoleSet> {
        if !self.p.roles {
            return None;
        }
        Some(if self.revoked.contains(&n) {
            RoleSet::new()
        } else {
            self.roles[n].clone()
        })
    }

    /// Node 0 revokes a random other node's certificates; its connections
    /// send the new revocation list on.
    fn revoke(&mut self) -> Outcome {
        let candidates: Vec<usize> = (1..self.nodes.len())
            .filter(|n| !self.revoked.contains(n))
            .collect();
        let n = *self.rng.pick(&candidates);
        let store = self.nodes[0].store.clone().expect("up");
        let list = store
            .revoke_device(DEFAULT_TENANT, &format!("n{n}"))
            .map_err(|e| format!("n0 revokes n{n}: {e}"))?;
        self.revoked.insert(n);
        self.stats.revocations += 1;
        let version = list.map(|l| l.list.version);
        self.note(format!("n0 revokes n{n} (revocation list {version:?})"));
        self.broadcast_identity(0, None);
        self.check_iso(0, None)
    }

    /// Record one line of the event log.
    pub fn note(&mut self, line: String) {
        self.log.push(format!("#{:<4} {line}", self.step));
    }

    /// Mix bytes into the run's fingerprint.
    pub fn mix(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.fingerprint ^= u64::from(*b);
            self.fingerprint = self.fingerprint.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// A short name of an entity for the log (`e3`), or its id.
    pub fn name(&self, id: EntityId) -> String {
        match self.entities.iter().position(|(e, _)| *e == id) {
            Some(i) => format!("e{i}"),
            None => id.to_string()[..8].to_string(),
        }
    }

    /// Whether nodes `a` and `b` cannot reach each other now.
    pub fn blocked(&self, a: usize, b: usize) -> bool {
        self.groups.as_ref().is_some_and(|g| g[a] != g[b])
    }

    /// Run the random phase, then heal, connect and settle; check everything.
    pub fn run(&mut self) -> Outcome {
        for _ in 0..self.p.steps {
            self.step += 1;
            self.stats.events += 1;
            let tick = self.rng.below(3_000) as i64;
            self.now.fetch_add(tick, Ordering::SeqCst);
            self.random_event()?;
            self.sweep();
        }
        self.finish()
    }

    fn random_event(&mut self) -> Outcome {
        let deliverable = self.deliverable().len();
        let inbox = self.inboxes().len();
        let live = self.conns.len();
        let lingering = self.conns.iter().filter(|c| c.lingering).count();
        let down = self.nodes.iter().filter(|n| n.store.is_none()).count();
        let up = self.nodes.len() - down;
        let on = |cond: bool, w: u64| if cond { w } else { 0 };
        let p = &self.p;
        let weights = [
            on(up > 0, 14),                               // 0 write
            on(deliverable > 0, 30),                      // 1 deliver a frame
            on(inbox > 0, 12),                            // 2 hub event
            on(up > 1, 6),                                // 3 connect
            on(live > 0, p.w_drop),                       // 4 drop a connection
            on(deliverable > 0, p.w_dup),                 // 5 duplicate a frame
            on(live > 0, p.w_garbage),                    // 6 garbage frame
            on(self.groups.is_none(), p.w_partition),     // 7 partition
            on(self.groups.is_some(), 3 * p.w_partition), // 8 heal
            on(up > 1, p.w_crash),                        // 9 crash
            on(down > 0, 6),                              // 10 restart
            on(lingering > 0, 3),                         // 11 reap a half-open connection
            on(
                p.roles && up == self.nodes.len() && self.revoked.len() + 1 < self.nodes.len(),
                1,
            ), // 12 node 0 revokes a device
        ];
        if weights.iter().all(|w| *w == 0) {
            return Ok(());
        }
        match self.rng.weighted(&weights) {
            0 => self.random_write(),
            1 => {
                let choices = self.deliverable();
                let (c, to) = *self.rng.pick(&choices);
                self.deliver(c, to)
            }
            2 => {
                let choices = self.inboxes();
                let (c, s) = *self.rng.pick(&choices);
                self.hub_event(c, s)
            }
            3 => self.random_connect(),
            4 => {
                let c = self.rng.below(self.conns.len());
                self.drop_conn(c);
                Ok(())
            }
            5 => {
                let choices = self.deliverable();
                let (c, to) = *self.rng.pick(&choices);
                self.duplicate(c, to);
                Ok(())
            }
            6 => {
                let c = self.rng.below(self.conns.len());
                self.garbage(c);
                Ok(())
            }
            7 => {
                self.partition();
                Ok(())
            }
            8 => {
                self.heal();
                Ok(())
            }
            9 => {
                let ups: Vec<usize> = (0..self.nodes.len())
                    .filter(|n| self.nodes[*n].store.is_some())
                    .collect();
                let n = *self.rng.pick(&ups);
                self.crash(n)
            }
            10 => {
                let downs: Vec<usize> = (0..self.nodes.len())
                    .filter(|n| self.nodes[*n].store.is_none())
                    .collect();
                let n = *self.rng.pick(&downs);
                self.restart(n)
            }
            12 => self.revoke(),
            _ => {
                let ids: Vec<usize> = (0..self.conns.len())
                    .filter(|c| self.conns[*c].lingering)
                    .collect();
                let c = *self.rng.pick(&ids);
                self.reap(c);
                Ok(())
            }
        }
    }

    fn partition(&mut self) {
        let n = self.nodes.len();
        // a random split with both sides non-empty
        let mut groups: Vec<bool> = (0..n).map(|_| self.rng.coin()).collect();
        let a = self.rng.below(n);
        let b = (a + 1 + self.rng.below(n - 1)) % n;
        groups[a] = true;
        groups[b] = false;
        let side: Vec<String> = (0..n)
            .filter(|i| groups[*i])
            .map(|i| format!("n{i}"))
            .collect();
        self.groups = Some(groups);
        self.stats.partitions += 1;
        self.note(format!("partition {{{}}} | rest", side.join(",")));
        // connections across the split either break now or stall until the heal
        for c in 0..self.conns.len() {
            let (a, b) = (self.conns[c].sides[0].node, self.conns[c].sides[1].node);
            if self.blocked(a, b) && self.rng.coin() {
                self.drop_conn(c);
            }
        }
    }

    /// Remove the partition; stalled connections resume.
    pub fn heal(&mut self) {
        if self.groups.take().is_some() {
            self.note("heal".into());
        }
    }

    fn crash(&mut self, n: usize) -> Outcome {
        let store = self.nodes[n].store.clone().expect("up");
        let mut snapshot = Vec::new();
        for (id, _) in &self.entities {
            if store.contains(*id).map_err(|e| format!("contains: {e}"))? {
                let v = store.view(*id).map_err(|e| format!("view: {e}"))?;
                snapshot.push((*id, v.to_json_string()));
            }
        }
        drop(store);
        // the node's connections go: its peer reads what was already sent and
        // then end-of-stream, or loses the frames in flight too, or does not
        // notice for a while (half-open)
        for c in 0..self.conns.len() {
            let Some(s) = (0..2).find(|s| self.conns[c].sides[*s].node == n) else {
                continue;
            };
            if !self.conns[c].sides[s].open() {
                continue;
            }
            match self.rng.below(3) {
                0 => self.close_side(c, s),
                1 => {
                    self.close_side(c, 0);
                    self.close_side(c, 1);
                }
                _ => self.vanish(c, s),
            }
        }
        let node = &mut self.nodes[n];
        node.before_crash = snapshot;
        node.store = None;
        let lossy = self.p.lossy_crash && self.rng.coin();
        let pending = node.disk.unflushed_batches();
        let keep = if lossy {
            self.rng.below(pending + 1)
        } else {
            pending
        };
        node.disk.crash(keep);
        self.stats.crashes += 1;
        if lossy {
            self.stats.lossy_crashes += 1;
        }
        self.note(format!(
            "crash n{n} (unflushed batches: {pending}, kept {keep})"
        ));
        Ok(())
    }

    pub fn restart(&mut self, n: usize) -> Outcome {
        self.nodes[n].open()?;
        self.note(format!("restart n{n}"));
        let store = self.nodes[n].store.clone().expect("just opened");
        for (id, before) in std::mem::take(&mut self.nodes[n].before_crash) {
            let after = store
                .view(id)
                .map_err(|e| format!("n{n} lost {} in a restart: {e}", self.name(id)))?
                .to_json_string();
            if after != before {
                return Err(format!(
                    "n{n}: the view of {} changed across a restart:\n  before {before}\n  after  {after}",
                    self.name(id)
                ));
            }
        }
        self.check_iso(n, None)
    }

    /// Isolation status never goes down on a node: checked for every
    /// isolation point of `docs` (all when `None`) after each event that
    /// changed them (an isolation point's view depends on its own document only).
    pub fn check_iso(&mut self, n: usize, docs: Option<&[EntityId]>) -> Outcome {
        let Some(store) = self.nodes[n].store.clone() else {
            return Ok(());
        };
        let isos: Vec<EntityId> = self
            .entities
            .iter()
            .filter(|(id, t)| {
                *t == EntityType::IsolationPoint && docs.is_none_or(|d| d.contains(id))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in isos {
            if !store.contains(id).map_err(|e| format!("contains: {e}"))? {
                continue;
            }
            let view = store.view(id).map_err(|e| format!("view: {e}"))?;
            let rank = view
                .isolation_status()
                .map(IsolationStatus::rank)
                .unwrap_or(0);
            let seen = self.nodes[n].iso_rank.get(&id).copied().unwrap_or(0);
            if rank < seen && !revoked_rejection(&view) {
                return Err(format!(
                    "n{n}: isolation status of {} went down (rank {seen} -> {rank})",
                    self.name(id)
                ));
            }
            self.nodes[n].iso_rank.insert(id, rank);
        }
        Ok(())
    }
}

/// Whether `view` rejects an operation because its signer's certificate was
/// revoked: what followed from it may be undone too (a revocation takes
/// back authority that was valid, DESIGN.md "Who may do what").
pub fn revoked_rejection(view: &permitsync::View) -> bool {
    view.rejected
        .iter()
        .any(|r| r.reason == "not_authorized" && r.detail.contains("revoked"))
}

/// Node 0 certifies every other node for seeded roles (all of them now and
/// then), and each enrolls with it; node 0's roles are all.
fn enroll(nodes: &[Node], secret: [u8; 32], ir: &mut Rng) -> Vec<RoleSet> {
    let authority = NodeKey::from_secret(secret).public();
    let all: RoleSet = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Attest)
        .collect();
    let mut roles = vec![all.clone()];
    let n0 = nodes[0].store.clone().expect("up");
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let set: RoleSet = if ir.percent(25) {
            all.clone()
        } else {
            all.iter().copied().filter(|_| ir.coin()).collect()
        };
        let store = node.store.clone().expect("up");
        let cert = n0
            .issue_certificate(&CertificateRequest {
                tenant: DEFAULT_TENANT.to_string(),
                device: format!("n{i}"),
                person: Some(format!("person {i}")),
                roles: set.clone(),
                public_key: store.public_key(),
            })
            .expect("certify");
        store
            .enroll(DEFAULT_TENANT, authority, &cert)
            .expect("enroll");
        roles.push(set);
    }
    roles
}
