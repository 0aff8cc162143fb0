//! Trust between tiers, the downstream side: a distribution centre's or a roadshow
//! laptop's relay learns from its upstream relay which keys sign tokens and which
//! tokens and devices are revoked.
//!
//! - The upstream's public keys (`GET /.well-known/jwks.json`) are installed into the
//!   running [`Authenticator`]: a device token head office issued verifies here, and
//!   this relay still cannot mint one (it never holds a private key of upstream's).
//! - The upstream's revocations (`GET /api/revocations?after=<seq>`, with the relay's
//!   upstream token) are written into the local registry
//!   ([`Registry::apply_revocations`]), which cuts the open connections of a revoked
//!   token or device at once and passes the revocation on to relays further down.
//! - Both are cached in `<data-dir>/upstream-trust.json`, so that a restarted relay
//!   with the link down verifies the same tokens ([`load_cached_trust`]).
//!
//! [`sync_trust_once`] does one round; [`spawn_trust_refresh`] repeats it every
//! interval, retrying a failed round with back-off. A token of a key the relay has not
//! fetched yet is refused as `unknown_key` until the next round.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::{Authenticator, JwkSet, PublicJwk};
use crate::registry::RevocationPage;
use crate::registry::{Registry, RegistryError};

/// The file in the data directory caching the upstream's keys and the position in its
/// revocation feed.
pub const TRUST_FILE: &str = "upstream-trust.json";

/// How often a downstream relay refreshes keys and revocations by default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

/// The first retry after a failed round; doubled per failure up to the interval.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// How long one request to the upstream may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Most feed pages one round reads (a million revocations), so that a round ends.
const MAX_PAGES: usize = 1000;

/// How often `serve --upstream` refreshes trust from upstream.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustRefreshArgs {
    /// Seconds between refreshes of the upstream's keys and revocations: a device
    /// revoked upstream is cut here within this long of the link being up.
    #[arg(
        long,
        env = "DEALERSYNC_UPSTREAM_TRUST_REFRESH_SECS",
        default_value_t = 30.0
    )]
    pub upstream_trust_refresh_secs: f64,
}

/// Why a round of trust refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The upstream URL is not an http(s) URL.
    #[error("upstream URL {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    /// The upstream could not be reached or did not answer in time.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The upstream answered with an error (e.g. 401: the upstream token expired or
    /// was revoked; 403: the token's role may not read the feed).
    #[error("upstream refused {what}: HTTP {status}: {body}")]
    Refused {
        /// What was asked for.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The upstream's answer could not be read.
    #[error("upstream answer to {what} is not valid: {reason}")]
    Invalid {
        /// What was asked for.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The cache file could not be read or written.
    #[error("trust cache {path}: {reason}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The local registry refused the revocations.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustReport {
    /// Upstream keys now trusted.
    pub keys: usize,
    /// Revocations new to this relay.
    pub revocations_applied: usize,
    /// The position reached in the upstream's revocation feed.
    pub revocations_after: i64,
}

/// The cache file's contents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustCache {
    /// The upstream these belong to: a cache of another upstream is not used.
    upstream: String,
    keys: Vec<PublicJwk>,
    revocations_after: i64,
    fetched_at_ms: i64,
}

/// Everything a round needs: the upstream, and the relay's own authenticator,
/// registry and data directory.
#[derive(Clone)]
pub struct TrustLink {
    base: String,
    token: String,
    client: reqwest::Client,
    data_dir: PathBuf,
    auth: Arc<Authenticator>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for TrustLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("TrustLink")
            .field("upstream", &self.base)
            .finish_non_exhaustive()
    }
}

impl TrustLink {
    /// A link to `upstream` (its base URL) with `token`, for the relay whose data
    /// directory, authenticator and registry are given. TLS trusts the system's roots.
    pub fn new(
        upstream: &str,
        token: &str,
        client: reqwest::Client,
        data_dir: &Path,
        auth: Arc<Authenticator>,
        registry: Arc<Registry>,
    ) -> Result<TrustLink, TrustError> {
        let base = upstream.trim().trim_end_matches('/').to_string();
        let parsed =
            reqwest::Url::parse(&base).map_err(|_| TrustError::BadUrl(upstream.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(TrustError::BadUrl(upstream.to_string()));
        }
        Ok(TrustLink {
            base,
            token: token.trim().to_string(),
            client,
            data_dir: data_dir.to_path_buf(),
            auth,
            registry,
        })
    }

    /// The upstream's base URL.
    pub fn upstream(&self) -> &str {
        &self.base
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
        authorized: bool,
    ) -> Result<T, TrustError> {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if authorized {
            req = req.bearer_auth(&self.token);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| TrustError::Unreachable(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(TrustError::Refused {
                what,
                status: status.as_u16(),
                body: crate::telemetry::clip_to(&body, 300),
            });
        }
        resp.json().await.map_err(|e| TrustError::Invalid {
            what,
            reason: e.to_string(),
        })
    }
}

fn cache_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TRUST_FILE)
}

