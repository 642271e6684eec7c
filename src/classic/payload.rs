//! The JSON of the classic sync API, as existing PTW offline clients send and
//! expect it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::{FieldConflict, FieldMerge};

/// `POST /api/v1/ptw/sync-offline-data/`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct SyncRequest {
    /// The sending device.
    #[schema(min_length = 1, pattern = "\\S")]
    pub device_id: String,
    /// The device's clock when it sent the batch (informational).
    #[serde(default)]
    pub client_time: Option<Value>,
    /// The queued changes, oldest first. Each is parsed on its own, so one
    /// malformed change is rejected without failing the others.
    pub changes: Vec<Value>,
}

/// One queued change.
#[derive(Clone, Debug, Deserialize)]
pub struct ClassicChange {
    /// `permit`, `permit_photo`, `gas_reading`, `isolation_point` or `closeout`.
    pub entity: String,
    /// `create`, `update`, `update_status` or `append`.
    pub op: String,
    /// The client's id of this change (idempotency key with device and entity).
    pub offline_id: String,
    /// The entity's id, once the client knows it.
    #[serde(default)]
    pub server_id: Option<String>,
    /// The entity version the client last saw.
    #[serde(default)]
    pub client_version: Option<u64>,
    /// The fields.
    #[serde(default)]
    pub data: serde_json::Map<String, Value>,
}

/// An applied change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppliedItem {
    /// The change's entity kind.
    pub entity: String,
    /// The client's id of the change.
    pub offline_id: String,
    /// The entity's id.
    pub server_id: String,
    /// The entity's version after the change.
    pub new_version: u64,
    /// `applied`, or `already_applied` for a change seen before.
    pub status: String,
    /// Fields merged with other writers' changes made since `client_version`.
    #[serde(
        default,
        skip_deserializing,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub merged: BTreeMap<String, FieldMerge>,
}

/// A change not applied because the client's version is stale.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ConflictItem {
    /// The change's entity kind.
    pub entity: String,
    /// The client's id of the change.
    pub offline_id: String,
    /// The entity's id.
    pub server_id: String,
    /// Always `stale_version`.
    pub reason: &'static str,
    /// The version the client sent.
    pub client_version: u64,
    /// The entity's current version.
    pub server_version: u64,
    /// The conflicting fields.
    pub fields: BTreeMap<String, FieldConflict>,
    /// The entity as the server has it (its view's fields).
    pub server_state: Value,
}

/// A change refused.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RejectedItem {
    /// The change's entity kind (as sent, when readable).
    pub entity: Option<String>,
    /// The client's id of the change (as sent, when readable).
    pub offline_id: Option<String>,
    /// The entity's id, when known.
    pub server_id: Option<String>,
    /// `invalid_transition`, `validation_error` or `missing_client_version`.
    pub reason: &'static str,
    /// What was wrong.
    pub detail: String,
}

/// Counts of a response.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SyncSummary {
    /// Changes received.
    pub received: usize,
    /// Changes applied now.
    pub applied: usize,
    /// Changes seen before (answered from the idempotency record).
    pub already_applied: usize,
    /// Changes not applied for a stale version.
    pub conflicts: usize,
    /// Changes refused.
    pub rejected: usize,
    /// The server's clock (ms since the epoch).
    pub server_time: i64,
}

/// The response.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SyncResponse {
    /// Applied changes (including `already_applied` ones).
    pub applied: Vec<AppliedItem>,
    /// Changes not applied for a stale version.
    pub conflicts: Vec<ConflictItem>,
    /// Changes refused.
    pub rejected: Vec<RejectedItem>,
    /// Counts.
    pub summary: SyncSummary,
}

/// What became of one change.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Applied (now or before).
    Applied(AppliedItem),
    /// Not applied: stale version.
    Conflict(Box<ConflictItem>),
    /// Refused.
    Rejected(RejectedItem),
}

impl SyncResponse {
    /// Add an outcome.
    pub fn push(&mut self, outcome: Outcome) {
        self.summary.received += 1;
        match outcome {
            Outcome::Applied(a) => {
                if a.status == "already_applied" {
                    self.summary.already_applied += 1;
                } else {
                    self.summary.applied += 1;
                }
                self.applied.push(a);
            }
            Outcome::Conflict(c) => {
                self.summary.conflicts += 1;
                self.conflicts.push(*c);
            }
            Outcome::Rejected(r) => {
                self.summary.rejected += 1;
                self.rejected.push(r);
            }
        }
    }
}
