//! The cost checks a store runs before it applies foreign data or a local
//! write: the limits of `cost.rs` against what the store holds.

use automerge::ReadDoc;

use super::cost::{edit_strings, Cost, CostLimits};
use super::store::Store;
use crate::document::EntityDoc;
use crate::error::Result;
use crate::model::EntityId;
use crate::write::Edit;

impl Store {
    /// The cost limits this store applies to foreign data and writes.
    pub fn cost_limits(&self) -> &CostLimits {
        &self.inner.opts.cost
    }

    /// Refuse edits whose strings are over the cost limits.
    pub(crate) fn check_edits(&self, edits: &[Edit]) -> Result<()> {
        self.cost_limits().check_strings(edit_strings(edits))
    }

    /// Refuse measured input that would take document `id` (`doc`, if the
    /// store has it) past the document limit: its change operations all new,
    /// and no whole-document chunk larger than the limit. (A whole document
    /// mostly repeats what the receiver has; the document's real size is
    /// checked again before anything is stored.)
    pub(super) fn check_growth(
        &self,
        id: EntityId,
        doc: Option<&EntityDoc>,
        cost: &Cost,
    ) -> Result<()> {
        let limits = self.cost_limits();
        let have = doc.map_or(0, |d| d.doc().stats().num_ops);
        limits.check_document(id, have.saturating_add(cost.change_ops))?;
        limits.check_document(id, cost.document_ops.saturating_add(cost.change_ops))
    }
}
