//! The policy view: a deterministic layer over a merged Automerge document.
//!
//! Automerge merges everything. The view then reads each policed key's
//! operation history (every op knows the ops it overwrote, its `pred`) and
//! judges each op against the key's effective state in the op's own causal
//! past. Invalid ops become no-ops, listed in `rejected`; among the valid
//! concurrent values the field's policy picks the result. See `docs/policies.md`.

mod audit;
mod authority;
mod authorship;
mod bitset;
mod guard;
mod headline;
mod history;
mod op;
mod rejection;
mod render;
mod since;
mod snapshot;
mod text_snapshot;
mod validate;
mod violations;

pub use audit::{audit_trail, ChangeRecord, OpRecord};
pub use authority::{change_time_ms, Authorities, MAX_ATTESTATIONS_PER_CHANGE};
pub use authorship::{Act, Author, Authorship};
pub use guard::{activation_guard, failing_gases, latest_per_gas, GasReading};
pub use headline::Headline;
pub use history::History;
pub use rejection::{RejectReason, Rejection};
pub use render::{Conflict, View};
pub use since::LaterWrite;
pub use violations::{permit_violations, CrossRefs, Violation};

pub(crate) use bitset::BitSet;
pub(crate) use headline::headline;
pub(crate) use history::ingest::Ingest;
pub(crate) use history::local_check::LocalTarget;
pub(crate) use op::OpValue;
pub(crate) use render::{render, render_field};
pub use snapshot::photo_hashes;
pub(crate) use snapshot::{gas_readings, true_wins_map};

#[cfg(test)]
mod noop_tests;
#[cfg(test)]
mod test_doc;
#[cfg(test)]
mod tests;
