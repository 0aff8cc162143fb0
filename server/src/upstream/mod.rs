//! A downstream relay: `serve --upstream URL --upstream-token TOKEN`.
//!
//! A distribution centre or a roadshow laptop runs the same relay for its local
//! devices (same protocol, access rules and durability) and keeps the documents of its
//! subtree in sync with its upstream relay whenever it can reach it. The pieces:
//! - [`UpstreamArgs`]: the flags (and their `DEALERSYNC_UPSTREAM*` variables);
//! - `mirror`: the upstream's site tree (the sites its relay token reaches, and the
//!   network document) copied into this relay's registry, so that local tokens of
//!   those sites are admitted and the documents keep their ids at every tier; with
//!   each site's chain of monthly documents, so that archives get the upstream's
//!   grace week here and are followed while they take changes;
//! - `link`: the WebSocket to the upstream, an outgoing peer of the engine shards
//!   ([`crate::relay::RelayHandle::connect_upstream`]), reconnecting with capped,
//!   jittered back-off;
//! - `status`: `GET /api/upstream` and the `dealersync_upstream_*` metrics.
//!
//! The upstream enforces the relay token's subtree (`Role::Relay`). This relay never
//! gives a local principal more than that token carries upstream: access here is the
//! lesser of the principal's and the relay token's ([`crate::registry::Registry`]'s
//! ceiling), so nothing is accepted locally that the upstream would refuse.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use clap::Args;
use dealersync_core::access::{Principal, Role};
use dealersync_core::protocol::DocumentId;
use serde::{Deserialize, Serialize};

use crate::registry::Registry;
use crate::relay::{RelayHandle, UpstreamLedger};

pub mod attribution;
mod link;
mod mirror;
mod status;
pub(crate) mod transport;

pub use mirror::{ARCHIVE_FOLLOW_MARGIN_MS, mirror_sites};
pub use status::router;

/// The flags that make a relay a downstream relay.
#[derive(Args, Debug, Clone, Default)]
pub struct UpstreamArgs {
    /// Run as a downstream relay of this relay (its base URL, e.g.
    /// https://hq.example.com): serve local devices and sync the subtree of
    /// --upstream-token with it whenever it is reachable.
    #[arg(long, env = "DEALERSYNC_UPSTREAM")]
    pub upstream: Option<String>,
    /// The relay token the upstream issued for this relay (role `relay`, site = the
    /// subtree's top site).
    #[arg(
        long,
        env = "DEALERSYNC_UPSTREAM_TOKEN",
        requires = "upstream",
        conflicts_with = "upstream_token_file"
    )]
    pub upstream_token: Option<String>,
    /// A file holding the relay token (kept out of the process list and the config).
    #[arg(long, env = "DEALERSYNC_UPSTREAM_TOKEN_FILE", requires = "upstream")]
    pub upstream_token_file: Option<PathBuf>,
    /// A PEM file of CA certificates trusted for an https upstream, besides the
    /// system's roots.
    #[arg(long, env = "DEALERSYNC_UPSTREAM_CA", requires = "upstream")]
    pub upstream_ca: Option<PathBuf>,
}

/// Why the upstream settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A setting is wrong; the message says which and how to fix it.
    #[error("{0}")]
    Config(String),
    /// The upstream could not be reached or answered something unexpected.
    #[error("upstream {url}: {reason}")]
    Upstream {
        /// What was asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The local registry could not take the upstream's site tree.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

/// A checked upstream: where, with which token, on whose behalf.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Base URL, no trailing slash (`http://` or `https://`).
    pub base: String,
    /// The relay token.
    pub token: String,
    /// Who the token says this relay is (read from it, not verified here: the
    /// upstream verifies it).
    pub relay: Principal,
    /// Extra CA certificates for TLS.
    pub ca: Option<PathBuf>,
}

/// The token's claims this relay needs.
#[derive(Deserialize)]
struct TokenClaims {
    sub: String,
    role: String,
    site: String,
}

impl UpstreamConfig {
    /// An HTTP client for the upstream's API (rustls with the system's roots and
    /// `--upstream-ca`), for the parts of a downstream relay that ask the upstream
    /// over HTTP besides the link: the trust refresh (`crate::trust`).
    pub fn http_client(
        &self,
        timeout: std::time::Duration,
    ) -> Result<reqwest::Client, UpstreamError> {
        transport::http_client(&transport::tls_config(self.ca.as_deref())?, timeout)
    }
}

impl UpstreamArgs {
    /// The upstream these flags describe, `None` for a relay without one.
    pub fn config(&self) -> Result<Option<UpstreamConfig>, UpstreamError> {
        let Some(url) = &self.upstream else {
            return Ok(None);
        };
        let base = url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(UpstreamError::Config(format!(
                "--upstream must be the upstream relay's http:// or https:// base URL, not {url:?}"
            )));
        }
        let token = match (&self.upstream_token, &self.upstream_token_file) {
            (Some(t), _) => t.trim().to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    UpstreamError::Config(format!(
                        "cannot read --upstream-token-file {}: {e}",
                        path.display()
                    ))
                })?
                .trim()
                .to_string(),
            (None, None) => {
                return Err(UpstreamError::Config(
                    "--upstream needs --upstream-token or --upstream-token-file: a relay token \
                     from the upstream (`dealersync-server token --role relay --site <site>`)"
                        .into(),
                ));
            }
        };
        let relay = relay_principal(&token)?;
        Ok(Some(UpstreamConfig {
            base,
            token,
            relay,
            ca: self.upstream_ca.clone(),
        }))
    }
}

