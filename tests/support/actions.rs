//! The random edits of the convergence property tests (`tests/convergence.rs`,
//! `tests/convergence_authority.rs`), as proptest draws them: which field of
//! which entity, and raw Automerge writes that bypass the API (built by
//! [`super::ops`]).

use permitsync::model::EntityType;
use proptest::prelude::*;

/// One random edit.
#[derive(Clone, Debug)]
pub enum Action {
    Title(u8),
    Status(u8),
    Tick(u8, bool),
    Ppe(u8, bool),
    Gas(bool, bool),
    Describe(u8),
    IsoStatus(u8),
    Lock(u8, bool),
    CloseTick(u8, bool),
    Complete,
    /// A raw Automerge write bypassing the API (mostly invalid), one of
    /// `support::ops::raw_write`'s.
    Raw(EntityType, u8),
}

/// Draws an [`Action`].
pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u8..3).prop_map(Action::Title),
        (0u8..8).prop_map(Action::Status),
        (0u8..3, any::<bool>()).prop_map(|(i, b)| Action::Tick(i, b)),
        (0u8..3, any::<bool>()).prop_map(|(i, b)| Action::Ppe(i, b)),
        (any::<bool>(), any::<bool>()).prop_map(|(g, ok)| Action::Gas(g, ok)),
        (0u8..3).prop_map(Action::Describe),
        (0u8..4).prop_map(Action::IsoStatus),
        (0u8..3, any::<bool>()).prop_map(|(i, b)| Action::Lock(i, b)),
        (0u8..3, any::<bool>()).prop_map(|(i, b)| Action::CloseTick(i, b)),
        Just(Action::Complete),
        (
            prop_oneof![
                Just(EntityType::Permit),
                Just(EntityType::IsolationPoint),
                Just(EntityType::Closeout)
            ],
            0u8..8
        )
            .prop_map(|(d, k)| Action::Raw(d, k)),
    ]
}

/// Which entity an [`Action`] edits (0 the permit, 1 the isolation point,
/// 2 the closeout) and the API edit it makes; `None` for a raw write. A gas
/// reading gets the id `reading`.
pub fn edit_of(a: &Action, reading: uuid::Uuid) -> Option<(usize, permitsync::write::Edit)> {
    use super::ops::{self, ITEMS};
    use permitsync::model::{IsolationStatus, PermitStatus};
    use permitsync::write::Edit;
    let item = |i: &u8| ITEMS[*i as usize].to_string();
    Some(match a {
        Action::Title(v) => (
            0,
            Edit::SetField {
                field: "title".into(),
                value: format!("t{v}"),
            },
        ),
        Action::Status(s) => (
            0,
            Edit::SetStatus(PermitStatus::ALL[*s as usize].as_str().into()),
        ),
        Action::Tick(i, b) => (0, ops::tick("safety_checklist", item(i), *b)),
        Action::Ppe(i, add) => (0, ops::add_or_remove("ppe_requirements", item(i), *add)),
        Action::Gas(h2s, ok) => (0, ops::gas_reading(Some(reading), *h2s, *ok)),
        Action::Describe(v) => (
            0,
            Edit::SetText {
                field: "description".into(),
                text: format!("work {v}"),
            },
        ),
        Action::IsoStatus(s) => (
            1,
            Edit::SetStatus(IsolationStatus::ALL[*s as usize].as_str().into()),
        ),
        Action::Lock(i, add) => (1, ops::add_or_remove("lock_ids", item(i), *add)),
        Action::CloseTick(i, b) => (2, ops::tick("checklist", item(i), *b)),
        Action::Complete => (
            2,
            Edit::SetFlag {
                field: "completed".into(),
                value: true,
            },
        ),
        Action::Raw(..) => return None,
    })
}