fn read_cache(data_dir: &Path) -> Result<Option<TrustCache>, TrustError> {
    let path = cache_path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TrustError::Cache {
                path,
                reason: e.to_string(),
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| TrustError::Cache {
            path,
            reason: format!("not a trust cache: {e}"),
        })
}

/// Replaces the cache atomically (temporary file, fsync, rename, directory fsync).
fn write_cache(data_dir: &Path, cache: &TrustCache) -> Result<(), TrustError> {
    let path = cache_path(data_dir);
    let err = |e: std::io::Error| TrustError::Cache {
        path: path.clone(),
        reason: e.to_string(),
    };
    let tmp = data_dir.join(format!("{TRUST_FILE}.{}.tmp", std::process::id()));
    let bytes = serde_json::to_vec_pretty(cache).map_err(|e| TrustError::Cache {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, &path).map_err(err)?;
    if let Ok(dir) = std::fs::File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Installs the upstream keys cached by the last successful round, if they belong to
/// `upstream`: called at start-up, so that a relay restarted with the link down
/// verifies the tokens it verified before. Returns how many keys were installed.
pub fn load_cached_trust(
    data_dir: &Path,
    upstream: &str,
    auth: &Authenticator,
) -> Result<usize, TrustError> {
    let upstream = upstream.trim().trim_end_matches('/');
    match read_cache(data_dir)? {
        Some(cache) if cache.upstream == upstream => Ok(auth.install_upstream_keys(&cache.keys)),
        Some(cache) => {
            tracing::warn!(cached = %cache.upstream, %upstream, "the trust cache is of another upstream; waiting for the first refresh");
            Ok(0)
        }
        None => Ok(0),
    }
}

/// One round: fetches the upstream's keys and installs them, then reads its
/// revocation feed from where the last round stopped and applies it, caching both.
/// Keys fetched are installed and cached even if the revocations then fail.
pub async fn sync_trust_once(link: &TrustLink) -> Result<TrustReport, TrustError> {
    let data_dir = link.data_dir.clone();
    let mut cache = tokio::task::spawn_blocking(move || read_cache(&data_dir))
        .await
        .map_err(|e| TrustError::Unreachable(format!("task failed: {e}")))??
        .filter(|c| c.upstream == link.base)
        .unwrap_or_else(|| TrustCache {
            upstream: link.base.clone(),
            ..TrustCache::default()
        });

    let jwks: JwkSet = link
        .get("the key set", "/.well-known/jwks.json", false)
        .await?;
    let keys = link.auth.install_upstream_keys(&jwks.keys);
    cache.keys = jwks.keys;
    cache.fetched_at_ms = dealersync_core::time::now_ms();
    save(link, &cache).await?;

    let mut applied = 0;
    for _ in 0..MAX_PAGES {
        let page: RevocationPage = link
            .get(
                "the revocation feed",
                &format!("/api/revocations?after={}", cache.revocations_after),
                true,
            )
            .await?;
        if page.last < cache.revocations_after {
            // The upstream's feed is shorter than where we were: it was restored from
            // an older backup. Read it again from the start.
            tracing::warn!(
                was = cache.revocations_after,
                now = page.last,
                "the upstream's revocation feed went back; reading it from the start"
            );
            cache.revocations_after = 0;
            continue;
        }
        let registry = link.registry.clone();
        let entries = page.revocations;
        applied += tokio::task::spawn_blocking(move || registry.apply_revocations(&entries))
            .await
            .map_err(|e| TrustError::Unreachable(format!("task failed: {e}")))??;
        cache.revocations_after = page.last;
        save(link, &cache).await?;
        if !page.more {
            break;
        }
    }
    Ok(TrustReport {
        keys,
        revocations_applied: applied,
        revocations_after: cache.revocations_after,
    })
}

async fn save(link: &TrustLink, cache: &TrustCache) -> Result<(), TrustError> {
    let (dir, cache) = (link.data_dir.clone(), cache.clone());
    tokio::task::spawn_blocking(move || write_cache(&dir, &cache))
        .await
        .map_err(|e| TrustError::Unreachable(format!("task failed: {e}")))?
}

/// Runs [`sync_trust_once`] now and then every `interval`; a failed round is retried
/// after [`FIRST_RETRY`], doubling per failure up to `interval`. Runs until the task
/// is aborted (or the runtime ends).
pub fn spawn_trust_refresh(link: TrustLink, interval: Duration) -> tokio::task::JoinHandle<()> {
    let interval = interval.max(Duration::from_millis(50));
    tokio::spawn(async move {
        let mut retry = FIRST_RETRY.min(interval);
        let mut failing = false;
        loop {
            match sync_trust_once(&link).await {
                Ok(report) => {
                    if failing || report.revocations_applied > 0 {
                        tracing::info!(
                            upstream = %link.base,
                            keys = report.keys,
                            revocations = report.revocations_applied,
                            "trust refreshed from upstream"
                        );
                    }
                    failing = false;
                    retry = FIRST_RETRY.min(interval);
                    tokio::time::sleep(interval).await;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(upstream = %link.base, error = %e, "cannot refresh trust from upstream; using the cached keys and revocations, retrying");
                    }
                    failing = true;
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(interval);
                }
            }
        }
    })
}
