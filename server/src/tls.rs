//! The relay's own TLS, for a distribution centre without a reverse proxy.
//!
//! The certificate and key are PEM files. SIGHUP reloads them (a renewed certificate
//! from certbot or the dealer's CA) without dropping a connection: new handshakes get
//! the new pair, established connections keep theirs. A reload that fails (a missing
//! file, a key that does not match the certificate) is logged and the pair in use
//! stays; the relay never ends up serving without a certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tracing::{error, info};

/// Why a certificate and key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no PEM certificate.
    #[error("cannot read a certificate chain from {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no PEM private key.
    #[error("cannot read a private key from {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key is of a kind rustls cannot sign with, or does not match the
    /// certificate.
    #[error("the key in {key} cannot serve the certificate in {cert}: {reason}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// Where the relay's certificate chain and private key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the relay's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads and checks the pair.
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        let chain = read_chain(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsError::Key {
            path: self.key.clone(),
            reason: e.to_string(),
        })?;
        let provider = rustls::crypto::ring::default_provider();
        CertifiedKey::from_der(chain, key, &provider).map_err(|e| TlsError::Mismatch {
            cert: self.cert.clone(),
            key: self.key.clone(),
            reason: e.to_string(),
        })
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::Certificate {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(chain)
}

/// The certificate in use, swapped whole on reload.
#[derive(Debug)]
pub struct ReloadableCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Loads `files`; fails if they cannot serve.
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let current = RwLock::new(Arc::new(files.load()?));
        Ok(Arc::new(ReloadableCert { files, current }))
    }

    /// Reads the files again and serves the new pair from the next handshake on;
    /// on error the pair in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(self.files.load()?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// The acceptor for connections: TLS 1.2 and 1.3 with ring, HTTP/1.1 by ALPN.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// Reloads `cert` on every SIGHUP until the process ends.
pub fn reload_on_sighup(cert: Arc<ReloadableCert>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            error!("cannot listen for SIGHUP; the certificate will not be reloaded");
            return;
        };
        while hangups.recv().await.is_some() {
            match cert.reload() {
                Ok(()) => info!(cert = %cert.files.cert.display(), "TLS certificate reloaded"),
                Err(e) => {
                    crate::telemetry::count_error("tls_reload");
                    error!(error = %e, "TLS certificate not reloaded; still serving the previous one");
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = cert;
}
