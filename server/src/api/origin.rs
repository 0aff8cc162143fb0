//! The cross-site request guard for the browser session: a request signed in by the
//! session cookie that changes something, or a WebSocket upgrade carrying the cookie,
//! must come from this relay's own pages.

use axum::http::{HeaderMap, Method, StatusCode, header};

use super::error::ApiError;
use crate::auth::TokenPlace;

/// Refuses a request authenticated by the session cookie that changes something
/// (any method but GET, HEAD, OPTIONS) unless it comes from this relay's own origin:
/// its `Origin` names the `Host` it was sent to, or, without `Origin`, the browser
/// says `Sec-Fetch-Site: same-origin`. Bearer tokens are not sent by browsers on
/// their own, so they need no such check.
pub fn check_same_origin(
    method: &Method,
    headers: &HeaderMap,
    place: TokenPlace,
) -> Result<(), ApiError> {
    if place != TokenPlace::Cookie
        || matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
    {
        return Ok(());
    }
    check_origin(headers)
}

/// The origin check itself, also applied to WebSocket upgrades that carry the cookie
/// (a page on another site may open a WebSocket to any host).
pub fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let host = get(header::HOST);
    let same = match get(header::ORIGIN) {
        Some(origin) => {
            let authority = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin);
            host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
        }
        None => headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"same-origin"),
    };
    if same {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "a request signed in by the session cookie must come from this relay's own pages",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cookie_writes_need_the_relays_own_origin() {
        let post = Method::POST;
        let same = headers(&[("host", "relay:3030"), ("origin", "http://relay:3030")]);
        let other = headers(&[("host", "relay:3030"), ("origin", "https://evil.example")]);
        let none = headers(&[("host", "relay:3030")]);
        let fetch_same = headers(&[("host", "relay:3030"), ("sec-fetch-site", "same-origin")]);
        assert!(check_same_origin(&post, &same, TokenPlace::Cookie).is_ok());
        assert!(check_same_origin(&post, &fetch_same, TokenPlace::Cookie).is_ok());
        assert!(check_same_origin(&post, &other, TokenPlace::Cookie).is_err());
        assert!(check_same_origin(&post, &none, TokenPlace::Cookie).is_err());
        // Reads and bearer tokens are not checked.
        assert!(check_same_origin(&Method::GET, &other, TokenPlace::Cookie).is_ok());
        assert!(check_same_origin(&post, &other, TokenPlace::Header).is_ok());
    }
}
