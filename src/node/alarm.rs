//! Alarms: the safety rules a permit breaks after a merge (the view's
//! `violations`), said the way an operator reads them: isolation points by
//! their description, gases by name with the reading and its unit.
//!
//! Pure: [`permit_alarms`] takes what the store and the
//! [`PermitIndex`](super::permit_index::PermitIndex) know of a permit and
//! returns its alarms. The rules are those of
//! [`crate::view::permit_violations`] (tested below against it): an active
//! permit with an isolation point not verified (`isolation_not_verified`) or
//! a gas whose latest reading is out of range or incomplete
//! (`gas_reading_out_of_range`), a closed permit without a completed closeout
//! (`closeout_missing`).

use serde::Serialize;

use crate::model::{EntityId, IsolationStatus, PermitStatus};
use crate::view::{latest_per_gas, GasReading};

/// One rule a permit breaks.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub(super) struct Alarm {
    /// The rule's code, as in the view's `violations`.
    pub(super) rule: &'static str,
    /// What is wrong, for a person.
    pub(super) detail: String,
    /// The gas reading, for `gas_reading_out_of_range`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) gas: Option<GasAlarm>,
    /// The isolation point, for `isolation_not_verified`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) isolation_point: Option<PointAlarm>,
}

/// The latest reading of a gas, out of range or incomplete.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub(super) struct GasAlarm {
    /// The gas (`H2S`).
    pub(super) gas: String,
    /// The measured value.
    pub(super) value: Option<f64>,
    /// Its unit, as written (`ppm`, `%LEL`).
    pub(super) unit: String,
    /// Lowest acceptable value.
    pub(super) min: Option<f64>,
    /// Highest acceptable value.
    pub(super) max: Option<f64>,
    /// When it was taken (ms since the epoch).
    pub(super) taken_at: Option<i64>,
}

/// An isolation point that is not verified.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub(super) struct PointAlarm {
    /// Its id.
    pub(super) id: EntityId,
    /// Its description (how people name it).
    pub(super) description: String,
    /// Its status (`assigned`, `isolated`, `deisolated`), if any.
    pub(super) status: Option<String>,
}

/// An isolation point of a permit, as the alarms need it.
#[derive(Clone, Debug)]
pub(super) struct PointFact {
    /// Its id.
    pub(super) id: EntityId,
    /// Its description.
    pub(super) description: String,
    /// Its status.
    pub(super) status: Option<IsolationStatus>,
}

/// The latest reading of each gas that fails its range (or lacks a value,
/// min or max), with its unit, in gas order: what an active permit alarms on.
/// `unit_of(reading id)` gives a reading's unit.
pub(super) fn failing_readings(
    readings: &[GasReading],
    unit_of: impl Fn(&str) -> String,
) -> Vec<GasAlarm> {
    latest_per_gas(readings)
        .into_iter()
        .filter(|(_, r)| !in_range(r))
        .map(|(gas, r)| GasAlarm {
            gas: gas.to_string(),
            value: r.value,
            unit: unit_of(&r.id),
            min: r.min,
            max: r.max,
            taken_at: r.taken_at,
        })
        .collect()
}

/// Whether a reading has a value, min and max, and the value lies within.
fn in_range(r: &GasReading) -> bool {
    matches!((r.value, r.min, r.max), (Some(v), Some(lo), Some(hi)) if v >= lo && v <= hi)
}

/// The alarms of a permit in `status`, given the failing latest gas readings,
/// its isolation points and whether each of its closeouts is completed (all
/// of the permit's own tenant and not deleted).
pub(super) fn permit_alarms(
    status: Option<PermitStatus>,
    failing: &[GasAlarm],
    points: &[PointFact],
    closeouts: &[bool],
) -> Vec<Alarm> {
    let mut out = Vec::new();
    if status == Some(PermitStatus::Active) {
        let mut points: Vec<&PointFact> = points.iter().collect();
        points.sort_by(|a, b| (&a.description, a.id).cmp(&(&b.description, b.id)));
        for p in points {
            if p.status == Some(IsolationStatus::Verified) {
                continue;
            }
            let name = if p.description.trim().is_empty() {
                format!("(no description, id {})", short(p.id))
            } else {
                format!("{:?}", p.description)
            };
            let state = match p.status {
                Some(st) => format!("is {}, not verified", st.as_str()),
                None => "has no status, not verified".into(),
            };
            out.push(Alarm {
                rule: "isolation_not_verified",
                detail: format!("Isolation point {name} {state}"),
                gas: None,
                isolation_point: Some(PointAlarm {
                    id: p.id,
                    description: p.description.clone(),
                    status: p.status.map(|s| s.as_str().to_string()),
                }),
            });
        }
        for g in failing {
            out.push(Alarm {
                rule: "gas_reading_out_of_range",
                detail: gas_detail(g),
                gas: Some(g.clone()),
                isolation_point: None,
            });
        }
    }
    if status == Some(PermitStatus::Closed) && !closeouts.iter().any(|done| *done) {
        out.push(Alarm {
            rule: "closeout_missing",
            detail: "Closed without a completed closeout".into(),
            gas: None,
            isolation_point: None,
        });
    }
    out
}

