//! Where a request carries its token, and the request as it may appear in logs.

use axum::http::{HeaderMap, Uri, header};

use super::{AuthError, SUBPROTOCOL_TOKEN_PREFIX};

/// Where a request carried its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPlace {
    /// `Authorization: Bearer`.
    Header,
    /// A `Sec-WebSocket-Protocol` entry `bearer.<jwt>`.
    Subprotocol,
    /// The `?token=` query parameter.
    Query,
    /// The browser session cookie ([`SESSION_COOKIE`]) set by `POST /api/sign-in`;
    /// a request that changes something must then also come from this origin
    /// (`crate::api::origin::check_same_origin`).
    Cookie,
}

/// The name of the HttpOnly session cookie a browser gets from `POST /api/sign-in`.
pub const SESSION_COOKIE: &str = "dealersync_session";

/// Finds the token in a request: `Authorization: Bearer` first, then the
/// `Sec-WebSocket-Protocol` entry `bearer.<jwt>`, then `?token=`, then the session
/// cookie. `Err(Missing)` when
/// none carries one; a malformed `Authorization` header is an error rather than a
/// silent fall-through to the query.
pub fn token_from_request(
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(String, TokenPlace), AuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| AuthError::Malformed("Authorization header is not ASCII".into()))?;
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
            return Err(AuthError::Malformed(
                "Authorization header must be `Bearer <token>`".into(),
            ));
        }
        return Ok((rest.trim().to_string(), TokenPlace::Header));
    }
    for value in headers.get_all(header::SEC_WEBSOCKET_PROTOCOL) {
        let Ok(value) = value.to_str() else { continue };
        for entry in value.split(',').map(str::trim) {
            if let Some(token) = entry.strip_prefix(SUBPROTOCOL_TOKEN_PREFIX)
                && !token.is_empty()
            {
                return Ok((token.to_string(), TokenPlace::Subprotocol));
            }
        }
    }
    if uri.query().is_some() {
        let params: axum::extract::Query<Vec<(String, String)>> =
            axum::extract::Query::try_from_uri(uri)
                .map_err(|e| AuthError::Malformed(format!("query string: {e}")))?;
        if let Some((_, t)) = params.0.into_iter().find(|(k, _)| k == "token")
            && !t.trim().is_empty()
        {
            return Ok((t.trim().to_string(), TokenPlace::Query));
        }
    }
    if let Some(token) = session_cookie(headers) {
        return Ok((token, TokenPlace::Cookie));
    }
    Err(AuthError::Missing)
}

/// The value of the [`SESSION_COOKIE`] in the request's `Cookie` headers, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.trim().is_empty())
        .map(|(_, value)| value.trim().to_string())
}

/// The URI as it may appear in logs: a `token` query parameter's value is replaced by
/// `***`, since a URL token is as good as a password until it expires.
pub fn redacted(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.to_string();
    };
    let cleaned: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("token", _)) => "token=***".to_string(),
            _ => pair.to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), cleaned.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_hides_only_the_token() {
        let uri: Uri = "/sync?a=1&token=eyJ.abc.def&b=2".parse().unwrap();
        assert_eq!(redacted(&uri), "/sync?a=1&token=***&b=2");
        let plain: Uri = "/api/sites".parse().unwrap();
        assert_eq!(redacted(&plain), "/api/sites");
    }
}
