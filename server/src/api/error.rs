//! The API's errors: a status and a JSON body `{"error": message, "kind": kind}`, and
//! how the registry's, the authenticator's and the admin operations' errors map to them.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::registry::RegistryError;
use crate::telemetry::clip;

/// An API error: a status and a JSON body `{"error": message, "kind": kind}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// The answer for a document that does not exist or that the caller may not read:
    /// the same for both, so that ids cannot be probed.
    pub fn no_document(doc: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no document {}", clip(doc)),
        )
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    kind: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: &self.message,
            kind: self.kind,
        });
        let mut resp = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: tell the client which scheme and why.
            let desc = self.message.replace(['"', '\\'], "'");
            if let Ok(v) = HeaderValue::from_str(&format!(
                "Bearer error=\"invalid_token\", error_description=\"{desc}\""
            )) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if e.is_token_fault() {
            ApiError::new(StatusCode::UNAUTHORIZED, e.kind(), e.to_string())
        } else {
            tracing::error!(error = %e, "authentication failed on the server side");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.kind(), e.to_string())
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match &e {
            RegistryError::UnknownSite(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_site", e.to_string())
            }
            RegistryError::SiteExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "site_exists", e.to_string())
            }
            RegistryError::Invalid(_) | RegistryError::Domain(_) => {
                ApiError::bad_request(e.to_string())
            }
            RegistryError::Store(s) if s.kind() == "busy" => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
            }
            _ => {
                tracing::error!(error = %e, "registry operation failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}
