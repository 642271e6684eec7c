//! Local writes, validated before they are committed.
//!
//! Every edit is first checked against the policy view with the same rules the
//! view applies to foreign changes ([`crate::view`]); an edit the view would
//! reject is refused with a typed error and nothing is written. After the commit
//! the new change is judged again by the view; should that ever disagree the
//! edit is reported as rejected and the caller discards the in-memory document.

mod edit;
mod interlock;
mod new_entity;
mod note;

pub use edit::{Edit, NewGasReading, NewPhoto};
pub use interlock::{
    check_transition, normalise_work_type, GasRequirement, Interlocks, IsolationFact, PermitFacts,
};
pub use new_entity::{NewCloseout, NewIsolationPoint, NewPermit};
pub use note::{ChangeNote, ResolutionNote};

pub(crate) use edit::apply_edits;
pub(crate) use new_entity::{create_doc, NewEntityRef};

/// Write a string the way JavaScript Automerge clients do: as a Text object
/// (a `makeText` and its characters in the same change). JavaScript apps then
/// read a plain string, and a new value always makes a new object, so
/// concurrent writes surface as a conflict and the view reads the value as of
/// this change for identifiers and enums.
pub(crate) fn put_text<O: AsRef<automerge::ObjId>, P: Into<automerge::Prop>>(
    tx: &mut automerge::transaction::Transaction<'_>,
    obj: O,
    prop: P,
    value: &str,
) -> Result<(), automerge::AutomergeError> {
    use automerge::transaction::Transactable;
    let text = tx.put_object(obj, prop, automerge::ObjType::Text)?;
    tx.splice_text(&text, 0, 0, value)
}

/// Who writes, and when (passed in so the core never reads the clock itself).
#[derive(Clone, Debug)]
pub struct WriteCtx {
    /// Milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// The writing device's id (stored in `created_by`, `taken_by`).
    pub device: String,
    /// What the change records about its origin; `None` records the device only.
    pub note: Option<ChangeNote>,
    /// What attests the changes written (`None`: they go unsigned, as in a
    /// store that never enrolled).
    pub signer: Option<crate::identity::Signer>,
}

impl WriteCtx {
    /// The message of the change this write makes (its [`ChangeNote`]).
    pub fn message(&self) -> String {
        match &self.note {
            Some(note) => note.to_message(),
            None => ChangeNote::device(&self.device).to_message(),
        }
    }
}
