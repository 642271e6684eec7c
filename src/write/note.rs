//! The note a local write leaves in its change's message: which device made
//! the change, through which interface, and why. The audit trail
//! (`GET /v1/entities/{id}/history`) reads it back; other Automerge clients
//! ignore it.

use serde::{Deserialize, Serialize};

/// The origin of a change, stored as the change's message (JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNote {
    /// The device the change was made on (or on whose behalf a node made it).
    pub device: String,
    /// The interface that made it: `classic` for the JSON sync API,
    /// `resolve` for a conflict resolution; absent for ordinary writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The classic client's `offline_id` of the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_id: Option<String>,
    /// The conflict resolution the change records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<ResolutionNote>,
}

/// A conflict resolution, as recorded in the change that carries it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResolutionNote {
    /// The field whose conflict was resolved.
    pub field: String,
    /// `keep_mine`, `use_server` or `merge`.
    pub resolution: String,
    /// The values that were in conflict.
    #[serde(default)]
    pub replaced: Vec<String>,
}

impl ChangeNote {
    /// A note naming only the device.
    pub fn device(device: &str) -> ChangeNote {
        ChangeNote {
            device: device.to_string(),
            ..ChangeNote::default()
        }
    }

    /// The change message.
    pub fn to_message(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The note in a change message, when the message is one.
    pub fn parse(message: &str) -> Option<ChangeNote> {
        serde_json::from_str(message).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_survives_its_message() {
        let note = ChangeNote {
            device: "tab-7".into(),
            via: Some("resolve".into()),
            offline_id: None,
            resolve: Some(ResolutionNote {
                field: "title".into(),
                resolution: "merge".into(),
                replaced: vec!["A".into(), "B".into()],
            }),
        };
        assert_eq!(ChangeNote::parse(&note.to_message()), Some(note));
        assert_eq!(
            ChangeNote::device("d").to_message(),
            r#"{"device":"d"}"#,
            "ordinary writes carry only the device"
        );
        assert_eq!(ChangeNote::parse("free text from another client"), None);
    }
}
