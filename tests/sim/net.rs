//! Connections: two sessions and the frames in flight between them, as an
//! ordered transport (a WebSocket) would carry them. Faults are modelled the
//! way they happen to a WebSocket: the connection breaks (frames in flight are
//! lost; one side may not notice for a while), a partition stalls it, and
//! garbage arrives from a broken peer. Duplicates are injected only for
//! frames after the handshake (see `tests/simulation.rs` for what a duplicate
//! `join` or `peer` does).

use std::collections::{BTreeMap, VecDeque};

use automerge::ChangeHash;

use permitsync::model::EntityId;
use permitsync::node::Access;
use permitsync::sync::{Output, Role, Session, SessionConfig};
use permitsync::wire::{self, DocumentId, Limits, Message, PeerId};

use super::world::{Outcome, World};
use crate::support::session;

/// One end of a connection.
pub struct Side {
    pub node: usize,
    /// `None` once this end closed, crashed or vanished.
    pub session: Option<Session>,
    /// Registered with the node's hub (after its handshake), so it hears of
    /// documents that changed elsewhere.
    pub registered: bool,
    /// Hub events not handled yet: a document changed, or (`None`) the
    /// node learnt a newer revocation list.
    pub inbox: VecDeque<Option<EntityId>>,
}

impl Side {
    pub fn open(&self) -> bool {
        self.session.is_some()
    }
}

/// A connection: side 0 dialed (client), side 1 was dialed (server).
pub struct Conn {
    pub id: u64,
    pub sides: [Side; 2],
    /// `queues[i]`: frames in flight towards side `i`, in order.
    pub queues: [VecDeque<Vec<u8>>; 2],
    /// Garbage was injected, so the sessions may close with an error.
    pub garbage: bool,
    /// One side is gone but the other has not noticed (half-open) until reaped.
    pub lingering: bool,
    /// `heard[i]`: per document, the heads in the last sync message side `i`
    /// received (to explain a session that stays pending).
    pub heard: [BTreeMap<EntityId, Vec<ChangeHash>>; 2],
}

/// A one-line description of a frame for the event log.
fn describe(w: &World, frame: &[u8]) -> String {
    match wire::decode(frame, &Limits::default()) {
        Ok(m) => describe_message(w, &m, frame.len()),
        Err(e) => format!("undecodable ({} B: {e})", frame.len()),
    }
}

fn describe_message(w: &World, m: &Message, len: usize) -> String {
    let doc = m
        .document_id()
        .map(|d| format!(" {}", w.name(EntityId::from(uuid::Uuid::from(*d)))))
        .unwrap_or_default();
    let detail = match m {
        Message::Sync { data, .. } | Message::Request { data, .. } => sync_detail(data),
        _ => String::new(),
    };
    format!("{}{doc} ({len} B){detail}", m.type_name())
}

