//! A deterministic simulation of a permitsync network, in one process.
//!
//! Nodes are stores on in-memory disks; connections are pairs of sans-IO
//! [`permitsync::sync::Session`]s with the frames in flight between them; a
//! scheduler seeded per run picks one event at a time: a local write, the
//! delivery of a frame, a hub event (a document changed elsewhere on the
//! node), a dial, a broken or half-open connection, a duplicated frame,
//! garbage from a broken peer, a partition or its heal, a crash (which may
//! lose writes not flushed yet) and a restart. After every event the touched
//! node's isolation points must not have gone down. At the end the network
//! heals, crashed nodes restart, a connected topology (every pair, or a
//! random spanning tree) is dialed, and once no frame or event is left every
//! node must hold every entity with a byte-identical view and every change
//! written through the API, with no honest change rejected; sessions still
//! pending are explained (and failed with `SIM_STRICT_IDLE=1`).
//!
//! The layout follows yrs' `run_scenario` and samod's
//! `connect(alice, bob); run_until_quiescent()`.

mod disk;
mod net;
mod node;
mod ops;
mod params;
mod settle;
mod world;

pub use params::Params;
pub use world::{Stats, World};

/// What became of one seed.
pub struct Report {
    pub seed: u64,
    pub params: Params,
    pub stats: Stats,
    pub fingerprint: u64,
    /// The broken invariant (or panic), with the event log.
    pub failure: Option<(String, Vec<String>)>,
    /// Sessions that stayed pending although everything converged.
    pub stuck: Vec<String>,
}

/// Run one seed, `steps` random events long (the seed's own length if `None`).
pub fn run_seed(seed: u64, steps: Option<usize>) -> Report {
    run_seed_with(seed, steps, false)
}

/// [`run_seed`], failing on any session left pending when `strict_idle`.
pub fn run_seed_with(seed: u64, steps: Option<usize>, strict_idle: bool) -> Report {
    let mut params = Params::for_seed(seed);
    if let Some(steps) = steps {
        params.steps = steps;
    }
    params.strict_idle |= strict_idle;
    let mut world = World::new(seed, params.clone());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run()));
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(msg)) => Some(msg),
        Err(panic) => Some(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    };
    Report {
        seed,
        params,
        stats: world.stats.clone(),
        fingerprint: world.fingerprint,
        stuck: std::mem::take(&mut world.stuck),
        failure: failure.map(|f| (f, std::mem::take(&mut world.log))),
    }
}

/// The shortest prefix (in random events) of a failing seed that still
/// fails, found by bisection, with its report.
pub fn shrink(seed: u64, steps: usize) -> Report {
    let (mut lo, mut hi) = (0usize, steps);
    let mut best = run_seed(seed, Some(hi));
    if best.failure.is_none() {
        return best;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        let r = run_seed(seed, Some(mid));
        if r.failure.is_some() {
            hi = mid;
            best = r;
        } else {
            lo = mid + 1;
        }
    }
    best
}
