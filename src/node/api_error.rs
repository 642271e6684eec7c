//! The one error type of the REST API: every failure becomes a JSON body
//! `{"error": code, "detail": ...}` with the right status. Server-side
//! failures are logged in full and answered with a generic detail.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::AuthError;
use crate::error::Error;
use crate::model::EntityId;

/// The body of every error answer of the REST API.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ErrorBody {
    /// The machine-readable code (`unknown_entity`, `rejected`, `bad_json`,
    /// `invalid_input`, `unauthorized`, `read_only`, `rate_limited`, `busy`, ...).
    error: &'static str,
    /// What went wrong, for a person.
    detail: String,
    /// For `rejected`: the policy's reason code (`invalid_transition`,
    /// `interlock`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The result of a handler.
pub(super) type ApiResult<T> = Result<T, ApiError>;

/// An error answer of the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The machine-readable code (`unknown_entity`, `rejected`, `bad_json`, ...).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub detail: String,
    /// For `rejected`: the policy's reason code (`invalid_transition`, ...).
    pub reason: Option<String>,
    /// Seconds to wait before trying again (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            reason: None,
            retry_after: None,
        }
    }

    /// This error with a `Retry-After` of `secs` seconds (at least 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// 400 `invalid_input`.
    pub fn invalid_input(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", detail)
    }

    /// 404 `unknown_entity`: for ids that do not exist *and* for other tenants'
    /// entities, so that their existence is never revealed.
    pub fn unknown_entity(id: EntityId) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_entity",
            format!("unknown entity {id}"),
        )
    }

    /// 403 `read_only`: a write with a read-only token.
    pub fn read_only() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "this token is read-only; writes are not allowed",
        )
    }

    /// 404 `not_found`: no such route.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 500 `internal`: logs `detail`, answers a generic detail.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error in the REST API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error (see the node's log)",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code, detail = %self.detail,
                "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), code = self.code, detail = %self.detail,
                "request refused");
        }
        let body = ErrorBody {
            error: self.code,
            detail: self.detail,
            reason: self.reason,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"permitsync\""),
            );
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownEntity(id) => ApiError::unknown_entity(id),
            Error::Rejected(r) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "rejected",
                detail: r.to_string(),
                reason: Some(r.reason.clone()),
                retry_after: None,
            },
            e @ (Error::InvalidInput(_) | Error::WrongType { .. } | Error::Bundle(_)) => {
                ApiError::invalid_input(e.to_string())
            }
            e @ Error::Interlock { .. } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "rejected",
                detail: e.to_string(),
                reason: Some("interlock".into()),
                retry_after: None,
            },
            e @ Error::NoConflict { .. } => {
                Self::new(StatusCode::CONFLICT, "no_conflict", e.to_string())
            }
            e @ Error::UntypedDocument(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "untyped_document",
                e.to_string(),
            ),
            e @ Error::LimitExceeded(_) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "limit_exceeded",
                e.to_string(),
            ),
            e @ Error::Locked { .. } => {
                tracing::error!(error = %e, "store locked");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is not available; retry later",
                )
            }
            e @ (Error::Storage(_)
            | Error::Io(_)
            | Error::Automerge(_)
            | Error::NewerFormat { .. }) => ApiError::internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::MissingToken | AuthError::InvalidToken => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
            }
            // configuration errors are not a request's fault
            other => ApiError::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        match e {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_json",
                "expected a JSON body with `Content-Type: application/json`",
            ),
            other => Self::new(StatusCode::BAD_REQUEST, "bad_json", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::invalid_input(e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::invalid_input(e.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{RejectReason, Rejection};
    use serde_json::json;

    async fn body(e: ApiError) -> (StatusCode, serde_json::Value) {
        let r = e.into_response();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn rejected_writes_are_422_with_the_reason() {
        let kind = RejectReason::InvalidTransition {
            from: "draft".into(),
            to: "active".into(),
        };
        let r = Rejection {
            change: String::new(),
            actor: String::new(),
            field: "status".into(),
            value: "active".into(),
            reason: kind.code().into(),
            detail: kind.detail("status"),
            kind: Some(kind),
            op_index: 0,
        };
        let (status, json) = body(Error::Rejected(Box::new(r)).into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            json,
            json!({"error": "rejected", "detail": "invalid transition draft -> active",
                   "reason": "invalid_transition"})
        );
    }

    #[tokio::test]
    async fn storage_errors_do_not_leak_details() {
        let (status, json) = body(Error::storage("disk /secret/path full").into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!json.to_string().contains("/secret/path"));
    }
}
