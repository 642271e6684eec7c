//! Store work on behalf of a request: run off the async threads, within the
//! caller's tenant, written as the caller's device, and announced to live
//! sync connections once durable.

use super::api_error::{ApiError, ApiResult};
use super::state::{NodeState, Shared};
use crate::model::{Access, EntityId};
use crate::store::{Store, Summary};

/// Run blocking store work (reads and durable writes) off the async threads.
pub(super) async fn blocking<T, F>(state: &Shared, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&NodeState) -> ApiResult<T> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(ApiError::internal)?
}

/// The summary of entity `id` if `tenant` may see it; 404 otherwise (an
/// unknown id and another tenant's entity answer the same).
pub(super) fn visible_summary(state: &NodeState, id: EntityId, tenant: &str) -> ApiResult<Summary> {
    state
        .store
        .visible_summary(id, tenant)?
        .ok_or_else(|| ApiError::unknown_entity(id))
}

/// The store handle that writes on behalf of the caller: with tokens, the
/// token's device is the author (`created_by`, `taken_by`).
pub(super) fn author(s: &NodeState, access: &Access) -> Store {
    if s.auth.is_open() {
        s.store.clone()
    } else {
        s.store.acting_as(&access.device)
    }
}

/// After a durable write: tell live sync connections and count it.
pub(super) fn changed(state: &NodeState, id: EntityId) {
    state.hub.doc_changed(id, None);
    state.metrics.add_changes_applied(1);
}