/// Heads, changes, needs and haves of an Automerge sync message.
fn sync_detail(data: &[u8]) -> String {
    let short = |hs: &[automerge::ChangeHash]| {
        hs.iter()
            .map(|h| h.to_string()[..6].to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    match automerge::sync::Message::decode(data) {
        Ok(m) => format!(
            " heads [{}] changes {} need [{}] have {}",
            short(&m.heads),
            m.changes.len(),
            short(&m.need),
            m.have
                .iter()
                .map(|h| format!("[{}]", short(&h.last_sync)))
                .collect::<Vec<_>>()
                .join("")
        ),
        Err(e) => format!(" (undecodable automerge message: {e})"),
    }
}

impl World {
    /// `(connection, side)` pairs with a frame that can be delivered now.
    pub fn deliverable(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (c, conn) in self.conns.iter().enumerate() {
            if self.blocked(conn.sides[0].node, conn.sides[1].node) {
                continue;
            }
            for to in 0..2 {
                if conn.sides[to].open() && !conn.queues[to].is_empty() {
                    out.push((c, to));
                }
            }
        }
        out
    }

    /// `(connection, side)` pairs with a hub event waiting.
    pub fn inboxes(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (c, conn) in self.conns.iter().enumerate() {
            for s in 0..2 {
                if conn.sides[s].open() && !conn.sides[s].inbox.is_empty() {
                    out.push((c, s));
                }
            }
        }
        out
    }

    /// Whether `a` and `b` have a connection with both ends open.
    pub fn linked(&self, a: usize, b: usize) -> bool {
        self.conns.iter().any(|c| {
            let (x, y) = (c.sides[0].node, c.sides[1].node);
            ((x, y) == (a, b) || (x, y) == (b, a)) && c.sides[0].open() && c.sides[1].open()
        })
    }

    fn session(&self, n: usize, role: Role, peer: usize) -> Session {
        let store = self.nodes[n].store.clone().expect("node is up");
        // no tokens: the default tenant, full rights, both ways
        let mut access = Access::open(format!("n{peer}"));
        if let Some(roles) = self.roles_of(peer) {
            // what node 0, the authority, certifies the peer for
            access.roles = Some(roles);
            access.person = Some(format!("person {peer}"));
        }
        Session::new(
            SessionConfig {
                feed_page: self.p.feed_page,
                ..session::config(role, &self.nodes[n].name, access)
            },
            store,
        )
    }

    /// `client` dials `server`.
    pub fn connect(&mut self, client: usize, server: usize) -> Outcome {
        let side = |node, session| Side {
            node,
            session: Some(session),
            registered: false,
            inbox: VecDeque::new(),
        };
        let conn = Conn {
            id: self.next_conn,
            sides: [
                side(client, self.session(client, Role::Client, server)),
                side(server, self.session(server, Role::Server, client)),
            ],
            queues: [VecDeque::new(), VecDeque::new()],
            garbage: false,
            lingering: false,
            heard: [BTreeMap::new(), BTreeMap::new()],
        };
        self.next_conn += 1;
        self.stats.connects += 1;
        self.note(format!("connect c{}: n{client} dials n{server}", conn.id));
        self.conns.push(conn);
        let c = self.conns.len() - 1;
        let out = self.conns[c].sides[0]
            .session
            .as_mut()
            .expect("new")
            .start();
        self.process(c, 0, out)
    }

    /// Dial between two random reachable nodes, as a node's dialer would.
    pub fn random_connect(&mut self) -> Outcome {
        let ups: Vec<usize> = (0..self.nodes.len())
            .filter(|n| self.nodes[*n].store.is_some())
            .collect();
        let client = *self.rng.pick(&ups);
        let others: Vec<usize> = ups.iter().copied().filter(|n| *n != client).collect();
        let server = *self.rng.pick(&others);
        if self.blocked(client, server) {
            self.note(format!("n{client} cannot reach n{server} (partition)"));
            return Ok(());
        }
        // a dialer keeps one connection; without multi_conn a pair keeps one
        let busy = self.conns.iter().any(|c| {
            let (x, y) = (c.sides[0].node, c.sides[1].node);
            c.sides[0].open()
                && ((x, y) == (client, server)
                    || (!self.p.multi_conn && (x, y) == (server, client)))
        });
        if busy {
            return Ok(());
        }
        self.connect(client, server)
    }

    /// Deliver the next frame towards side `to` of connection `c`.
    pub fn deliver(&mut self, c: usize, to: usize) -> Outcome {
        let frame = self.conns[c].queues[to].pop_front().expect("a frame");
        self.stats.frames += 1;
        self.mix(&frame);
        let (id, node, from) = (
            self.conns[c].id,
            self.conns[c].sides[to].node,
            self.conns[c].sides[1 - to].node,
        );
        let decoded = wire::decode(&frame, &Limits::default());
        let what = match &decoded {
            Ok(m) => describe_message(self, m, frame.len()),
            Err(e) => format!("undecodable ({} B: {e})", frame.len()),
        };
        self.note(format!("c{id} n{from} -> n{node}: {what}"));
        if let Ok(
            Message::Sync {
                document_id, data, ..
            }
            | Message::Request {
                document_id, data, ..
            },
        ) = decoded
        {
            if let Ok(m) = automerge::sync::Message::decode(&data) {
                let doc = EntityId::from(uuid::Uuid::from(document_id));
                let mut heads = m.heads;
                heads.sort();
                self.conns[c].heard[to].insert(doc, heads);
            }
        }
        let session = self.conns[c].sides[to].session.as_mut().expect("open side");
        let out = session.on_frame(&frame);
        self.process(c, to, out)
    }

    /// Hand side `s` of connection `c` its next hub event.
    pub fn hub_event(&mut self, c: usize, s: usize) -> Outcome {
        let event = self.conns[c].sides[s].inbox.pop_front().expect("an event");
        self.stats.hub_events += 1;
        let (id, node) = (self.conns[c].id, self.conns[c].sides[s].node);
        let what = match event {
            Some(doc) => format!("{} changed", self.name(doc)),
            None => "a newer revocation list".to_string(),
        };
        self.note(format!("c{id} n{node}: hub says {what}"));
        let session = self.conns[c].sides[s].session.as_mut().expect("open side");
        let out = match event {
            Some(doc) => session.on_doc_changed(doc),
            None => session.on_identity_changed(),
        };
        self.process(c, s, out)
    }

    /// Act on what side `s` of connection `c` returned.
    fn process(&mut self, c: usize, s: usize, out: Output) -> Outcome {
        let other = 1 - s;
        if !out.send.is_empty() {
            let sent: Vec<String> = out
                .send
                .iter()
                .map(|m| {
                    let doc = m
                        .document_id()
                        .map(|d| format!(" {}", self.name(EntityId::from(uuid::Uuid::from(*d)))))
                        .unwrap_or_default();
                    format!("{}{doc}", m.type_name())
                })
                .collect();
            let gone = if self.conns[c].sides[other].open() {
                ""
            } else {
                " (peer gone)"
            };
            self.note(format!("      sends {}{gone}", sent.join(", ")));
        }
        let conn = &mut self.conns[c];
        if conn.sides[other].open() {
            for m in &out.send {
                conn.queues[other].push_back(wire::encode(m));
            }
        }
        let side = &mut conn.sides[s];
        if !side.registered && side.session.as_ref().is_some_and(Session::is_ready) {
            side.registered = true;
        }
        let (id, node, garbage) = (conn.id, side.node, conn.garbage);
        for doc in &out.changed {
            self.broadcast(node, *doc, Some((id, s)));
        }
        if out.identity_changed {
            self.note(format!("c{id} n{node} learnt a newer revocation list"));
            self.broadcast_identity(node, Some((id, s)));
        }
        self.check_iso(node, Some(&out.changed))?;
        if let Some(reason) = out.close {
            self.note(format!("c{id} n{node} closes: {reason}"));
            self.close_side(c, s);
            if !garbage {
                return Err(format!(
                    "c{id}: n{node} closed the connection without injected garbage: {reason}"
                ));
            }
        }
        Ok(())
    }

    /// Tell every hub-registered session of node `n` (but `except`) that `doc` changed.
    pub fn broadcast(&mut self, n: usize, doc: EntityId, except: Option<(u64, usize)>) {
        self.hub(n, Some(doc), except);
    }

    /// Tell every hub-registered session of node `n` (but `except`) that the
    /// node learnt a newer revocation list.
    pub fn broadcast_identity(&mut self, n: usize, except: Option<(u64, usize)>) {
        self.hub(n, None, except);
    }

    fn hub(&mut self, n: usize, event: Option<EntityId>, except: Option<(u64, usize)>) {
        for conn in &mut self.conns {
            for (s, side) in conn.sides.iter_mut().enumerate() {
                if side.node == n && side.registered && side.open() && except != Some((conn.id, s))
                {
                    side.inbox.push_back(event);
                }
            }
        }
    }

    /// Side `s` of connection `c` is gone (closed, crashed, vanished).
    pub fn close_side(&mut self, c: usize, s: usize) {
        let conn = &mut self.conns[c];
        conn.sides[s].session = None;
        conn.sides[s].registered = false;
        conn.sides[s].inbox.clear();
        conn.queues[s].clear();
    }

    /// Side `s` vanishes without its peer noticing: half-open until reaped.
    pub fn vanish(&mut self, c: usize, s: usize) {
        self.close_side(c, s);
        self.conns[c].lingering = true;
    }

    /// The connection breaks: frames in flight are lost; sometimes one side
    /// notices only later (half-open).
    pub fn drop_conn(&mut self, c: usize) {
        let id = self.conns[c].id;
        let both_open = self.conns[c].sides.iter().all(Side::open);
        if both_open && self.rng.below(3) == 0 {
            let s = self.rng.below(2);
            let node = self.conns[c].sides[s].node;
            self.vanish(c, s);
            self.stats.half_open += 1;
            self.note(format!("c{id} breaks; n{node} notices, its peer does not"));
        } else {
            self.close_side(c, 0);
            self.close_side(c, 1);
            self.stats.drops += 1;
            self.note(format!("c{id} breaks; frames in flight are lost"));
        }
    }

    /// The side left of a half-open connection finally notices.
    pub fn reap(&mut self, c: usize) {
        let id = self.conns[c].id;
        self.close_side(c, 0);
        self.close_side(c, 1);
        self.note(format!("c{id}: half-open connection noticed and closed"));
    }

    /// Deliver the next frame towards `to` twice in a row (not a handshake
    /// frame: a duplicate `join` or `peer` is a protocol error by design).
    pub fn duplicate(&mut self, c: usize, to: usize) {
        let frame = self.conns[c].queues[to].front().cloned().expect("a frame");
        let handshake = matches!(
            wire::decode(&frame, &Limits::default()),
            Ok(Message::Join { .. } | Message::Peer { .. })
        );
        let id = self.conns[c].id;
        if handshake {
            self.note(format!("c{id}: not duplicating a handshake frame"));
            return;
        }
        let what = describe(self, &frame);
        self.conns[c].queues[to].insert(1, frame);
        self.stats.dups += 1;
        self.note(format!("c{id}: duplicate {what}"));
    }

    /// A broken peer sends garbage: the receiver must close with an error.
    pub fn garbage(&mut self, c: usize) {
        let to = self.rng.below(2);
        if !self.conns[c].sides.iter().all(Side::open) {
            return;
        }
        let (from, target) = (
            self.conns[c].sides[1 - to].node,
            self.conns[c].sides[to].node,
        );
        let frame = match self.rng.below(4) {
            0 => (0..self.rng.range(1, 40))
                .map(|_| self.rng.next_u64() as u8)
                .collect(),
            1 => {
                let mut f = wire::encode(&Message::Leave {
                    sender_id: PeerId::new(format!("n{from}")),
                });
                f.truncate(self.rng.below(f.len()));
                f
            }
            2 => {
                let doc = if self.entities.is_empty() {
                    DocumentId::from(self.rng.bytes16())
                } else {
                    let (id, _) = *self.rng.pick(&self.entities);
                    DocumentId::from(id.uuid())
                };
                let data = (0..self.rng.range(1, 30))
                    .map(|_| self.rng.next_u64() as u8)
                    .collect();
                wire::encode(&Message::Sync {
                    sender_id: PeerId::new(format!("n{from}")),
                    target_id: PeerId::new(format!("n{target}")),
                    document_id: doc,
                    data,
                })
            }
            _ => {
                // a CBOR map {"type": "teleport"}
                let mut f = vec![0xa1, 0x64];
                f.extend_from_slice(b"type");
                f.push(0x68);
                f.extend_from_slice(b"teleport");
                f
            }
        };
        let id = self.conns[c].id;
        self.conns[c].garbage = true;
        self.stats.garbage += 1;
        self.note(format!(
            "c{id}: garbage towards n{target} ({} B)",
            frame.len()
        ));
        self.conns[c].queues[to].push_back(frame);
    }

    /// Forget connections that are over: both ends gone, or one end gone and
    /// everything it sent delivered (the other end then reads end-of-stream).
    pub fn sweep(&mut self) {
        self.conns.retain(|c| {
            let open: Vec<usize> = (0..2).filter(|s| c.sides[*s].open()).collect();
            match open.as_slice() {
                [] => false,
                [s] => c.lingering || !c.queues[*s].is_empty(),
                _ => true,
            }
        });
    }
}
