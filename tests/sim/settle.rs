//! The final phase: heal, restart, connect a connected topology, run until
//! quiet, then check convergence and explain sessions left pending.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use automerge::ChangeHash;
use permitsync::model::EntityId;

use super::world::{Outcome, World};

/// Deliveries and hub events the final phase may take before it is a livelock.
const SETTLE_LIMIT: usize = 100_000;

impl World {
    /// Heal, restart every node, connect a connected topology, run until no
    /// frame or hub event is left, and check convergence.
    pub fn finish(&mut self) -> Outcome {
        self.step += 1;
        self.note("--- final phase ---".into());
        self.heal();
        for n in 0..self.nodes.len() {
            if self.nodes[n].store.is_none() {
                self.restart(n)?;
            }
        }
        for c in 0..self.conns.len() {
            if self.conns[c].lingering {
                self.reap(c);
            }
        }
        self.sweep();
        let n = self.nodes.len();
        let pairs: Vec<(usize, usize)> = if self.p.mesh {
            (0..n)
                .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
                .collect()
        } else {
            // a random spanning tree: each node joins a random earlier one
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                let j = self.rng.below(i + 1);
                order.swap(i, j);
            }
            (1..n)
                .map(|i| (order[self.rng.below(i)], order[i]))
                .collect()
        };
        let frames_before = self.stats.frames;
        // garbage still in flight may close a connection of the topology: dial again
        for round in 0.. {
            let missing: Vec<(usize, usize)> = pairs
                .iter()
                .copied()
                .filter(|(a, b)| !self.linked(*a, *b))
                .collect();
            if missing.is_empty() && round > 0 {
                break;
            }
            if round == 5 {
                return Err("the final topology does not stay connected".into());
            }
            for (a, b) in missing {
                let (client, server) = if self.rng.coin() { (a, b) } else { (b, a) };
                self.connect(client, server)?;
            }
            self.settle()?;
        }
        self.stats.final_frames = self.stats.frames - frames_before;
        if let Some(diff) = self.converged()? {
            // diagnosis: would fresh connections between every pair fix it?
            let fixed = self.reconnect_all_and_settle()?;
            return Err(format!(
                "not converged after the final phase: {diff}\n  \
                 after dropping every connection and connecting every pair afresh: {}",
                match fixed {
                    None => "converged".to_string(),
                    Some(d) => format!("still diverged ({d})"),
                }
            ));
        }
        self.stuck = self.stuck_sessions()?;
        if !self.stuck.is_empty() {
            self.stats.stuck_runs += 1;
            self.stats.stuck_sessions += self.stuck.len();
            self.stats.stuck_unexplained += self
                .stuck
                .iter()
                .filter(|s| s.starts_with("UNEXPLAINED"))
                .count();
            let unexplained: Vec<&String> = self
                .stuck
                .iter()
                .filter(|s| s.starts_with("UNEXPLAINED"))
                .collect();
            if !unexplained.is_empty() {
                return Err(format!(
                    "converged, but sessions stay pending that crossed messages do not explain:\n  {}",
                    unexplained
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("\n  ")
                ));
            }
            if self.p.strict_idle {
                return Err(format!(
                    "converged, but sessions stay pending:\n  {}",
                    self.stuck.join("\n  ")
                ));
            }
        }
        Ok(())
    }

    fn reconnect_all_and_settle(&mut self) -> Result<Option<String>, String> {
        self.note("--- diagnosis: reconnect every pair ---".into());
        self.conns.clear();
        let n = self.nodes.len();
        for a in 0..n {
            for b in a + 1..n {
                self.connect(a, b)?;
            }
        }
        self.settle()?;
        self.converged()
    }

    /// Deliver frames and hub events (in random order) until none is left.
    fn settle(&mut self) -> Outcome {
        for _ in 0..SETTLE_LIMIT {
            let frames = self.deliverable();
            let inbox = self.inboxes();
            if frames.is_empty() && inbox.is_empty() {
                return Ok(());
            }
            self.step += 1;
            let k = self.rng.below(frames.len() + inbox.len());
            if k < frames.len() {
                let (c, to) = frames[k];
                self.deliver(c, to)?;
            } else {
                let (c, s) = inbox[k - frames.len()];
                self.hub_event(c, s)?;
            }
            self.sweep();
        }
        // a livelock: say who keeps talking about what
        let mut talk: BTreeMap<String, usize> = BTreeMap::new();
        for line in &self.log[self.log.len().saturating_sub(2_000)..] {
            if let Some((_, what)) = line.split_once(' ') {
                let key: String = what
                    .split_whitespace()
                    .take(6)
                    .collect::<Vec<_>>()
                    .join(" ");
                *talk.entry(key).or_default() += 1;
            }
        }
        let mut talk: Vec<(usize, String)> = talk.into_iter().map(|(k, n)| (n, k)).collect();
        talk.sort_unstable_by(|a, b| b.cmp(a));
        let top: Vec<String> = talk
            .iter()
            .take(8)
            .map(|(n, k)| format!("{n}x {k}"))
            .collect();
        Err(format!(
            "the network did not quiesce ({SETTLE_LIMIT} deliveries); the last 2,000 events \
             were mostly:\n  {}\n  (a known cause: a peer keeps `need`ing a change the other \
             side already sent and the store lost; see \
             `a_change_waiting_for_its_dependency_survives_the_cache`)",
            top.join("\n  ")
        ))
    }

    /// Sessions that are quiet but not done (something pending, or a client's
    /// round unfinished), each explained: per document it still waits for,
    /// the heads it last heard from the peer against what both hold.
    fn stuck_sessions(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for conn in &self.conns {
            for (s, side) in conn.sides.iter().enumerate() {
                let Some(session) = &side.session else {
                    continue;
                };
                if session.pending() == 0 && (s == 1 || session.is_idle()) {
                    continue;
                }
                let peer = conn.sides[1 - s].node;
                let mut docs = Vec::new();
                let mut unexplained = false;
                let known: BTreeSet<EntityId> = conn.heard[0]
                    .keys()
                    .chain(conn.heard[1].keys())
                    .copied()
                    .collect();
                for doc in known {
                    let heads = |n: usize| -> Vec<ChangeHash> {
                        let mut h = self.nodes[n]
                            .store
                            .as_ref()
                            .and_then(|st| st.heads(doc).ok())
                            .unwrap_or_default();
                        h.sort();
                        h
                    };
                    let (ours, theirs) = (heads(side.node), heads(peer));
                    let heard = conn.heard[s].get(&doc);
                    if heard == Some(&ours) {
                        continue;
                    }
                    if theirs != ours {
                        unexplained = true;
                    }
                    docs.push(format!(
                        "{}: last heard heads [{}] from n{peer}, which holds [{}]; n{} holds [{}]",
                        self.name(doc),
                        short(heard.map(Vec::as_slice).unwrap_or_default()),
                        short(&theirs),
                        side.node,
                        short(&ours)
                    ));
                }
                // crossed messages: the peer holds our heads but never said so
                let crossed = !docs.is_empty() && !unexplained;
                out.push(format!(
                    "{}c{} n{} ({}, pending {}, idle {}): {}",
                    if crossed { "" } else { "UNEXPLAINED " },
                    conn.id,
                    side.node,
                    if s == 0 { "client" } else { "server" },
                    session.pending(),
                    session.is_idle(),
                    if docs.is_empty() {
                        "no document explains it".to_string()
                    } else {
                        docs.join("; ")
                    }
                ));
            }
        }
        Ok(out)
    }

    /// `None` when every node holds every entity with an identical view, all
    /// honest changes, and no honest change was rejected; else what differs.
    fn converged(&mut self) -> Result<Option<String>, String> {
        let stores: Vec<_> = self
            .nodes
            .iter()
            .map(|n| n.store.clone().expect("every node is up"))
            .collect();
        let err = |e: permitsync::Error| e.to_string();
        let mut diffs = String::new();
        for (id, _) in self.entities.clone() {
            let mut views: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (n, store) in stores.iter().enumerate() {
                let json = if store.contains(id).map_err(err)? {
                    let view = store.view(id).map_err(err)?;
                    // a revocation takes back what the revoked signer did,
                    // and what followed from it
                    let revoked = self.p.roles && super::world::revoked_rejection(&view);
                    for r in &view.rejected {
                        if !self.foreign.contains(&r.change) && !revoked {
                            return Err(format!(
                                "n{n}: an honest change was rejected in {}: {r:?}",
                                self.name(id)
                            ));
                        }
                    }
                    view.to_json_string()
                } else {
                    "(missing)".to_string()
                };
                views.entry(json).or_default().push(n);
            }
            if views.len() > 1 {
                let _ = write!(diffs, "\n  {} differs:", self.name(id));
                for (json, ns) in &views {
                    let _ = write!(diffs, "\n    on {ns:?}: {json}");
                }
            } else if let Some(json) = views.keys().next() {
                self.mix(json.as_bytes());
            }
        }
        for (id, hash) in self.honest.clone() {
            for (n, store) in stores.iter().enumerate() {
                if !store.has_changes(id, &[hash]).map_err(err)? {
                    let _ = write!(
                        diffs,
                        "\n  n{n} lacks honest change {} of {}",
                        &hash.to_string()[..12],
                        self.name(id)
                    );
                }
            }
        }
        Ok(if diffs.is_empty() { None } else { Some(diffs) })
    }
}

/// Short hex of change hashes, for messages.
fn short(hashes: &[ChangeHash]) -> String {
    hashes
        .iter()
        .map(|h| h.to_string()[..6].to_string())
        .collect::<Vec<_>>()
        .join(",")
}
