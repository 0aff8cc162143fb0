//! How the downstream relay reaches its upstream: HTTP for the site tree, WebSocket
//! for sync, both over rustls with the system's roots plus `--upstream-ca`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::{UpstreamConfig, UpstreamError};

/// TLS settings for the upstream: the system's roots and the CA file, if any.
pub(crate) fn tls_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, UpstreamError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate must not make the upstream unreachable.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca {
        let bad =
            |why: String| UpstreamError::Config(format!("--upstream-ca {}: {why}", path.display()));
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("not a PEM file of certificates: {e}")))?;
        for cert in certs {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Config(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The HTTP client for the upstream's API.
pub(crate) fn http_client(
    tls: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<reqwest::Client, UpstreamError> {
    reqwest::Client::builder()
        .use_preconfigured_tls((**tls).clone())
        .timeout(timeout)
        .build()
        .map_err(|e| UpstreamError::Config(format!("cannot build an HTTP client: {e}")))
}

/// `ws(s)://host/sync` of the upstream.
pub(super) fn sync_url(config: &UpstreamConfig) -> String {
    match config.base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}/sync"),
        None => format!("ws://{}/sync", config.base.trim_start_matches("http://")),
    }
}

/// GET `path` of the upstream's API with the relay token, as JSON.
pub(super) async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    config: &UpstreamConfig,
    path: &str,
) -> Result<T, UpstreamError> {
    let url = format!("{}{path}", config.base);
    send_json(http.get(&url), &config.token, url).await
}

/// Like [`get_json`], `None` when the upstream answers 404: a route an upstream of an
/// earlier release does not have.
pub(super) async fn get_json_if_found<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    config: &UpstreamConfig,
    path: &str,
) -> Result<Option<T>, UpstreamError> {
    let url = format!("{}{path}", config.base);
    let resp = send(http.get(&url), &config.token, &url).await?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    read_json(resp, url).await.map(Some)
}

/// POST `body` as JSON to `path` of the upstream's API with the relay token.
pub(super) async fn post_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    config: &UpstreamConfig,
    path: &str,
    body: &B,
) -> Result<T, UpstreamError> {
    let url = format!("{}{path}", config.base);
    send_json(http.post(&url).json(body), &config.token, url).await
}

/// Sends `request` with `token` and reads a JSON answer; a refusal carries the status
/// and the start of the body, a failure to connect its cause (refused, name, TLS).
/// Also the `archive` command's call to its own relay's admin API.
pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    token: &str,
    url: String,
) -> Result<T, UpstreamError> {
    let resp = send(request, token, &url).await?;
    read_json(resp, url).await
}

/// Sends `request` with `token`; a failure to connect carries its whole cause chain.
async fn send(
    request: reqwest::RequestBuilder,
    token: &str,
    url: &str,
) -> Result<reqwest::Response, UpstreamError> {
    request.bearer_auth(token).send().await.map_err(|e| {
        let mut reason = format!("unreachable: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            reason.push_str(&format!(": {c}"));
            cause = c.source();
        }
        UpstreamError::Upstream {
            url: url.to_string(),
            reason,
        }
    })
}

/// A successful answer's JSON; a refusal carries the status and the start of the body.
async fn read_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    url: String,
) -> Result<T, UpstreamError> {
    let failed = |reason: String| UpstreamError::Upstream {
        url: url.clone(),
        reason,
    };
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(300).collect();
        return Err(failed(format!("answered {status}: {body}")));
    }
    resp.json()
        .await
        .map_err(|e| failed(format!("not the expected JSON: {e}")))
}
