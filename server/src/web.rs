//! The board and the console in a browser: static HTML, ES modules and CSS from
//! `server/web/`, embedded in the binary (no build step, nothing fetched from
//! elsewhere), so `serve` on a fresh machine serves them.
//!
//! The pages hold no data; they read it from `/api/*` with the session cookie. The
//! server still decides who may open a page, so that a consultant's browser is not
//! even handed the console: `/board` needs a session, `/console` a manager, head
//! office or admin; without a session the browser is sent to `/signin`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use dealersync_core::access::Role;
use include_dir::{Dir, include_dir};

use crate::api::state::ApiState;

/// The pages and their assets.
static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// What the browser may load and where it may connect: this relay only. The inline
/// SVG charts are built with DOM calls, so no inline script or style is needed.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

/// Who may open a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Anyone (the sign-in page, the API description).
    Public,
    /// Anyone signed in.
    SignedIn,
    /// Managers, head office and admins.
    Managers,
}

/// The page routes, merged into the API's router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/board", get(board))
        .route("/console", get(console))
        .route("/signin", get(signin))
        .route("/api-docs", get(api_docs))
        .route("/web/{*path}", get(asset))
        .with_state(state)
}

async fn board(s: State<ApiState>, h: HeaderMap, u: Uri) -> Response {
    page(s, h, u, "board.html", Gate::SignedIn).await
}

async fn console(s: State<ApiState>, h: HeaderMap, u: Uri) -> Response {
    page(s, h, u, "console.html", Gate::Managers).await
}

async fn signin(s: State<ApiState>, h: HeaderMap, u: Uri) -> Response {
    page(s, h, u, "signin.html", Gate::Public).await
}

async fn api_docs(s: State<ApiState>, h: HeaderMap, u: Uri) -> Response {
    page(s, h, u, "api-docs.html", Gate::Public).await
}

/// Serves `file` if the request's session passes `gate`; otherwise sends the browser
/// to sign in, or answers 403 with a page that says whose page it is.
async fn page(
    State(st): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
    file: &'static str,
    gate: Gate,
) -> Response {
    if gate != Gate::Public {
        let (auth, reg) = (st.auth.clone(), st.registry.clone());
        let who = tokio::task::spawn_blocking(move || {
            let (claims, _) = auth.authenticate(&headers, &uri).ok()?;
            crate::admission::admit_site(&reg, &claims).ok()?;
            Some(claims.role)
        })
        .await
        .ok()
        .flatten();
        let Some(role) = who else {
            let next = if file == "console.html" {
                "/console"
            } else {
                "/board"
            };
            return Redirect::to(&format!("/signin?next={next}")).into_response();
        };
        if gate == Gate::Managers && matches!(role, Role::Consultant | Role::Relay) {
            return forbidden_page();
        }
    }
    serve_file(file)
}

/// The page a person gets at `/` (a browser, not a sync client): links to the board,
/// the console, the phone app and the API documentation.
pub(crate) fn landing_page() -> Response {
    serve_file("index.html")
}

/// The page a consultant gets for the console.
fn forbidden_page() -> Response {
    let mut resp = serve_file("forbidden.html");
    *resp.status_mut() = StatusCode::FORBIDDEN;
    resp
}

async fn asset(Path(path): Path<String>) -> Response {
    if path.contains("..") || path.ends_with(".html") {
        return StatusCode::NOT_FOUND.into_response();
    }
    serve_file(&path)
}

/// One embedded file with its type and the security headers; 404 if there is none.
fn serve_file(path: &str) -> Response {
    let Some(file) = WEB.get_file(path) else {
        return (StatusCode::NOT_FOUND, "no such page\n").into_response();
    };
    let mut resp = file.contents().into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    // The pages change with the binary; the browser asks again (cheap, local).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A sign-in link carries its code in the URL: never pass it on as a referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_and_module_is_embedded() {
        for f in [
            "board.html",
            "board.js",
            "console.html",
            "console.js",
            "conflicts.js",
            "charts.js",
            "api-docs.html",
            "api-docs.js",
            "favicon.svg",
            "signin.html",
            "signin.js",
            "forbidden.html",
            "index.html",
            "app.css",
            "common.js",
        ] {
            assert!(WEB.get_file(f).is_some(), "{f} is not embedded");
        }
        assert_eq!(content_type("x/y.js"), "text/javascript; charset=utf-8");
    }
}
