//! The activation guard (`approved -> active`) and the gas rule, as pure
//! functions over a snapshot of the permit's checklist and gas readings.

use std::collections::BTreeMap;

/// One gas reading as the guard sees it. Fields a client left out are `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GasReading {
    /// The reading's id (its key in `gas_readings`); breaks `taken_at` ties.
    pub id: String,
    /// The gas, e.g. `H2S`.
    pub gas: Option<String>,
    /// The measured value.
    pub value: Option<f64>,
    /// Lowest acceptable value.
    pub min: Option<f64>,
    /// Highest acceptable value.
    pub max: Option<f64>,
    /// When it was taken, in ms since the epoch.
    pub taken_at: Option<i64>,
}

/// The latest reading of each gas (by `taken_at`, ties by reading id), keyed by gas.
pub fn latest_per_gas(readings: &[GasReading]) -> BTreeMap<&str, &GasReading> {
    let mut latest: BTreeMap<&str, &GasReading> = BTreeMap::new();
    for r in readings {
        let Some(gas) = r.gas.as_deref() else {
            continue;
        };
        let newer = match latest.get(gas) {
            None => true,
            Some(cur) => (r.taken_at, r.id.as_str()) > (cur.taken_at, cur.id.as_str()),
        };
        if newer {
            latest.insert(gas, r);
        }
    }
    latest
}

/// Why a gas's latest reading fails, or `None` when it is within `[min, max]`.
pub fn reading_failure(gas: &str, r: &GasReading) -> Option<String> {
    match (r.value, r.min, r.max) {
        (Some(v), Some(lo), Some(hi)) if v >= lo && v <= hi => None,
        (Some(v), Some(lo), Some(hi)) => Some(format!(
            "gas {gas} latest reading {v:?} outside [{lo}, {hi}]"
        )),
        _ => Some(format!(
            "gas {gas} latest reading {} is incomplete (needs value, min and max)",
            r.id
        )),
    }
}

/// Every gas whose latest reading fails, with the reason, in gas order.
pub fn failing_gases(readings: &[GasReading]) -> Vec<String> {
    latest_per_gas(readings)
        .into_iter()
        .filter_map(|(gas, r)| reading_failure(gas, r))
        .collect()
}

/// The guard of `approved -> active`: a non-empty safety checklist with every
/// item ticked, and for every gas with readings, the latest one within range.
pub fn activation_guard(
    checklist: &BTreeMap<String, bool>,
    readings: &[GasReading],
) -> Result<(), String> {
    if checklist.is_empty() {
        return Err("safety checklist is empty".into());
    }
    let unticked: Vec<&str> = checklist
        .iter()
        .filter(|(_, ticked)| !**ticked)
        .map(|(item, _)| item.as_str())
        .collect();
    if !unticked.is_empty() {
        return Err(format!(
            "safety checklist items not ticked: {}",
            unticked.join(", ")
        ));
    }
    match failing_gases(readings).into_iter().next() {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(id: &str, gas: &str, value: f64, taken_at: i64) -> GasReading {
        GasReading {
            id: id.into(),
            gas: Some(gas.into()),
            value: Some(value),
            min: Some(0.0),
            max: Some(10.0),
            taken_at: Some(taken_at),
        }
    }

    fn ticked(items: &[(&str, bool)]) -> BTreeMap<String, bool> {
        items.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn empty_checklist_fails() {
        let err = activation_guard(&BTreeMap::new(), &[]).expect_err("fails");
        assert_eq!(err, "safety checklist is empty");
    }

    #[test]
    fn unticked_item_fails_and_is_named() {
        let err = activation_guard(&ticked(&[("a", true), ("b", false)]), &[]).expect_err("fails");
        assert_eq!(err, "safety checklist items not ticked: b");
    }

    #[test]
    fn all_ticked_without_readings_passes() {
        assert_eq!(activation_guard(&ticked(&[("a", true)]), &[]), Ok(()));
    }

    #[test]
    fn only_the_latest_reading_of_each_gas_counts() {
        let list = ticked(&[("a", true)]);
        let bad_then_good = [reading("r1", "H2S", 12.0, 1), reading("r2", "H2S", 3.0, 2)];
        assert_eq!(activation_guard(&list, &bad_then_good), Ok(()));
        let good_then_bad = [reading("r1", "H2S", 3.0, 1), reading("r2", "H2S", 12.0, 2)];
        assert_eq!(
            activation_guard(&list, &good_then_bad).expect_err("fails"),
            "gas H2S latest reading 12.0 outside [0, 10]"
        );
    }

    #[test]
    fn taken_at_ties_break_by_reading_id() {
        let list = ticked(&[("a", true)]);
        let tie = [reading("b", "O2", 12.0, 5), reading("a", "O2", 3.0, 5)];
        // "b" > "a": the failing reading is the latest
        assert!(activation_guard(&list, &tie).is_err());
        let tie = [reading("a", "O2", 12.0, 5), reading("b", "O2", 3.0, 5)];
        assert!(activation_guard(&list, &tie).is_ok());
    }

    #[test]
    fn bounds_are_inclusive_and_each_gas_is_judged() {
        let list = ticked(&[("a", true)]);
        let ok = [reading("1", "H2S", 0.0, 1), reading("2", "CO", 10.0, 1)];
        assert!(activation_guard(&list, &ok).is_ok());
        let one_bad = [reading("1", "H2S", 0.0, 1), reading("2", "CO", 10.5, 1)];
        assert_eq!(failing_gases(&one_bad).len(), 1);
    }

    #[test]
    fn incomplete_latest_reading_fails() {
        let mut r = reading("1", "LEL", 1.0, 1);
        r.max = None;
        assert!(activation_guard(&ticked(&[("a", true)]), &[r]).is_err());
    }
}