/// `Gas H2S: latest reading 12.5 ppm, allowed 0–10 ppm`.
fn gas_detail(g: &GasAlarm) -> String {
    let unit = if g.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", g.unit)
    };
    match (g.value, g.min, g.max) {
        (Some(v), Some(lo), Some(hi)) => format!(
            "Gas {}: latest reading {}{unit}, allowed {}–{}{unit}",
            g.gas,
            num(v),
            num(lo),
            num(hi)
        ),
        _ => format!(
            "Gas {}: latest reading is incomplete (it needs a value, min and max)",
            g.gas
        ),
    }
}

/// A number as people write it: `12.5`, `10`, not `10.0`.
fn num(x: f64) -> String {
    format!("{x}")
}

fn short(id: EntityId) -> String {
    id.to_string().chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{permit_violations, CrossRefs};

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

    fn point(n: u8, description: &str, status: Option<IsolationStatus>) -> PointFact {
        PointFact {
            id: EntityId::from_bytes([n; 16]),
            description: description.into(),
            status,
        }
    }

    fn rules(alarms: &[Alarm]) -> Vec<&str> {
        alarms.iter().map(|a| a.rule).collect()
    }

    #[test]
    fn an_active_permit_alarms_on_points_and_gases_named_by_description_and_gas() {
        let readings = [
            reading("a", "H2S", 3.0, 1),
            reading("b", "H2S", 12.5, 2),
            reading("c", "O2", 5.0, 1),
        ];
        let failing = failing_readings(&readings, |id| if id == "b" { "ppm" } else { "%" }.into());
        let points = [
            point(1, "Main breaker", Some(IsolationStatus::Isolated)),
            point(2, "Suction valve V-12", Some(IsolationStatus::Verified)),
            point(3, "", None),
        ];
        let alarms = permit_alarms(Some(PermitStatus::Active), &failing, &points, &[]);
        let details: Vec<&str> = alarms.iter().map(|a| a.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "Isolation point (no description, id 03030303) has no status, not verified",
                "Isolation point \"Main breaker\" is isolated, not verified",
                "Gas H2S: latest reading 12.5 ppm, allowed 0–10 ppm",
            ]
        );
        assert_eq!(
            alarms[1]
                .isolation_point
                .as_ref()
                .map(|p| p.description.as_str()),
            Some("Main breaker")
        );
        assert_eq!(alarms[2].gas.as_ref().map(|g| g.value), Some(Some(12.5)));
        // the same permit approved, or closed with a completed closeout: no alarm
        assert!(permit_alarms(Some(PermitStatus::Approved), &failing, &points, &[]).is_empty());
        assert!(permit_alarms(Some(PermitStatus::Closed), &failing, &points, &[true]).is_empty());
        assert_eq!(
            rules(&permit_alarms(
                Some(PermitStatus::Closed),
                &failing,
                &points,
                &[false]
            )),
            ["closeout_missing"]
        );
    }

    #[test]
    fn an_incomplete_latest_reading_alarms_like_the_view() {
        let mut r = reading("a", "CO", 1.0, 1);
        r.max = None;
        let failing = failing_readings(&[r], |_| "ppm".into());
        let alarms = permit_alarms(Some(PermitStatus::Active), &failing, &[], &[]);
        assert_eq!(
            alarms[0].detail,
            "Gas CO: latest reading is incomplete (it needs a value, min and max)"
        );
    }

    /// The alarms raise exactly the rules the view reports as violations.
    #[test]
    fn the_rules_are_the_views() {
        let readings = [
            vec![],
            vec![reading("a", "H2S", 3.0, 1)],
            vec![reading("a", "H2S", 3.0, 1), reading("b", "H2S", 30.0, 2)],
            vec![reading("a", "H2S", 30.0, 1), reading("b", "H2S", 3.0, 2)],
            vec![reading("a", "H2S", -1.0, 1), reading("b", "O2", 11.0, 1)],
        ];
        let points = [
            vec![],
            vec![point(1, "A", Some(IsolationStatus::Verified))],
            vec![
                point(1, "A", Some(IsolationStatus::Assigned)),
                point(2, "B", None),
                point(3, "C", Some(IsolationStatus::Deisolated)),
            ],
        ];
        let closeouts = [vec![], vec![false], vec![false, true]];
        for status in PermitStatus::ALL {
            for rs in &readings {
                for ps in &points {
                    for cs in &closeouts {
                        let refs = CrossRefs {
                            isolation_points: ps.iter().map(|p| (p.id, p.status)).collect(),
                            closeouts: cs
                                .iter()
                                .enumerate()
                                .map(|(i, done)| (EntityId::from_bytes([i as u8; 16]), *done))
                                .collect(),
                        };
                        let mut want: Vec<String> = permit_violations(Some(status), rs, &refs)
                            .into_iter()
                            .map(|v| v.rule)
                            .collect();
                        let failing = failing_readings(rs, |_| String::new());
                        let mut got: Vec<String> =
                            rules(&permit_alarms(Some(status), &failing, ps, cs))
                                .into_iter()
                                .map(str::to_string)
                                .collect();
                        want.sort();
                        got.sort();
                        assert_eq!(got, want, "{status} {rs:?} {ps:?} {cs:?}");
                    }
                }
            }
        }
    }
}
