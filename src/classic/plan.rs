//! The pure core of the classic sync API: turn one client update, made
//! against an old version of an entity, into edits of the current version,
//! or into conflicts.
//!
//! Per field policy (see `docs/classic-api.md`):
//! - last-writer-wins strings: someone else wrote the field after the
//!   client's version and the values differ: a `stale_version` conflict;
//! - text: the client's text is merged character by character with what
//!   others wrote since (a three-way merge the caller performs in Automerge);
//! - set-merge: the client's additions and removals against its version are
//!   applied; an item someone else touched since keeps their write (add-wins);
//! - true-wins: ticks apply; an untick of an item someone else ticked since
//!   is not applied (true wins);
//! - status: a workflow or monotonic move from the current status, judged by
//!   the write path.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

use crate::write::Edit;

/// A field value sent by a classic client, typed by the field's policy.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A last-writer-wins string.
    Lww(String),
    /// A text field's whole content.
    Text(String),
    /// A set-merge field's items.
    Set(BTreeSet<String>),
    /// A true-wins map's items (a partial map is fine).
    Checks(BTreeMap<String, bool>),
    /// A true-wins flag.
    Flag(bool),
    /// A status.
    Status(String),
}

/// An entity's policed fields at one version, as the plan needs them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Last-writer-wins, text and status fields.
    pub strings: BTreeMap<String, String>,
    /// Set-merge fields.
    pub sets: BTreeMap<String, BTreeSet<String>>,
    /// True-wins maps.
    pub checks: BTreeMap<String, BTreeMap<String, bool>>,
    /// True-wins flags.
    pub flags: BTreeMap<String, bool>,
    /// The Automerge object holding each text field (a client that writes a
    /// whole new Text object replaces the field instead of editing it).
    pub text_objects: BTreeMap<String, String>,
}

/// A field the client and someone else both changed.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldConflict {
    /// The client's value.
    pub client: Value,
    /// The server's current value.
    pub server: Value,
    /// How the policy merges it (`last_write_wins`: a person decides).
    pub merge_hint: &'static str,
}

/// A field merged with what others wrote since the client's version.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldMerge {
    /// `text_merge`, `set_merge` or `true_wins`.
    pub merge_hint: &'static str,
    /// Items of the client's change that the merge did not apply (for
    /// `set_merge` removals and `true_wins` unticks), if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_server: Vec<String>,
}

/// What to write for one client update.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Edits of the current version.
    pub edits: Vec<Edit>,
    /// Text fields to merge three ways: (field, the client's text).
    pub text_merges: Vec<(String, String)>,
    /// Fields merged with other writers' changes.
    pub merged: BTreeMap<String, FieldMerge>,
}

