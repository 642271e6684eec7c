//! `GET /readyz`: whether the node can take work, for a load balancer or an
//! orchestrator. `/healthz` (in [`super::rest`]) says the process answers;
//! `/readyz` also asks the store for a read and a flush (an fsync), and
//! answers `503` with the reason when either fails or takes longer than
//! [`READY_TIMEOUT`]. No auth: it tells nothing of the data.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::state::NodeState;

/// How long the store may take to answer a read and a flush.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The `/readyz` route over `state`.
pub fn readiness_router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Whether the node is ready.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// Why not, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `200 {"status": "ready"}`, or `503 {"status": "not_ready", "reason": ...}`.
#[utoipa::path(get, path = "/readyz", tag = "node", security(()),
    responses(
        (status = 200, description = "the store answered a read and a flush", body = Readiness),
        (status = 503, description = "not ready (`reason` says why), or `busy`", body = Readiness)))]
async fn readyz(State(state): State<Arc<NodeState>>) -> Response {
    let store = state.store.clone();
    let check = tokio::task::spawn_blocking(move || -> Result<(), String> {
        store
            .feed_since(0, 1)
            .map_err(|e| format!("the store failed a read: {e}"))?;
        store
            .flush()
            .map_err(|e| format!("the store failed a flush: {e}"))
    });
    let reason = match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(Ok(()))) => {
            let ready = Readiness {
                status: "ready",
                reason: None,
            };
            return Json(ready).into_response();
        }
        Ok(Ok(Err(reason))) => reason,
        Ok(Err(e)) => format!("the store check did not finish: {e}"),
        Err(_) => format!(
            "the store did not answer a read and a flush within {} s",
            READY_TIMEOUT.as_secs()
        ),
    };
    tracing::warn!(%reason, "not ready");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Readiness {
            status: "not_ready",
            reason: Some(reason),
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::node::{app, build_state, NodeOptions};
    use crate::store::{Backend, BatchOp, MemBackend, Pair, StorageError, Store, StoreOptions};

    /// A memory backend whose flushes fail while `failing` is set.
    #[derive(Default)]
    struct FlakyFlush {
        inner: MemBackend,
        failing: AtomicBool,
    }

    impl Backend for FlakyFlush {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            self.inner.get(key)
        }
        fn scan_prefix(
            &self,
            prefix: &[u8],
            after: Option<&[u8]>,
            limit: usize,
        ) -> Result<Vec<Pair>, StorageError> {
            self.inner.scan_prefix(prefix, after, limit)
        }
        fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
            self.inner.last_with_prefix(prefix)
        }
        fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StorageError> {
            self.inner.apply(batch)
        }
        fn flush(&self) -> Result<(), StorageError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(StorageError::new("injected: the disk failed a flush"));
            }
            self.inner.flush()
        }
    }

    async fn get(router: axum::Router, path: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::get(path).body(Body::empty()).expect("request");
        let response = router.oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, serde_json::from_slice(&bytes).expect("JSON"))
    }

    #[tokio::test]
    async fn readyz_fails_with_the_reason_while_the_store_cannot_flush() {
        let faulty = Arc::new(FlakyFlush::default());
        let store = Store::with_backend(faulty.clone(), StoreOptions::default()).expect("store");
        let state = build_state(store, &NodeOptions::default()).expect("state");

        let (status, body) = get(app(state.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "ready");

        faulty.failing.store(true, Ordering::SeqCst);
        let (status, body) = get(app(state.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["status"], "not_ready");
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("failed a flush"), "{reason}");
        // the process still answers
        let (status, body) = get(app(state.clone()), "/healthz").await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("ok"))
        );

        faulty.failing.store(false, Ordering::SeqCst);
        let (status, _) = get(app(state), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
    }
}
