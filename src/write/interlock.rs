//! Hard interlocks on local writes: rules across documents that stop work at
//! the API (activation needs verified isolation and the work type's gas tests,
//! closing needs a completed closeout). Pure: the store gathers the facts.
//!
//! A merge is never refused: after a merge the view reports an active permit
//! with an isolation point not verified (`isolation_not_verified`) or an
//! out-of-range latest reading (`gas_reading_out_of_range`), and a closed
//! permit without a completed closeout (`closeout_missing`), on every replica.
//! Which gases a work type needs is the node's configuration, so it is checked
//! on local writes only: the view stays a function of the changes alone.

use std::collections::BTreeMap;

use crate::model::{IsolationStatus, PermitStatus};
use crate::view::{latest_per_gas, GasReading};

/// Which gas readings a work type needs before a permit of it is activated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GasRequirement {
    /// At least one reading (of any gas), every latest one in range.
    AnyReading,
    /// An in-range latest reading of each of these gases.
    Gases(Vec<String>),
}

/// The configurable part of the interlocks: gas requirements by work type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interlocks {
    /// Normalised work type (`hot_work`) -> what it needs.
    gases: BTreeMap<String, GasRequirement>,
}

impl Default for Interlocks {
    /// Hot work and confined-space entry need at least one reading.
    fn default() -> Self {
        let mut gases = BTreeMap::new();
        gases.insert("hot_work".into(), GasRequirement::AnyReading);
        gases.insert("confined_space".into(), GasRequirement::AnyReading);
        Interlocks { gases }
    }
}

/// `Hot Work`, `hot-work` and `hot_work` are one work type.
pub fn normalise_work_type(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

impl Interlocks {
    /// Set the requirement of a work type from a rule `WORK_TYPE=any`,
    /// `WORK_TYPE=GAS,GAS,...` or `WORK_TYPE=none` (the form of `serve
    /// --require-gas`).
    pub fn set_rule(&mut self, rule: &str) -> Result<(), String> {
        let (work_type, gases) = rule
            .split_once('=')
            .ok_or_else(|| format!("gas rule {rule:?} is not WORK_TYPE=any|none|GAS,GAS"))?;
        let work_type = normalise_work_type(work_type);
        if work_type.is_empty() {
            return Err(format!("gas rule {rule:?} names no work type"));
        }
        match gases.trim() {
            "any" => {
                self.gases.insert(work_type, GasRequirement::AnyReading);
            }
            "none" | "" => {
                self.gases.remove(&work_type);
            }
            list => {
                let gases: Vec<String> = list
                    .split(',')
                    .map(|g| g.trim().to_string())
                    .filter(|g| !g.is_empty())
                    .collect();
                self.gases.insert(work_type, GasRequirement::Gases(gases));
            }
        }
        Ok(())
    }

    /// What `work_type` needs, if anything.
    pub fn gas_requirement(&self, work_type: &str) -> Option<&GasRequirement> {
        self.gases.get(&normalise_work_type(work_type))
    }

    /// The gas tests `work_type` lacks, given the permit's readings: each a
    /// sentence naming the gas. Out-of-range latest readings are the view's
    /// own rule and are not repeated here.
    pub fn missing_gas_tests(&self, work_type: &str, readings: &[GasReading]) -> Vec<String> {
        let latest = latest_per_gas(readings);
        match self.gas_requirement(work_type) {
            None => Vec::new(),
            Some(GasRequirement::AnyReading) if latest.is_empty() => vec![format!(
                "work type {work_type} needs a gas test and none is recorded"
            )],
            Some(GasRequirement::AnyReading) => Vec::new(),
            Some(GasRequirement::Gases(gases)) => gases
                .iter()
                .filter(|g| !latest.contains_key(g.as_str()))
                .map(|g| format!("work type {work_type} needs a reading of gas {g}"))
                .collect(),
        }
    }
}

/// One isolation point of the permit, as the interlock needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct IsolationFact {
    /// Its description (how people name it).
    pub description: String,
    /// Its status.
    pub status: Option<IsolationStatus>,
}

/// What the interlocks of a permit depend on, gathered by the store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PermitFacts {
    /// The permit's work type.
    pub work_type: String,
    /// Its gas readings.
    pub readings: Vec<GasReading>,
    /// Its isolation points (not deleted).
    pub isolation_points: Vec<IsolationFact>,
    /// Whether each of its closeouts is completed.
    pub closeouts: Vec<bool>,
}

