use std::fmt;
use std::str::FromStr;

/// The workflow status of a permit.
///
/// Legal transitions: `draft -> submitted -> approved -> active -> completed -> closed`,
/// `submitted -> draft`, `active -> suspended -> active`, `suspended -> completed`,
/// `draft | submitted | approved | suspended -> cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PermitStatus {
    /// Being written.
    Draft,
    /// Waiting for approval.
    Submitted,
    /// Approved, not yet started.
    Approved,
    /// Work in progress (guarded: checklist and gas readings must pass).
    Active,
    /// Work paused.
    Suspended,
    /// Work done.
    Completed,
    /// Closed out.
    Closed,
    /// Withdrawn.
    Cancelled,
}

impl PermitStatus {
    /// Every status.
    pub const ALL: [PermitStatus; 8] = [
        PermitStatus::Draft,
        PermitStatus::Submitted,
        PermitStatus::Approved,
        PermitStatus::Active,
        PermitStatus::Suspended,
        PermitStatus::Completed,
        PermitStatus::Closed,
        PermitStatus::Cancelled,
    ];

    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            PermitStatus::Draft => "draft",
            PermitStatus::Submitted => "submitted",
            PermitStatus::Approved => "approved",
            PermitStatus::Active => "active",
            PermitStatus::Suspended => "suspended",
            PermitStatus::Completed => "completed",
            PermitStatus::Closed => "closed",
            PermitStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the workflow allows `self -> to`. Writing the current status again
    /// is not a transition and is not allowed by this function.
    pub fn can_transition_to(self, to: PermitStatus) -> bool {
        use PermitStatus::*;
        matches!(
            (self, to),
            (Draft, Submitted)
                | (Submitted, Approved)
                | (Approved, Active)
                | (Active, Completed)
                | (Completed, Closed)
                | (Submitted, Draft)
                | (Active, Suspended)
                | (Suspended, Active)
                | (Suspended, Completed)
                | (Draft | Submitted | Approved | Suspended, Cancelled)
        )
    }

    /// Whether `self -> to` needs the activation guard (checklist and gas).
    pub fn needs_guard(self, to: PermitStatus) -> bool {
        self == PermitStatus::Approved && to == PermitStatus::Active
    }

    /// Precedence among concurrent values, safety first:
    /// `cancelled > closed > suspended > completed > active > approved > submitted > draft`.
    pub fn precedence(self) -> u8 {
        match self {
            PermitStatus::Draft => 0,
            PermitStatus::Submitted => 1,
            PermitStatus::Approved => 2,
            PermitStatus::Active => 3,
            PermitStatus::Completed => 4,
            PermitStatus::Suspended => 5,
            PermitStatus::Closed => 6,
            PermitStatus::Cancelled => 7,
        }
    }
}

impl fmt::Display for PermitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PermitStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PermitStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let valid: Vec<&str> = PermitStatus::ALL.iter().map(|v| v.as_str()).collect();
                format!("unknown permit status {s:?} (valid: {})", valid.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::PermitStatus::{self, *};

    #[test]
    fn every_documented_transition_is_allowed_and_nothing_else() {
        let allowed = [
            (Draft, Submitted),
            (Submitted, Approved),
            (Approved, Active),
            (Active, Completed),
            (Completed, Closed),
            (Submitted, Draft),
            (Active, Suspended),
            (Suspended, Active),
            (Suspended, Completed),
            (Draft, Cancelled),
            (Submitted, Cancelled),
            (Approved, Cancelled),
            (Suspended, Cancelled),
        ];
        for from in PermitStatus::ALL {
            for to in PermitStatus::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn only_approved_to_active_is_guarded() {
        for from in PermitStatus::ALL {
            for to in PermitStatus::ALL {
                assert_eq!(from.needs_guard(to), from == Approved && to == Active);
            }
        }
    }

    #[test]
    fn precedence_is_safety_first_and_total() {
        let order = [
            Cancelled, Closed, Suspended, Completed, Active, Approved, Submitted, Draft,
        ];
        for pair in order.windows(2) {
            assert!(pair[0].precedence() > pair[1].precedence());
        }
    }

    #[test]
    fn names_round_trip() {
        for s in PermitStatus::ALL {
            assert_eq!(s.as_str().parse::<PermitStatus>(), Ok(s));
        }
        assert!("activ".parse::<PermitStatus>().is_err());
    }
}