/// Reads the relay token's subject, role and site (unverified: the upstream checks
/// the signature; a forged token only gets this relay refused upstream).
fn relay_principal(token: &str) -> Result<Principal, UpstreamError> {
    let bad = |why: &str| {
        UpstreamError::Config(format!(
            "--upstream-token is not a dealersync token ({why}); issue one on the upstream with \
             `dealersync-server token --role relay --site <site>`"
        ))
    };
    let payload = token.split('.').nth(1).ok_or_else(|| bad("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("its payload is not base64url"))?;
    let claims: TokenClaims =
        serde_json::from_slice(&bytes).map_err(|_| bad("no sub, role and site claims"))?;
    let role: Role = claims.role.parse().map_err(|_| bad("an unknown role"))?;
    if role != Role::Relay {
        return Err(UpstreamError::Config(format!(
            "--upstream-token has role {role}, not relay: a downstream relay syncs with a relay \
             token (`dealersync-server token --role relay --site {}`)",
            claims.site
        )));
    }
    Ok(Principal {
        sub: claims.sub,
        role,
        site: claims.site,
        device: None,
    })
}

/// The link's state, for the API and the metrics.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkState {
    /// Whether the WebSocket to the upstream is up and past its handshake.
    pub connected: bool,
    /// When a frame last came from the upstream, UTC ms.
    pub last_contact: Option<i64>,
    /// When the site tree was last copied from the upstream, UTC ms.
    pub last_mirror: Option<i64>,
    /// Connections opened since start.
    pub connects: u64,
    /// Why the last attempt or connection ended.
    pub last_error: Option<String>,
}

/// The running link as the API sees it.
#[derive(Clone)]
pub struct Upstream {
    /// The settings.
    pub config: Arc<UpstreamConfig>,
    /// Per document: changes the upstream has not acknowledged.
    pub ledger: UpstreamLedger,
    /// The connection's state.
    pub link: Arc<Mutex<LinkState>>,
    /// The documents the link follows (kept across connections, so that one that left
    /// the subtree or its archive's grace week while cut off is let go of).
    followed: Arc<Mutex<HashSet<DocumentId>>>,
}

impl Upstream {
    /// The link's state now.
    pub fn state(&self) -> LinkState {
        self.link.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut LinkState)) {
        f(&mut self.link.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Makes the link follow exactly `docs` from now on: the relay starts following
    /// the new ones and lets go of those no longer listed.
    async fn follow_only(&self, relay: &RelayHandle, docs: &[DocumentId]) {
        let (new, gone) = {
            let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
            let want: HashSet<DocumentId> = docs.iter().copied().collect();
            let new: Vec<DocumentId> = want.difference(&followed).copied().collect();
            let gone: Vec<DocumentId> = followed.difference(&want).copied().collect();
            *followed = want;
            (new, gone)
        };
        if !new.is_empty() {
            tracing::info!(
                documents = new.len(),
                "following new documents of the subtree"
            );
            relay.follow_upstream(new).await;
        }
        if !gone.is_empty() {
            tracing::info!(
                documents = gone.len(),
                "no longer following documents (archives past their grace week, sites gone)"
            );
            relay.unfollow_upstream(gone).await;
        }
    }
}

/// Shortest and longest wait between two connection attempts (full jitter below the
/// doubling bound): a relay that cannot reach its upstream for days retries twice a
/// minute at most, and comes back within seconds of a short cut.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// See [`BACKOFF_MIN`].
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How often the site tree is copied again while connected (new sites appear).
pub const MIRROR_EVERY: Duration = Duration::from_secs(30);

/// How long the link waits after a change to the network document before copying the
/// site tree (a carry-over names each site's new documents there): one carry-over's
/// changes make one copy, and the copy follows within seconds instead of
/// [`MIRROR_EVERY`].
pub const MIRROR_AFTER_NETWORK_CHANGE: Duration = Duration::from_secs(1);

/// Caps every local principal at the relay token's reach and starts the link task;
/// call inside the runtime. The registry gets the upstream's site tree on the first
/// successful contact.
pub fn start(config: UpstreamConfig, relay: RelayHandle, registry: Arc<Registry>) -> Upstream {
    *registry.ceiling.write().unwrap_or_else(|p| p.into_inner()) = Some(config.relay.clone());
    let upstream = Upstream {
        config: Arc::new(config),
        ledger: UpstreamLedger::default(),
        link: Arc::default(),
        followed: Arc::default(),
    };
    tokio::spawn(link::run(upstream.clone(), relay, registry));
    tokio::spawn(status::export_metrics(upstream.clone()));
    upstream
}