/// Check a local move of a permit to `to`. `Err` holds one sentence per
/// failed rule, naming isolation points by description and gases by name.
pub fn check_transition(
    to: PermitStatus,
    facts: &PermitFacts,
    rules: &Interlocks,
) -> Result<(), Vec<String>> {
    let mut failed = Vec::new();
    match to {
        PermitStatus::Active => {
            let mut points: Vec<&IsolationFact> = facts.isolation_points.iter().collect();
            points.sort_by(|a, b| a.description.cmp(&b.description));
            for p in points {
                if p.status != Some(IsolationStatus::Verified) {
                    let st = p.status.map(|s| s.as_str()).unwrap_or("without status");
                    failed.push(format!(
                        "isolation point {:?} is {st}, not verified",
                        p.description
                    ));
                }
            }
            // an out-of-range latest reading is the activation guard's rule
            // (judged in the change's causal past), not repeated here
            failed.extend(rules.missing_gas_tests(&facts.work_type, &facts.readings));
        }
        PermitStatus::Closed if !facts.closeouts.iter().any(|done| *done) => {
            failed.push("the permit has no completed closeout".into());
        }
        _ => {}
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(gas: &str, value: f64) -> GasReading {
        GasReading {
            id: format!("r-{gas}-{value}"),
            gas: Some(gas.into()),
            value: Some(value),
            min: Some(0.0),
            max: Some(10.0),
            taken_at: Some(1),
        }
    }

    fn point(description: &str, status: IsolationStatus) -> IsolationFact {
        IsolationFact {
            description: description.into(),
            status: Some(status),
        }
    }

    #[test]
    fn activation_needs_every_isolation_point_verified_named_by_description() {
        let facts = PermitFacts {
            work_type: "mechanical".into(),
            isolation_points: vec![
                point("Suction valve V-12", IsolationStatus::Assigned),
                point("Breaker B-3", IsolationStatus::Verified),
            ],
            ..Default::default()
        };
        let rules = Interlocks::default();
        assert_eq!(
            check_transition(PermitStatus::Active, &facts, &rules),
            Err(vec![
                "isolation point \"Suction valve V-12\" is assigned, not verified".into()
            ])
        );
        let mut ok = facts;
        ok.isolation_points[0].status = Some(IsolationStatus::Verified);
        assert_eq!(check_transition(PermitStatus::Active, &ok, &rules), Ok(()));
    }

    #[test]
    fn hot_work_needs_a_reading_and_configured_gases_are_named() {
        let mut rules = Interlocks::default();
        let hot = PermitFacts {
            work_type: "Hot Work".into(),
            ..Default::default()
        };
        assert_eq!(
            check_transition(PermitStatus::Active, &hot, &rules),
            Err(vec![
                "work type Hot Work needs a gas test and none is recorded".into()
            ])
        );
        let tested = PermitFacts {
            readings: vec![reading("LEL", 1.0)],
            ..hot.clone()
        };
        assert_eq!(
            check_transition(PermitStatus::Active, &tested, &rules),
            Ok(())
        );
        // configured: confined space needs O2 and H2S
        rules.set_rule("confined space=O2, H2S").expect("rule");
        let cs = PermitFacts {
            work_type: "confined_space".into(),
            readings: vec![reading("O2", 5.0)],
            ..Default::default()
        };
        assert_eq!(
            check_transition(PermitStatus::Active, &cs, &rules),
            Err(vec![
                "work type confined_space needs a reading of gas H2S".into()
            ])
        );
        rules.set_rule("hot-work=none").expect("rule");
        assert_eq!(rules.gas_requirement("hot work"), None);
        assert!(rules.set_rule("no equals sign").is_err());
        assert!(rules.set_rule("=any").is_err());
    }

    #[test]
    fn closing_needs_a_completed_closeout() {
        let rules = Interlocks::default();
        let mut facts = PermitFacts {
            closeouts: vec![false],
            ..Default::default()
        };
        assert_eq!(
            check_transition(PermitStatus::Closed, &facts, &rules),
            Err(vec!["the permit has no completed closeout".into()])
        );
        facts.closeouts.push(true);
        assert_eq!(
            check_transition(PermitStatus::Closed, &facts, &rules),
            Ok(())
        );
        // other moves are the workflow's business, not the interlocks'
        assert_eq!(
            check_transition(PermitStatus::Completed, &PermitFacts::default(), &rules),
            Ok(())
        );
    }
}
