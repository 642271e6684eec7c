//! One simulated node: a store on its own [`Disk`], a clock with a fixed skew,
//! and what the invariant checks remember about it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use permitsync::model::EntityId;
use permitsync::store::{Clock, Store, StoreOptions};

use super::disk::Disk;

/// Simulated wall-clock time: one shared "now", advanced by the scheduler,
/// plus this node's skew (device clocks disagree).
pub struct SimClock {
    pub now: Arc<AtomicI64>,
    pub skew_ms: i64,
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst) + self.skew_ms
    }
}

/// A node of the simulation.
pub struct Node {
    pub name: String,
    pub disk: Arc<Disk>,
    /// `None` while the node is down (crashed, not restarted yet).
    pub store: Option<Store>,
    pub opts: StoreOptions,
    /// Highest isolation rank this node ever showed, per isolation point.
    pub iso_rank: BTreeMap<EntityId, u8>,
    /// Views (JSON) just before the node went down, compared after the restart.
    pub before_crash: Vec<(EntityId, String)>,
    /// The seeded actor; each opening writes with a variant of it.
    actor: [u8; 16],
    /// Times the store was opened.
    opens: u32,
}

impl Node {
    /// A fresh node whose store writes with the given actor id (and, given
    /// one, holds this tenant authority key).
    pub fn new(
        name: String,
        actor: [u8; 16],
        opts: StoreOptions,
        authority: Option<[u8; 32]>,
    ) -> Node {
        let disk = Disk::new();
        if let Some(secret) = authority {
            disk.seed(b"meta/authority_key", secret.to_vec());
        }
        // fix the Automerge actor (`meta/actor`, docs/storage.md) so that a
        // seed replays byte for byte; the store would pick a random one
        disk.seed(b"meta/actor", actor.to_vec());
        // and its signing key (`meta/node_key`), made at random otherwise
        let mut key = [0x5a; 32];
        key[..16].copy_from_slice(&actor);
        disk.seed(b"meta/node_key", key.to_vec());
        let mut node = Node {
            name,
            disk,
            store: None,
            opts,
            actor,
            opens: 0,
            iso_rank: BTreeMap::new(),
            before_crash: Vec::new(),
        };
        node.open().expect("open a new node's store");
        node
    }

    /// Open the store over the disk (start, or restart after a crash).
    pub fn open(&mut self) -> Result<(), String> {
        // a fresh, seeded write actor for every opening (as the store would
        // pick a random one), so a seed replays byte for byte
        self.opens += 1;
        let mut actor = self.actor;
        actor[12..].copy_from_slice(&self.opens.to_be_bytes());
        let mut opts = self.opts.clone();
        opts.actor = Some(automerge::ActorId::from(actor.to_vec()));
        let store = Store::with_backend(self.disk.clone(), opts)
            .map_err(|e| format!("{}: store did not open: {e}", self.name))?;
        self.store = Some(store);
        Ok(())
    }
}
