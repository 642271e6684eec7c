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

/// The summary of entity `id` if the caller's tenant may see it; 404
/// otherwise (an unknown id and another tenant's entity answer the same; in
/// the caller's id space, another tenant's id is an unknown one).
pub(super) fn visible_summary(
    state: &NodeState,
    id: EntityId,
    access: &Access,
) -> ApiResult<Summary> {
    state
        .store_for(access)
        .visible_summary(id, &access.tenant)?
        .ok_or_else(|| ApiError::unknown_entity(id))
}

/// The store as the caller sees it: its tenant's id space (see
/// [`NodeState::store_for`]).
pub(super) fn reader(s: &NodeState, access: &Access) -> Store {
    s.store_for(access)
}

/// The store handle that writes on behalf of the caller, in its tenant's id
/// space: with tokens, the token's device is the author (`created_by`,
/// `taken_by`).
pub(super) fn author(s: &NodeState, access: &Access) -> Store {
    if s.auth.is_open() {
        s.store.clone()
    } else {
        s.store_for(access).acting_as(&access.device)
    }
}

/// After a durable write of the caller's document `id`: tell its tenant's
/// live sync connections and count it.
pub(super) fn changed(state: &NodeState, access: &Access, id: EntityId) {
    state.doc_changed(access, id, None);
    state.metrics.add_changes_applied(1);
}