/// Plan a client update. `base` is the entity at the client's version, `now`
/// the current one, and `others` the paths (`title`,
/// `safety_checklist.gas_test`, ...) that someone other than the client wrote
/// after the client's version.
pub fn plan(
    inputs: &[(String, Input)],
    base: &Snapshot,
    now: &Snapshot,
    others: &BTreeSet<String>,
) -> Result<Plan, BTreeMap<String, FieldConflict>> {
    let mut out = Plan::default();
    let mut conflicts = BTreeMap::new();
    let touched_item = |field: &str, item: &str| others.contains(&format!("{field}.{item}"));
    for (field, input) in inputs {
        let f = field.clone();
        match input {
            Input::Lww(value) => {
                let current = now.strings.get(field);
                if current == Some(value) || base.strings.get(field) == Some(value) {
                    continue; // nothing new, or the client did not change it
                }
                if others.contains(field) {
                    conflicts.insert(
                        f,
                        FieldConflict {
                            client: json!(value),
                            server: json!(current),
                            merge_hint: "last_write_wins",
                        },
                    );
                } else {
                    out.edits.push(Edit::SetField {
                        field: f,
                        value: value.clone(),
                    });
                }
            }
            Input::Text(text) => {
                let current = now.strings.get(field).cloned().unwrap_or_default();
                let at_base = base.strings.get(field).cloned().unwrap_or_default();
                if *text == current || *text == at_base {
                    continue; // nothing new from the client
                }
                if current == at_base {
                    out.edits.push(Edit::SetText {
                        field: f,
                        text: text.clone(),
                    });
                } else if base.text_objects.get(field) != now.text_objects.get(field) {
                    // someone replaced the whole text since: nothing to merge into
                    conflicts.insert(
                        f,
                        FieldConflict {
                            client: json!(text),
                            server: json!(current),
                            merge_hint: "text_replaced",
                        },
                    );
                } else {
                    out.text_merges.push((f.clone(), text.clone()));
                    out.merged.insert(
                        f,
                        FieldMerge {
                            merge_hint: "text_merge",
                            kept_server: Vec::new(),
                        },
                    );
                }
            }
            Input::Set(items) => {
                let empty = BTreeSet::new();
                let at_base = base.sets.get(field).unwrap_or(&empty);
                let current = now.sets.get(field).unwrap_or(&empty);
                let mut kept = Vec::new();
                for item in items.difference(at_base) {
                    if !current.contains(item) {
                        out.edits.push(Edit::AddItem {
                            field: f.clone(),
                            item: item.clone(),
                        });
                    }
                }
                for item in at_base.difference(items) {
                    if !current.contains(item) {
                        continue;
                    }
                    if touched_item(field, item) {
                        kept.push(item.clone()); // a concurrent add wins
                    } else {
                        out.edits.push(Edit::RemoveItem {
                            field: f.clone(),
                            item: item.clone(),
                        });
                    }
                }
                if current != at_base || !kept.is_empty() {
                    out.merged.insert(
                        f,
                        FieldMerge {
                            merge_hint: "set_merge",
                            kept_server: kept,
                        },
                    );
                }
            }
            Input::Checks(items) => {
                let empty = BTreeMap::new();
                let at_base = base.checks.get(field).unwrap_or(&empty);
                let current = now.checks.get(field).unwrap_or(&empty);
                let mut kept = Vec::new();
                for (item, &ticked) in items {
                    if at_base.get(item) == Some(&ticked) && current.contains_key(item) {
                        continue; // the client did not change it
                    }
                    match (ticked, current.get(item)) {
                        (true, Some(true)) | (false, Some(false)) => {}
                        (false, Some(true)) if touched_item(field, item) => {
                            kept.push(item.clone()); // ticked by someone else since: true wins
                        }
                        _ => out.edits.push(Edit::Tick {
                            field: f.clone(),
                            item: item.clone(),
                            ticked,
                        }),
                    }
                }
                if current != at_base || !kept.is_empty() {
                    out.merged.insert(
                        f,
                        FieldMerge {
                            merge_hint: "true_wins",
                            kept_server: kept,
                        },
                    );
                }
            }
            Input::Flag(value) => {
                let current = now.flags.get(field).copied().unwrap_or(false);
                let at_base = base.flags.get(field).copied().unwrap_or(false);
                if *value == current || *value == at_base {
                    if current && !value && at_base != current {
                        out.merged.insert(
                            f,
                            FieldMerge {
                                merge_hint: "true_wins",
                                kept_server: vec![field.clone()],
                            },
                        );
                    }
                    continue;
                }
                out.edits.push(Edit::SetFlag {
                    field: f,
                    value: *value,
                });
            }
            Input::Status(status) => {
                if now.strings.get(field) != Some(status) {
                    out.edits.push(Edit::SetStatus(status.clone()));
                }
            }
        }
    }
    if conflicts.is_empty() {
        Ok(out)
    } else {
        Err(conflicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(strings: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            strings: strings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Snapshot::default()
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn paths(p: &[&str]) -> BTreeSet<String> {
        set(p)
    }

    #[test]
    fn a_stale_scalar_someone_else_changed_is_a_conflict() {
        let base = snap(&[("title", "A")]);
        let now = snap(&[("title", "B")]);
        let inputs = vec![("title".to_string(), Input::Lww("C".into()))];
        let conflicts = plan(&inputs, &base, &now, &paths(&["title"])).expect_err("a conflict");
        assert_eq!(conflicts["title"].client, json!("C"));
        assert_eq!(conflicts["title"].server, json!("B"));
        assert_eq!(conflicts["title"].merge_hint, "last_write_wins");
        // the same value is no conflict; a field nobody else wrote is applied
        let same = vec![("title".to_string(), Input::Lww("B".into()))];
        assert_eq!(
            plan(&same, &base, &now, &paths(&["title"])),
            Ok(Plan::default())
        );
        // a client that sends its whole record, title unchanged: nothing
        let unchanged = vec![("title".to_string(), Input::Lww("A".into()))];
        assert_eq!(
            plan(&unchanged, &base, &now, &paths(&["title"])),
            Ok(Plan::default())
        );
        let fresh = plan(&inputs, &base, &now, &paths(&[])).expect("applies");
        assert_eq!(
            fresh.edits,
            vec![Edit::SetField {
                field: "title".into(),
                value: "C".into()
            }]
        );
    }

    #[test]
    fn sets_merge_additions_and_removals_against_the_clients_version() {
        let mut base = Snapshot::default();
        base.sets
            .insert("ppe".into(), set(&["gloves", "helmet", "boots"]));
        let mut now = Snapshot::default();
        // since: someone added "mask" and re-wrote "boots"
        now.sets
            .insert("ppe".into(), set(&["gloves", "helmet", "boots", "mask"]));
        // the client removed helmet and boots, added goggles
        let inputs = vec![("ppe".to_string(), Input::Set(set(&["gloves", "goggles"])))];
        let p = plan(&inputs, &base, &now, &paths(&["ppe.mask", "ppe.boots"])).expect("merges");
        assert_eq!(
            p.edits,
            vec![
                Edit::AddItem {
                    field: "ppe".into(),
                    item: "goggles".into()
                },
                Edit::RemoveItem {
                    field: "ppe".into(),
                    item: "helmet".into()
                },
            ]
        );
        assert_eq!(p.merged["ppe"].merge_hint, "set_merge");
        assert_eq!(p.merged["ppe"].kept_server, vec!["boots".to_string()]);
    }

    #[test]
    fn an_untick_loses_to_a_tick_made_since() {
        let mut base = Snapshot::default();
        base.checks.insert(
            "chk".into(),
            [("gas".to_string(), true), ("fire".to_string(), false)].into(),
        );
        let mut now = base.clone();
        now.checks
            .get_mut("chk")
            .expect("chk")
            .insert("fire".into(), true);
        now.checks
            .get_mut("chk")
            .expect("chk")
            .insert("gas".into(), true);
        let inputs = vec![(
            "chk".to_string(),
            Input::Checks([("gas".to_string(), false), ("fire".to_string(), false)].into()),
        )];
        let p = plan(&inputs, &base, &now, &paths(&["chk.fire"])).expect("merges");
        // gas: the client saw it ticked and unticked it: honoured
        // fire: the client left it alone (false at its version): nothing
        assert_eq!(
            p.edits,
            vec![Edit::Tick {
                field: "chk".into(),
                item: "gas".into(),
                ticked: false
            }]
        );
        // an untick of an item the client saw ticked, re-ticked by someone
        // else since, is not applied: true wins
        let unt = vec![(
            "chk".to_string(),
            Input::Checks([("gas".to_string(), false)].into()),
        )];
        let p = plan(&unt, &base, &now, &paths(&["chk.gas"])).expect("merges");
        assert!(p.edits.is_empty(), "{:?}", p.edits);
        assert_eq!(p.merged["chk"].merge_hint, "true_wins");
        assert_eq!(p.merged["chk"].kept_server, vec!["gas".to_string()]);
    }

    #[test]
    fn text_merges_three_ways_only_when_both_sides_changed() {
        let base = snap(&[("description", "one")]);
        let same = snap(&[("description", "one")]);
        let moved = snap(&[("description", "one two")]);
        let inputs = vec![("description".to_string(), Input::Text("zero one".into()))];
        let p = plan(&inputs, &base, &same, &paths(&[])).expect("plain");
        assert_eq!(
            p.edits,
            vec![Edit::SetText {
                field: "description".into(),
                text: "zero one".into()
            }]
        );
        let p = plan(&inputs, &base, &moved, &paths(&[])).expect("merge");
        assert!(p.edits.is_empty());
        assert_eq!(
            p.text_merges,
            vec![("description".into(), "zero one".into())]
        );
        assert_eq!(p.merged["description"].merge_hint, "text_merge");
        // a text replaced as a whole since (a new Text object): a conflict
        let mut replaced = moved.clone();
        replaced
            .text_objects
            .insert("description".into(), "7@bb".into());
        let mut base_obj = base.clone();
        base_obj
            .text_objects
            .insert("description".into(), "2@aa".into());
        let conflicts =
            plan(&inputs, &base_obj, &replaced, &paths(&[])).expect_err("replaced text");
        assert_eq!(conflicts["description"].merge_hint, "text_replaced");
        // the client's unchanged text never overwrites newer text
        let stale = vec![("description".to_string(), Input::Text("one".into()))];
        assert_eq!(
            plan(&stale, &base, &moved, &paths(&[])),
            Ok(Plan::default())
        );
    }
}
