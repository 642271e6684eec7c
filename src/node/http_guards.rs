//! Middleware that bounds what HTTP requests cost: how many run at once
//! (`503 busy` beyond [`NetLimits::max_concurrent_requests`], never for
//! `/healthz`) and how long a request body may take to arrive
//! ([`NetLimits::body_read_timeout`]; the handler reading it then fails with
//! [`BodyTimeout`], answered `408 body_timeout`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{stream, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::api_error::ApiError;
use super::net_limits::NetLimits;

/// The body of a request did not arrive within the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} (--body-read-timeout-secs)")]
pub struct BodyTimeout(pub Duration);

/// What the guards share across requests.
pub(super) struct Guards {
    requests: Arc<Semaphore>,
    body_timeout: Duration,
}

impl Guards {
    pub(super) fn new(limits: &NetLimits) -> Arc<Guards> {
        Arc::new(Guards {
            requests: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))),
            body_timeout: limits.body_read_timeout,
        })
    }
}

/// Take a request slot (not for `/healthz`) and put a deadline on the body.
pub(super) async fn guard(State(g): State<Arc<Guards>>, req: Request, next: Next) -> Response {
    let slot = if req.uri().path() == "/healthz" {
        None
    } else {
        match g.requests.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                let mut res = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "too many requests in progress; retry in a moment",
                )
                .into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return res;
            }
        }
    };
    let req = req.map(|body| with_deadline(body, g.body_timeout));
    let response = next.run(req).await;
    drop(slot);
    response
}

/// `body`, failing with [`BodyTimeout`] once `timeout` has passed since now.
fn with_deadline(body: Body, timeout: Duration) -> Body {
    if body.is_end_stream() {
        return body; // nothing to wait for (most GETs)
    }
    let deadline = Instant::now() + timeout;
    let frames = body.into_data_stream();
    let timed = stream::unfold(Some(frames), move |frames| async move {
        let mut frames = frames?;
        match tokio::time::timeout_at(deadline, frames.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok::<Bytes, axum::BoxError>(bytes), Some(frames))),
            Ok(Some(Err(e))) => Some((Err(e.into()), None)),
            Ok(None) => None,
            Err(_) => Some((Err(BodyTimeout(timeout).into()), None)),
        }
    });
    Body::from_stream(timed)
}

/// Whether a body error is the body read timeout.
pub(super) fn is_body_timeout(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<BodyTimeout>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// `408 body_timeout`.
pub(super) fn body_timeout_error(timeout: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        BodyTimeout(timeout).to_string(),
    )
}
