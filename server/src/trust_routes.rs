//! Trust between tiers, the upstream side: what a downstream relay fetches.
//!
//! - `GET /.well-known/jwks.json`: the public keys that verify this relay's tokens
//!   (RFC 7517 / RFC 8037), no token needed; cacheable for a minute, with an `ETag`.
//! - `GET /api/revocations?after=<seq>`: the revocation feed, for relay, head office
//!   and admin tokens. It carries every revocation, not only those of the caller's
//!   subtree: a token or device id says nothing about where it will next connect (a
//!   head office user may walk into any distribution centre), and an id alone tells a
//!   relay nothing it could misuse.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dealersync_core::access::Role;
use serde::Deserialize;
use sha2::Digest as _;

use crate::api::error::ApiError;
use crate::api::extract::{Caller, blocking};
use crate::api::state::ApiState;
use crate::registry::RevocationPage;

/// The media type of a JWK set (RFC 7517 §8.5.1).
pub const JWK_SET_MEDIA_TYPE: &str = "application/jwk-set+json";

/// How long a client may cache the key set: a retired key stops being trusted
/// downstream within this long plus the downstream's refresh interval.
pub const JWKS_MAX_AGE_SECS: u64 = 60;

/// The routes, merged into `api::router`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/revocations", get(revocations))
        .with_state(state)
}

async fn jwks(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    let body = match serde_json::to_vec(&st.auth.jwks()) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                .into_response();
        }
    };
    let etag = format!("\"{}\"", hex::encode(&sha2::Sha256::digest(&body)[..16]));
    let cache = format!("public, max-age={JWKS_MAX_AGE_SECS}");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(JWK_SET_MEDIA_TYPE),
            )],
            body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

/// `?after=` of the revocation feed.
#[derive(Debug, Deserialize)]
struct FeedQuery {
    #[serde(default)]
    after: i64,
}

async fn revocations(
    State(st): State<ApiState>,
    caller: Caller,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    if !matches!(caller.0.role, Role::Relay | Role::HeadOffice | Role::Admin) {
        return Err(ApiError::forbidden(format!(
            "the revocation feed is for relay, head office and admin tokens; this token's role is {}",
            caller.0.role
        )));
    }
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "`after` must be a sequence number from an earlier page: {e}"
        ))
    })?;
    if q.after < 0 {
        return Err(ApiError::bad_request("`after` must not be negative"));
    }
    let page: RevocationPage =
        blocking(move || Ok(st.registry.revocations_after(q.after)?)).await?;
    let mut resp = Json(page).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
