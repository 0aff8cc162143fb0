//! The field app (clients/web, a progressive web app) served at `/app/` from the
//! binary itself: the built files in `clients/web/dist` are embedded at compile time,
//! so the one release binary serves the app on a fresh machine with no Node.js.
//!
//! The build is committed (`clients/web/dist`), and the test `committed_dist_is_fresh`
//! in `tests/tests/field_app.rs` checks it equals a fresh `npm run build`; see
//! docs/field-app.md. Files are sent gzip-compressed to clients that accept it
//! (compressed once, on first request): the app's largest file is automerge's wasm.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../clients/web/dist");

/// The routes `/app`, `/app/` and `/app/{*path}`. They need no token: the app is
/// public code; the data it shows comes through `/api` and `/sync`, which do.
pub fn router() -> Router {
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/app/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&path, &headers) }),
        )
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "webmanifest" => "application/manifest+json",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The gzip of an embedded file, made once per file.
fn gzipped(path: &str, bytes: &'static [u8]) -> Arc<Vec<u8>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().expect("gzip cache").get(path) {
        return hit.clone();
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    enc.write_all(bytes).expect("gzip into memory");
    let out = Arc::new(enc.finish().expect("gzip into memory"));
    cache
        .lock()
        .expect("gzip cache")
        .insert(path.to_string(), out.clone());
    out
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    // A path that is not a file is a page of the app: its one index.html.
    let (path, file) = match DIST.get_file(path) {
        Some(f) => (path, f),
        None if !path.starts_with("assets/") => match DIST.get_file("index.html") {
            Some(f) => ("index.html", f),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    // Hashed assets never change under their name; everything else is checked each
    // time (the service worker decides what is used offline).
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut res_headers = HeaderMap::new();
    res_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    res_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let compressible = !path.ends_with(".png");
    if gzip_ok && compressible && file.contents().len() > 1024 {
        res_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let body = gzipped(path, file.contents());
        return (res_headers, body.as_ref().clone()).into_response();
    }
    (res_headers, file.contents()).into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use axum::body::to_bytes;

    use super::*;

    async fn get(path: &str, gzip: bool) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut headers = HeaderMap::new();
        if gzip {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("br, gzip"),
            );
        }
        let res = serve(path, &headers);
        let (parts, body) = res.into_parts();
        let bytes = to_bytes(body, usize::MAX).await.unwrap().to_vec();
        (parts.status, parts.headers, bytes)
    }

    #[tokio::test]
    async fn files_are_served_with_their_type_and_gzip_when_accepted() {
        let index = DIST.get_file("index.html").unwrap().contents();
        let (status, headers, body) = get("index.html", false).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(body, index);

        let wasm = DIST
            .get_dir("assets")
            .unwrap()
            .files()
            .find(|f| f.path().extension().is_some_and(|e| e == "wasm"))
            .unwrap();
        let path = wasm.path().to_str().unwrap();
        let (status, headers, body) = get(path, true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert!(
            headers[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert!(body.len() < wasm.contents().len() / 2, "compressed");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, wasm.contents());
    }

    #[tokio::test]
    async fn a_page_of_the_app_is_index_html_and_a_missing_asset_is_404() {
        let (status, headers, _) = get("customers/42", false).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let (status, _, _) = get("assets/nothing.js", false).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, headers, _) = get("sw.js", false).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    }
}
