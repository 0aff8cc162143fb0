//! The HTTP side of sign-in codes (see `signin.rs`): issuing a code
//! (`POST /api/admin/sign-in-codes`), exchanging it for a browser session cookie
//! (`POST /api/sign-in`) or a phone's device token (`POST /api/sign-in/device`), and
//! signing out (`POST /api/sign-out`, which revokes the session's token).
//!
//! The session cookie is HttpOnly and SameSite=Strict; on top of that, a request
//! authenticated by the cookie that changes something must come from the relay's own
//! origin ([`crate::api::origin::check_same_origin`]), so that no other site can make a signed-in
//! browser write.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRef, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use dealersync_core::access::Role;
use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::api::extract::{Body, Caller};
use crate::api::origin::check_same_origin;
use crate::api::state::ApiState;
use crate::auth::{Authenticator, SESSION_COOKIE, parse_ttl};
use crate::registry::{Registry, Revocation};
use crate::signin::{
    CodeRequest, DEFAULT_CODE_LIFETIME, Exchange, SignInError, SignInLimiter, app_url, exchange,
    may_issue, qr_svg, sign_in_url,
};

/// What the sign-in routes share: the API's state and the guessing limiter.
#[derive(Clone)]
struct SignInState {
    api: ApiState,
    limiter: Arc<SignInLimiter>,
}

impl FromRef<SignInState> for Arc<Authenticator> {
    fn from_ref(s: &SignInState) -> Self {
        s.api.auth.clone()
    }
}

impl FromRef<SignInState> for Arc<Registry> {
    fn from_ref(s: &SignInState) -> Self {
        s.api.registry.clone()
    }
}

/// The sign-in routes, merged into the API's router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/admin/sign-in-codes", post(issue_code))
        .route("/api/sign-in", post(sign_in))
        .route("/api/sign-in/device", post(sign_in_device))
        .route("/api/sign-out", post(sign_out))
        .with_state(SignInState {
            api: state,
            limiter: Arc::new(SignInLimiter::default()),
        })
}

impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::InvalidCode => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_code", e.to_string())
            }
            SignInError::RateLimited { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
            }
            SignInError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            SignInError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m),
            SignInError::Registry(r) => r.into(),
            SignInError::Admin(a) => a.into(),
        }
    }
}

/// A refusal as an HTTP answer; a rate limit also says when to come back.
fn refusal(e: SignInError) -> Response {
    let retry = match &e {
        SignInError::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
        _ => None,
    };
    let mut resp = ApiError::from(e).into_response();
    if let Some(secs) = retry {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Whether the browser reached the relay over HTTPS (directly or through a proxy that
/// says so), so that the cookie gets `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    let starts = |name: &str, prefix: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with(prefix))
    };
    starts("x-forwarded-proto", "https") || starts("origin", "https://")
}

/// The cookie that carries a session token for `ttl`.
fn session_cookie(token: &str, ttl: Duration, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The cookie that removes the session from the browser.
fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The base URL the request was sent to, for the sign-in link: `http(s)://Host`, or
/// nothing (a relative link) without a `Host`.
fn base_url(headers: &HeaderMap) -> String {
    match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        Some(host) if !host.is_empty() && !host.contains(['/', ' ']) => format!(
            "{}://{host}",
            if over_https(headers) { "https" } else { "http" }
        ),
        _ => String::new(),
    }
}

/// Body of `POST /api/admin/sign-in-codes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSignInCode {
    /// The user the session will be for (`sub`).
    #[serde(alias = "sub")]
    pub user: String,
    /// Their role.
    pub role: Role,
    /// Their site.
    pub site: String,
    /// The device the token will name (a phone's; the exchange may name one instead).
    #[serde(default)]
    pub device: Option<String>,
    /// How long the code is good for, e.g. `10m` (default), at most `7d`.
    #[serde(default)]
    pub valid_for: Option<String>,
    /// How long the session or device token lasts (default 12h in a browser, 30d on
    /// a device).
    #[serde(default)]
    pub session_ttl: Option<String>,
}

/// Answer of `POST /api/admin/sign-in-codes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInCodeView {
    /// The code, `ABCD-EFGH`: shown once, stored only hashed.
    pub code: String,
    /// The link that signs a browser in with it (board, console).
    pub sign_in_url: String,
    /// The link that enrols the phone app with it (`/app/#code=`).
    pub app_url: String,
    /// That link as a QR code (an SVG image), for a consultant's phone camera.
    pub app_qr_svg: Option<String>,
    /// When the code stops being good, seconds since the epoch.
    pub expires_at: u64,
    /// The user.
    pub sub: String,
    /// The role.
    pub role: Role,
    /// The site.
    pub site: String,
    /// The device, if the code names one.
    pub device: Option<String>,
}

