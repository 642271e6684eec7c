//! Who did what, as the view shows it: each change's verified author (from
//! the history's per-change [`Authorization`]), and for an entity who created
//! it and, for a permit, who submitted, approved and activated it (the
//! changes that made the moves of the winning status's path).
//!
//! A pure function of the history (itself a function of the changes,
//! attestations, certificates and revocation list) and of the changes'
//! notes, so replicas holding the same inputs show the same authors.

use automerge::{Automerge, ChangeHash};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::history::History;
use super::op::{ChangeIdx, OpIdx, OpRec};
use crate::identity::{Authorization, Verification};
use crate::model::{EntityType, PermitStatus};
use crate::write::ChangeNote;

/// Who verifiably made a change (history's `author`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// The certificate's device (`signed`), or the device a relay attested
    /// (`relay_attested`); `null` when unverified, unless a refused
    /// certificate signed it (then that certificate's device).
    pub device: Option<String>,
    /// The person the certificate names, if any.
    pub person: Option<String>,
    /// `signed`, `relay_attested` or `unverified`.
    pub verification: String,
    /// For an unverified change signed by a certificate that does not
    /// count: why (`revoked`, `expired`, `not yet valid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl Author {
    /// The author as `auth` establishes it.
    pub fn of(auth: &Authorization) -> Author {
        Author {
            device: auth.device.clone(),
            person: auth.person.clone(),
            verification: auth.verification.as_str().to_string(),
            refused: auth.refused.map(str::to_string),
        }
    }
}

/// Who made one act the view reports (created, submitted, approved,
/// activated): the verified author of the change that did it; when nothing
/// verifies it, the device written (`created_by`, or the change note's
/// device), marked `unverified`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    /// The device (see [`Author::device`]; when unverified and no
    /// certificate was refused, the device the document or note claims).
    pub device: Option<String>,
    /// The person the certificate names, if any.
    pub person: Option<String>,
    /// `signed`, `relay_attested` or `unverified`.
    pub verification: String,
    /// Why a certificate that signed it does not count, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The change that did it (hex).
    pub change: String,
    /// When, by its author's clock (the change's time, Unix seconds).
    pub time: i64,
}

/// The view's `authorship`: who created the entity and, for a permit, who
/// made the moves of its workflow that the current status rests on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorship {
    /// The change that wrote the entity's `type`.
    pub created_by: Option<Act>,
    /// A permit's latest `-> submitted` on the path to its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<Act>,
    /// A permit's latest `-> approved` on the path to its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<Act>,
    /// A permit's first `-> active` (its issue) on the path to its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_by: Option<Act>,
}

/// The note's device of `change` (the claim), if its message is a note.
pub(crate) fn claimed_device(doc: &Automerge, change: &ChangeHash) -> Option<String> {
    let meta = doc.get_change_meta_by_hash(change)?;
    let note = ChangeNote::parse(meta.message.as_deref()?)?;
    Some(note.device).filter(|d| !d.is_empty())
}

/// The act of change `ci`; `claim` is the device written, shown when
/// nothing verifies the change.
fn act(doc: &Automerge, h: &History, ci: ChangeIdx, claim: Option<String>) -> Act {
    let node = &h.changes[ci as usize];
    let auth = h.author(ci);
    let author = Author::of(auth);
    let device = match (auth.verification, auth.refused) {
        (Verification::Unverified, None) => claim,
        _ => author.device,
    };
    Act {
        device,
        person: author.person,
        verification: author.verification,
        refused: author.refused,
        change: node.hash.to_string(),
        time: doc
            .get_change_meta_by_hash(&node.hash)
            .map_or(0, |m| m.timestamp),
    }
}

/// The authorship of `doc` with history `h`; `created_by` is the value the
/// view shows for the field of that name.
pub(crate) fn authorship(doc: &Automerge, h: &History, created_by: Option<&Value>) -> Authorship {
    let mut out = Authorship::default();
    let Some(ty) = h.entity_type() else {
        return out;
    };
    if let Some(op) = h.root_key("type").and_then(|k| h.resolve_winner(k, None)) {
        let claim = created_by.and_then(Value::as_str).map(str::to_string);
        out.created_by = Some(act(doc, h, op.change, claim));
    }
    if ty != EntityType::Permit {
        return out;
    }
    let mut submitted = None;
    let mut approved = None;
    let mut activated = None;
    for (status, op) in status_path(h) {
        let slot = match status {
            PermitStatus::Submitted => &mut submitted,
            PermitStatus::Approved => &mut approved,
            // walking back, the last activation seen is the first made
            PermitStatus::Active => {
                activated = Some(op.change);
                continue;
            }
            _ => continue,
        };
        slot.get_or_insert(op.change);
    }
    let with_claim = |ci: ChangeIdx| {
        let claim = claimed_device(doc, &h.changes[ci as usize].hash);
        act(doc, h, ci, claim)
    };
    out.submitted_by = submitted.map(with_claim);
    out.approved_by = approved.map(with_claim);
    out.activated_by = activated.map(with_claim);
    out
}

/// The moves the permit's shown status rests on, newest first: the winning
/// status op, then, from each op, the op of the status it was judged
/// against (the highest precedence of its effective predecessors, ties by
/// Automerge's op order, as the view resolves concurrent values).
fn status_path(h: &History) -> Vec<(PermitStatus, &OpRec)> {
    let Some(key) = h.root_key("status") else {
        return Vec::new();
    };
    let pick = |ops: Vec<OpIdx>| -> Option<(PermitStatus, &OpRec)> {
        ops.into_iter()
            .map(|o| &h.ops[o as usize])
            .filter_map(|op| Some((op.value.as_str()?.parse::<PermitStatus>().ok()?, op)))
            .max_by(|(sa, a), (sb, b)| {
                sa.precedence()
                    .cmp(&sb.precedence())
                    .then_with(|| h.op_order(a, b))
            })
    };
    let mut path = Vec::new();
    let mut cur = pick(h.effective(key, None));
    while let Some((status, op)) = cur {
        // each step goes to an op its author saw, so strictly back in time;
        // the bound only guards against a malformed graph
        if path.len() > h.ops.len() {
            break;
        }
        path.push((status, op));
        cur = pick(h.eff_union(&op.pred));
    }
    path
}
