//! Rules that span documents, reported as advisory `violations`.

use serde::{Deserialize, Serialize};

use crate::model::{EntityId, IsolationStatus, PermitStatus};

use super::guard::{failing_gases, GasReading};

/// A rule that does not hold; advisory, never silently "fixed".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The rule's code (`isolation_not_verified`, `closeout_missing`,
    /// `gas_reading_out_of_range`, `missing_type`).
    pub rule: String,
    /// What is wrong, for a person.
    pub detail: String,
}

/// What the store knows of a permit's related documents.
#[derive(Clone, Debug, Default)]
pub struct CrossRefs {
    /// The permit's isolation points (not deleted) and their status.
    pub isolation_points: Vec<(EntityId, Option<IsolationStatus>)>,
    /// The permit's closeouts (not deleted) and whether each is completed.
    pub closeouts: Vec<(EntityId, bool)>,
}

/// The violations of a permit in `status`, given its gas readings and related docs.
pub fn permit_violations(
    status: Option<PermitStatus>,
    readings: &[GasReading],
    refs: &CrossRefs,
) -> Vec<Violation> {
    let mut out = Vec::new();
    if status == Some(PermitStatus::Active) {
        let mut points = refs.isolation_points.clone();
        points.sort();
        for (id, st) in points {
            if st != Some(IsolationStatus::Verified) {
                let st = st.map(|s| s.as_str()).unwrap_or("without status");
                out.push(Violation {
                    rule: "isolation_not_verified".into(),
                    detail: format!("permit is active but isolation point {id} is {st}"),
                });
            }
        }
        for failure in failing_gases(readings) {
            out.push(Violation {
                rule: "gas_reading_out_of_range".into(),
                detail: format!("permit is active but {failure}"),
            });
        }
    }
    if status == Some(PermitStatus::Closed) && !refs.closeouts.iter().any(|(_, done)| *done) {
        out.push(Violation {
            rule: "closeout_missing".into(),
            detail: "permit is closed without a completed closeout".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> EntityId {
        EntityId::from_bytes([n; 16])
    }

    #[test]
    fn active_permit_needs_every_isolation_verified() {
        let refs = CrossRefs {
            isolation_points: vec![
                (id(2), Some(IsolationStatus::Isolated)),
                (id(1), Some(IsolationStatus::Verified)),
            ],
            closeouts: vec![],
        };
        let v = permit_violations(Some(PermitStatus::Active), &[], &refs);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].rule, "isolation_not_verified");
        assert!(v[0].detail.contains("isolated"));
        assert!(permit_violations(Some(PermitStatus::Approved), &[], &refs).is_empty());
    }

    #[test]
    fn closed_permit_needs_completed_closeout() {
        let open = CrossRefs {
            isolation_points: vec![],
            closeouts: vec![(id(1), false)],
        };
        assert_eq!(
            permit_violations(Some(PermitStatus::Closed), &[], &open)[0].rule,
            "closeout_missing"
        );
        let done = CrossRefs {
            isolation_points: vec![],
            closeouts: vec![(id(1), true)],
        };
        assert!(permit_violations(Some(PermitStatus::Closed), &[], &done).is_empty());
    }

    #[test]
    fn failing_gas_on_active_permit_is_reported() {
        let r = GasReading {
            id: "r".into(),
            gas: Some("H2S".into()),
            value: Some(20.0),
            min: Some(0.0),
            max: Some(10.0),
            taken_at: Some(1),
        };
        let v = permit_violations(Some(PermitStatus::Active), &[r], &CrossRefs::default());
        assert_eq!(v[0].rule, "gas_reading_out_of_range");
    }
}