async fn issue_code(
    State(st): State<SignInState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<NewSignInCode>,
) -> Result<(StatusCode, Json<SignInCodeView>), ApiError> {
    let lifetime = match &body.valid_for {
        Some(t) => {
            parse_ttl(t).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e))?
        }
        None => DEFAULT_CODE_LIFETIME,
    };
    let session_ttl = body
        .session_ttl
        .as_deref()
        .map(parse_ttl)
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e))?;
    let base = base_url(&headers);
    let reg = st.api.registry.clone();
    let view = tokio::task::spawn_blocking(move || -> Result<SignInCodeView, ApiError> {
        may_issue(&reg, &caller.0, body.role, &body.site)?;
        let req = CodeRequest {
            sub: body.user.trim().to_string(),
            role: body.role,
            site: body.site,
            device: body.device,
            session_ttl,
            lifetime,
        };
        let issued = reg.create_sign_in_code(&req, &caller.0.sub)?;
        Ok(SignInCodeView {
            sign_in_url: sign_in_url(&base, &issued.code),
            app_url: app_url(&base, &issued.code),
            app_qr_svg: qr_svg(&app_url(&base, &issued.code)),
            code: issued.code,
            expires_at: issued.expires_at,
            sub: req.sub,
            role: req.role,
            site: req.site,
            device: req.device,
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Body of `POST /api/sign-in` and `POST /api/sign-in/device`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    /// The code, with or without its dash, any case.
    pub code: String,
    /// The phone's device id (device sign-in only; default: the code's, or made up).
    #[serde(default)]
    pub device: Option<String>,
}

/// Who signed in: the answer of `POST /api/sign-in`, and the same fields beside the
/// token in the answer of `POST /api/sign-in/device`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The user.
    pub sub: String,
    /// The role.
    pub role: Role,
    /// The site.
    pub site: String,
    /// The device (device sign-in only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// When the session or token expires, seconds since the epoch.
    pub expires_at: u64,
    /// The token's id, for revocation.
    pub jti: String,
    /// The device token (device sign-in only; a browser's stays in its cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Runs one redemption under the limiter: refused before the code is looked at when
/// the address or everyone has failed too often, counted when it fails.
async fn redeem(
    st: &SignInState,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: SignInBody,
    kind: Exchange,
) -> Result<crate::auth::IssuedToken, SignInError> {
    let addr = remote.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    st.limiter.check(addr)?;
    let (auth, reg) = (st.api.auth.clone(), st.api.registry.clone());
    let result = tokio::task::spawn_blocking(move || exchange(&auth, &reg, &body.code, &kind))
        .await
        .map_err(|e| SignInError::Invalid(format!("sign-in task failed: {e}")))?;
    if matches!(result, Err(SignInError::InvalidCode)) {
        st.limiter.failed(addr);
        tracing::info!(remote = %addr, "sign-in with an invalid code");
    }
    result
}

async fn sign_in(
    State(st): State<SignInState>,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Body(body): Body<SignInBody>,
) -> Response {
    if body.device.is_some() {
        return refusal(SignInError::Invalid(
            "a browser session names no device; phones use POST /api/sign-in/device".into(),
        ));
    }
    match redeem(&st, remote, body, Exchange::Browser).await {
        Ok(issued) => {
            let c = issued.claims;
            let ttl = Duration::from_secs(c.exp.saturating_sub(crate::auth::now_secs()));
            let cookie = session_cookie(&issued.token, ttl, over_https(&headers));
            tracing::info!(sub = %c.sub, role = %c.role, site = %c.site, jti = %c.jti, "signed in with a code");
            let view = SessionView {
                sub: c.sub,
                role: c.role,
                site: c.site,
                device: None,
                expires_at: c.exp,
                jti: c.jti,
                token: None,
            };
            match HeaderValue::from_str(&cookie) {
                Ok(v) => ([(header::SET_COOKIE, v)], Json(view)).into_response(),
                Err(e) => refusal(SignInError::Invalid(format!("cannot set the cookie: {e}"))),
            }
        }
        Err(e) => refusal(e),
    }
}

async fn sign_in_device(
    State(st): State<SignInState>,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    Body(body): Body<SignInBody>,
) -> Response {
    let device = body.device.clone();
    match redeem(&st, remote, body, Exchange::Device(device)).await {
        Ok(issued) => {
            let c = issued.claims;
            tracing::info!(sub = %c.sub, role = %c.role, site = %c.site, device = ?c.device, jti = %c.jti, "device enrolled with a code");
            Json(SessionView {
                sub: c.sub,
                role: c.role,
                site: c.site,
                device: c.device,
                expires_at: c.exp,
                jti: c.jti,
                token: Some(issued.token),
            })
            .into_response()
        }
        Err(e) => refusal(e),
    }
}

/// Revokes the token the request carries (cookie or bearer) and clears the cookie.
/// Without a valid token there is nothing to revoke, and the cookie is cleared all
/// the same: signing out always leaves the browser signed out.
async fn sign_out(
    State(st): State<SignInState>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (auth, reg) = (st.api.auth.clone(), st.api.registry.clone());
    let hdrs = headers.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        let Ok((claims, place)) = auth.authenticate(&hdrs, &uri) else {
            return Ok(());
        };
        check_same_origin(&method, &hdrs, place)?;
        reg.revoke(&Revocation::Token(claims.jti.clone()))?;
        tracing::info!(sub = %claims.sub, jti = %claims.jti, "signed out");
        Ok(())
    })
    .await;
    match outcome {
        Ok(Ok(())) => (
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, cleared_cookie())],
        )
            .into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let c = session_cookie("a.b.c", Duration::from_secs(60), true);
        assert!(c.starts_with("dealersync_session=a.b.c;"));
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
            "Secure",
            "Path=/",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!session_cookie("t", Duration::from_secs(1), false).contains("Secure"));
        assert!(over_https(&headers(&[("x-forwarded-proto", "https")])));
        assert_eq!(
            base_url(&headers(&[("host", "relay:3030")])),
            "http://relay:3030"
        );
    }
}
