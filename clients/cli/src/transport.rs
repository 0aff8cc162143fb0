//! How the field client reaches the relay: which URLs it accepts, and TLS.
//!
//! Tokens are bearer credentials: whoever reads one can act as its owner until it
//! expires. So a plain `http://` relay is accepted only where nobody else can listen
//! on the path: loopback, or an address of a private LAN (a distribution centre's own
//! network, a roadshow laptop's hotspot). Anything else must be `https://`, unless the
//! user says `--insecure` knowing what it means. TLS uses rustls with the system's
//! trust roots, plus a dealer's private CA given with `--ca`.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

/// How to reach the relay, as given at login and kept in the device's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsSettings {
    /// A PEM file of CA certificates trusted besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Plain `http://` allowed to a public address (tokens cross the network in
    /// clear text).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// The relay's base URL, trimmed, after checking it may carry a token: `https://`
/// anywhere; `http://` to loopback or a private LAN address, or anywhere with
/// `insecure`.
pub fn base_url(server: &str, insecure: bool) -> Result<String> {
    let s = server.trim().trim_end_matches('/');
    if s.starts_with("https://") {
        return Ok(s.to_string());
    }
    let Some(rest) = s.strip_prefix("http://") else {
        bail!(
            "the server must be an https:// URL (or http:// on this machine or a private LAN), e.g. https://relay.example.com (got {server:?})"
        );
    };
    if insecure {
        return Ok(s.to_string());
    }
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host_of(host_port);
    if is_local_host(host, host_port) {
        return Ok(s.to_string());
    }
    bail!(
        "refusing plain http:// to {host}: it is not this machine or a private LAN address, so your token would cross the network in clear text. Use https:// (add --ca FILE for a private CA), or pass --insecure if you accept the risk"
    )
}

/// The host of `host[:port]`, brackets of an IPv6 literal removed.
fn host_of(host_port: &str) -> &str {
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

/// Whether every address `host` names is loopback or on a private network. Names are
/// resolved; a name that does not resolve is not local.
fn is_local_host(host: &str, host_port: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return is_local_ip(ip);
    }
    let with_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host}:80")
    };
    match with_port.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| is_local_ip(a.ip()))
        }
        Err(_) => false,
    }
}

/// Loopback, private (RFC 1918), link-local, and IPv6 unique-local or link-local.
fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The rustls client configuration: the system's trust roots plus `ca`'s
/// certificates. Fails if `ca` cannot be read or holds no certificate, or if no root
/// at all could be loaded.
pub fn tls_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A broken system certificate must not make every relay unreachable.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read the CA file {}", path.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("{} is not a PEM file of certificates", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no certificate", path.display());
        }
        for cert in certs {
            roots.add(cert).with_context(|| {
                format!("{} holds a certificate rustls cannot use", path.display())
            })?;
        }
    }
    if roots.is_empty() {
        bail!("no trusted root certificate: the system has none, and no --ca FILE was given");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An HTTP client for the relay's API with `tls`'s trust and `timeout` per request.
pub fn http_client(tls: &TlsSettings, timeout: Duration) -> Result<reqwest::Client> {
    let config = tls_config(tls.ca.as_deref())?;
    reqwest::Client::builder()
        .timeout(timeout)
        .use_preconfigured_tls((*config).clone())
        .build()
        .context("cannot set up the HTTP client")
}

/// The WebSocket connector for `tls`'s trust.
pub fn ws_connector(tls: &TlsSettings) -> Result<tokio_tungstenite::Connector> {
    Ok(tokio_tungstenite::Connector::Rustls(tls_config(
        tls.ca.as_deref(),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_where_nobody_else_listens() {
        for ok in [
            "http://127.0.0.1:3030",
            "http://localhost:3030/",
            "http://[::1]:3030",
            "http://10.1.2.3",
            "http://192.168.43.1:3030",
            "http://172.20.0.5:80",
            "http://[fd12::1]:3030",
            "https://relay.example.com",
            "https://203.0.113.7:443",
        ] {
            assert!(base_url(ok, false).is_ok(), "{ok}");
        }
        for refused in [
            "http://203.0.113.7:3030",
            "http://8.8.8.8",
            "http://[2001:db8::1]:3030",
            "http://172.32.0.1",
        ] {
            let err = base_url(refused, false).unwrap_err().to_string();
            assert!(err.contains("clear text"), "{refused}: {err}");
            assert!(
                base_url(refused, true).is_ok(),
                "--insecure allows {refused}"
            );
        }
        assert!(base_url("ftp://x", true).is_err());
        assert!(base_url("relay.example.com", false).is_err());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = tls_config(Some(&empty)).unwrap_err().to_string();
        assert!(err.contains("holds no certificate"), "{err}");
        let missing = dir.path().join("missing.pem");
        assert!(tls_config(Some(&missing)).is_err());
    }
}
