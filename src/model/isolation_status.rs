use std::fmt;
use std::str::FromStr;

/// The status of an isolation point. It only moves forward:
/// `assigned < isolated < verified < deisolated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IsolationStatus {
    /// Assigned to a person, not yet isolated.
    Assigned,
    /// Energy isolated (locked out).
    Isolated,
    /// Isolation verified (tried, zero energy confirmed).
    Verified,
    /// Isolation removed after the work.
    Deisolated,
}

impl IsolationStatus {
    /// Every status, lowest rank first.
    pub const ALL: [IsolationStatus; 4] = [
        IsolationStatus::Assigned,
        IsolationStatus::Isolated,
        IsolationStatus::Verified,
        IsolationStatus::Deisolated,
    ];

    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationStatus::Assigned => "assigned",
            IsolationStatus::Isolated => "isolated",
            IsolationStatus::Verified => "verified",
            IsolationStatus::Deisolated => "deisolated",
        }
    }

    /// The rank used by the monotonic policy (higher wins, never decreases).
    pub fn rank(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for IsolationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IsolationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IsolationStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let valid: Vec<&str> = IsolationStatus::ALL.iter().map(|v| v.as_str()).collect();
                format!(
                    "unknown isolation status {s:?} (valid: {})",
                    valid.join(", ")
                )
            })
    }
}
