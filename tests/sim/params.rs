//! What one seed's run looks like: cluster size, length and fault mix, all
//! drawn from the seed (on a stream of its own, so a run cut short makes
//! the same choices as the full run up to the cut).

use crate::support::rng::Rng;

/// The shape of one run.
#[derive(Clone, Debug)]
pub struct Params {
    /// Nodes, 3 to 6.
    pub nodes: usize,
    /// Random events before the final heal.
    pub steps: usize,
    /// Feed entries per page (small pages exercise paging).
    pub feed_page: u64,
    /// Documents a store keeps loaded (small values exercise eviction).
    pub cache_capacity: usize,
    /// Chunks before a document is compacted.
    pub compact_after: u32,
    /// Event weights of the faults; 0 disables one.
    pub w_drop: u64,
    pub w_dup: u64,
    pub w_garbage: u64,
    pub w_partition: u64,
    pub w_crash: u64,
    /// Percentage of writes done with raw Automerge (a buggy foreign client).
    pub raw_pct: u64,
    /// A crash loses the writes not flushed yet (sync states, claims).
    pub lossy_crash: bool,
    /// Two nodes may hold a connection in each direction at once.
    pub multi_conn: bool,
    /// The final phase connects every pair (else a random spanning tree).
    pub mesh: bool,
    /// Who may do what: node 0 is the authority, the others are enrolled
    /// with seeded roles, and devices get revoked now and then.
    pub roles: bool,
    /// A session left pending after convergence fails the run even when
    /// crossed messages explain it (as `SIM_STRICT_IDLE=1` does).
    pub strict_idle: bool,
}

impl Params {
    /// The parameters of `seed`.
    pub fn for_seed(seed: u64) -> Params {
        let mut r = Rng::new(seed ^ 0x005e_ed0f_9a7a_5ee7);
        Params {
            nodes: r.range(3, 6),
            steps: r.range(40, 220),
            feed_page: *r.pick(&[1, 2, 3, 1000]),
            cache_capacity: *r.pick(&[2, 16, 1024]),
            compact_after: *r.pick(&[1, 2, 4, 32]),
            w_drop: *r.pick(&[0, 1, 3, 6]),
            w_dup: *r.pick(&[0, 0, 2, 4]),
            w_garbage: *r.pick(&[0, 0, 0, 1]),
            w_partition: *r.pick(&[0, 1, 2]),
            w_crash: *r.pick(&[0, 1, 2]),
            raw_pct: *r.pick(&[0, 0, 5, 15]),
            lossy_crash: r.coin(),
            multi_conn: r.coin(),
            mesh: r.coin(),
            // drawn last, so the seeds without roles run as they always did
            roles: r.below(3) != 0,
            strict_idle: std::env::var_os("SIM_STRICT_IDLE").is_some(),
        }
    }
}
