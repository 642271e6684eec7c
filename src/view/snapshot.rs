//! Typed reads of policed fields from a [`History`], now or as of a causal past.
//! Shared by the guard (judged in a change's past) and the rendered view.

use std::collections::BTreeMap;

use super::bitset::BitSet;
use super::guard::GasReading;
use super::history::History;

/// A true-wins map (`safety_checklist`, `checklist`): item -> OR of its
/// effective values.
pub(crate) fn true_wins_map(
    h: &History,
    field: &str,
    at: Option<&BitSet>,
) -> BTreeMap<String, bool> {
    h.items(field, at)
        .into_iter()
        .map(|(item, eff)| {
            let ticked = eff
                .iter()
                .any(|o| h.ops[*o as usize].value.as_bool() == Some(true));
            (item, ticked)
        })
        .collect()
}

/// The gas readings of a permit.
pub(crate) fn gas_readings(h: &History, at: Option<&BitSet>) -> Vec<GasReading> {
    let mut out = Vec::new();
    for (id, entries) in h.items("gas_readings", at) {
        // an entry id created by more than one valid op: read the winner's fields
        let Some(entry) = entries
            .iter()
            .copied()
            .max_by(|a, b| h.op_order(&h.ops[*a as usize], &h.ops[*b as usize]))
        else {
            continue;
        };
        let fields = h.entry_fields(entry, at);
        let num = |name: &str| fields.get(name).and_then(|o| o.value.as_f64());
        out.push(GasReading {
            id,
            gas: fields
                .get("gas")
                .and_then(|o| o.value.as_str())
                .map(str::to_string),
            value: num("value"),
            min: num("min"),
            max: num("max"),
            taken_at: fields.get("taken_at").and_then(|o| o.value.as_millis()),
        });
    }
    out
}

/// The `sha256` of every photo of a permit (lower-case hex, as written).
pub fn photo_hashes(h: &History) -> Vec<String> {
    let mut out = Vec::new();
    for entries in h.items("photos", None).into_values() {
        for entry in entries {
            if let Some(sha) = h
                .entry_fields(entry, None)
                .get("sha256")
                .and_then(|o| o.value.as_str())
            {
                out.push(sha.to_ascii_lowercase());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
