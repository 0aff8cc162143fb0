//! The [`Authenticator`]: verifies tokens against the keys the relay trusts, picking
//! the key by the token's `kid`, and issues tokens with its signing key.
//!
//! The keys it trusts come from two places: its own (the managed keys, the legacy
//! HS256 secret, or an identity provider's PEM files), reread when `keys rotate` or
//! `keys retire` changes them; and, on a downstream relay, the upstream relay's public
//! keys ([`Authenticator::install_upstream_keys`], from `crate::trust`), which verify
//! but can never sign.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, Uri};
use base64::Engine as _;
use dealersync_core::access::{Audience, Claims, Role};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::config::{AuthConfig, KeyConfig};
use super::keys::{self, JwkSet, KEYS_FILE, PublicJwk};
use super::lifetime::{now_secs, rfc3339};
use super::request::{TokenPlace, token_from_request};
use super::secret::{load_or_create_secret, read_secret};
use super::{AuthError, Revocations, SECRET_FILE};

/// What to put into a new token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The user.
    pub sub: String,
    /// The role.
    pub role: Role,
    /// The user's site.
    pub site: String,
    /// The device, so that it can be revoked alone.
    pub device: Option<String>,
    /// How long the token lives.
    pub ttl: Duration,
}

/// A signed token and its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// What it says (with the fresh `jti`).
    pub claims: Claims,
}

/// A key that verifies tokens.
#[derive(Clone)]
struct Verifier {
    /// The id tokens name; `None` for keys given without one (PEM files, the HS256
    /// secret), which are tried for any token of their algorithm.
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
    /// Published in the JWK set.
    jwk: Option<PublicJwk>,
}

/// The key that signs.
struct Signer {
    kid: Option<String>,
    alg: Algorithm,
    key: EncodingKey,
}

/// The relay's own keys, swapped whole when they change.
#[derive(Default)]
struct KeyRing {
    verifiers: Vec<Verifier>,
    signer: Option<Signer>,
}

/// The key files' contents when the ring was last built (managed keys only): a
/// reload compares them and rebuilds only on a change.
type LoadedFiles = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Verifies tokens against the configured algorithm and keys, and issues them when it
/// holds a signing key.
pub struct Authenticator {
    ring: RwLock<Arc<KeyRing>>,
    upstream: RwLock<Arc<Vec<Verifier>>>,
    loaded: Mutex<Option<LoadedFiles>>,
    data_dir: PathBuf,
    validation: Validation,
    config: AuthConfig,
    revocations: Arc<dyn Revocations>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        let ring = self.ring();
        f.debug_struct("Authenticator")
            .field("algorithm", &self.algorithm())
            .field("verifying_keys", &ring.verifiers.len())
            .field("upstream_keys", &self.upstream().len())
            .field("can_sign", &ring.signer.is_some())
            .finish()
    }
}

impl Authenticator {
    /// Sets up from configuration. The managed keys are read from
    /// `<data_dir>/jwt-keys.json` and generated there (mode 0600) on first start; with
    /// `--jwt-algorithm HS256` the secret is read from `<data_dir>/jwt-secret`, and
    /// generated there if it does not exist.
    pub fn open(
        data_dir: &Path,
        config: AuthConfig,
        revocations: Arc<dyn Revocations>,
    ) -> Result<Self, AuthError> {
        let ring = match &config.keys {
            KeyConfig::Managed => {
                keys::load_or_create_managed(data_dir)?;
                KeyRing::default() // built by the reload below
            }
            KeyConfig::Hs256Generated => {
                let secret = load_or_create_secret(data_dir)?;
                KeyRing {
                    verifiers: vec![hs256_verifier(&secret)],
                    signer: Some(Signer {
                        kid: None,
                        alg: Algorithm::HS256,
                        key: EncodingKey::from_secret(&secret),
                    }),
                }
            }
            KeyConfig::Rs256 {
                public_keys,
                signing_key,
            } => pem_ring(
                Algorithm::RS256,
                public_keys,
                signing_key.as_deref(),
                DecodingKey::from_rsa_pem,
                EncodingKey::from_rsa_pem,
            )?,
            KeyConfig::EdDsa {
                public_keys,
                signing_key,
            } => pem_ring(
                Algorithm::EdDSA,
                public_keys,
                signing_key.as_deref(),
                DecodingKey::from_ed_pem,
                EncodingKey::from_ed_pem,
            )?,
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp"]);
        if let Some(aud) = &config.audience {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
        }
        if let Some(iss) = &config.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        let auth = Authenticator {
            ring: RwLock::new(Arc::new(ring)),
            upstream: RwLock::default(),
            loaded: Mutex::new(None),
            data_dir: data_dir.to_path_buf(),
            validation,
            config,
            revocations,
        };
        auth.reload_keys()?;
        Ok(auth)
    }

    fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn upstream(&self) -> Arc<Vec<Verifier>> {
        self.upstream
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Rereads the managed keys and the legacy HS256 secret if their files changed
    /// (`keys rotate` or `keys retire` from another process); returns whether the
    /// keys changed. The relay calls it every second; without managed keys it does
    /// nothing. On an unreadable file the keys in use stay.
    pub fn reload_keys(&self) -> Result<bool, AuthError> {
        if self.config.keys != KeyConfig::Managed {
            return Ok(false);
        }
        let read = |name: &str| -> Result<Option<Vec<u8>>, AuthError> {
            let path = self.data_dir.join(name);
            match std::fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(AuthError::Key(format!(
                    "cannot read {}: {e}",
                    path.display()
                ))),
            }
        };
        let files = (read(KEYS_FILE)?, read(SECRET_FILE)?);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.as_ref() == Some(&files) {
            return Ok(false);
        }
        let managed = match &files.0 {
            Some(bytes) => keys::parse_managed(bytes, &self.data_dir.join(KEYS_FILE))?,
            None => {
                return Err(AuthError::Key(format!(
                    "{} is missing; restore it from a backup, or restart the relay to \
                     generate a new key (tokens signed by the old keys stop verifying)",
                    self.data_dir.join(KEYS_FILE).display()
                )));
            }
        };
        let mut ring = KeyRing::default();
        for key in &managed {
            ring.verifiers.push(Verifier {
                kid: Some(key.kid.clone()),
                alg: Algorithm::EdDSA,
                key: key.decoding_key(),
                jwk: Some(key.public_jwk()),
            });
            if key.signing {
                ring.signer = Some(Signer {
                    kid: Some(key.kid.clone()),
                    alg: Algorithm::EdDSA,
                    key: key.encoding_key()?,
                });
            }
        }
        // An earlier release's secret keeps verifying what it signed; it signs no more.
        if files.1.is_some()
            && let Some(secret) = read_secret(&self.data_dir)?
        {
            ring.verifiers.push(hs256_verifier(&secret));
        }
        let first = loaded.is_none();
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        *loaded = Some(files);
        if !first {
            tracing::info!("token keys changed; using the new set");
        }
        Ok(!first)
    }

    /// Trusts `keys` (an upstream relay's public keys) for verification, in place of
    /// the upstream keys installed before; returns how many were installed. Keys that
    /// are not Ed25519 signature keys are skipped with a warning. These keys never
    /// sign.
    pub fn install_upstream_keys(&self, keys: &[PublicJwk]) -> usize {
        let own: Vec<Option<String>> = self
            .ring()
            .verifiers
            .iter()
            .map(|v| v.kid.clone())
            .collect();
        let mut installed = Vec::new();
        for jwk in keys {
            if own.contains(&Some(jwk.kid.clone())) {
                continue;
            }
            match jwk.decoding_key() {
                Ok(key) => installed.push(Verifier {
                    kid: Some(jwk.kid.clone()),
                    alg: Algorithm::EdDSA,
                    key,
                    jwk: Some(jwk.clone()),
                }),
                Err(e) => tracing::warn!(error = %e, "skipping an upstream key"),
            }
        }
        let n = installed.len();
        *self.upstream.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(installed);
        n
    }

    /// The public keys that verify this relay's tokens, as `/.well-known/jwks.json`
    /// publishes them: its own managed keys and the upstream keys it trusts (so that a
    /// relay further down a chain learns head office's keys through its parent). Never
    /// a secret; retired keys are gone; keys from PEM files are not published (their
    /// identity provider publishes them).
    pub fn jwks(&self) -> JwkSet {
        let ring = self.ring();
        let upstream = self.upstream();
        JwkSet {
            keys: ring
                .verifiers
                .iter()
                .chain(upstream.iter())
                .filter_map(|v| v.jwk.clone())
                .collect(),
        }
    }

    /// The id of the key that signs new tokens, if it has one.
    pub fn signing_kid(&self) -> Option<String> {
        self.ring().signer.as_ref().and_then(|s| s.kid.clone())
    }

    /// The algorithm new tokens are signed with, or, for a relay that only verifies,
    /// the first it accepts.
    pub fn algorithm(&self) -> Algorithm {
        let ring = self.ring();
        ring.signer
            .as_ref()
            .map(|s| s.alg)
            .or_else(|| ring.verifiers.first().map(|v| v.alg))
            .unwrap_or(Algorithm::EdDSA)
    }

    /// Finds the token in a request (see [`token_from_request`]) and verifies it: the
    /// one call the WebSocket upgrade and the HTTP API need.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<(Claims, TokenPlace), AuthError> {
        let (token, place) = token_from_request(headers, uri)?;
        Ok((self.verify(&token)?, place))
    }

    /// Checks a compact JWT and returns its claims, or says exactly what is wrong.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let (header, payload) = split_token(token)?;
        // Look at the header ourselves: jsonwebtoken cannot parse `"alg":"none"` and
        // would only say "invalid token"; the operator deserves the real reason.
        let found = header
            .get("alg")
            .and_then(|a| a.as_str())
            .ok_or_else(|| AuthError::Malformed("header has no \"alg\"".into()))?;
        let kid = header.get("kid").and_then(|k| k.as_str());
        let ring = self.ring();
        let upstream = self.upstream();
        let all: Vec<&Verifier> = ring.verifiers.iter().chain(upstream.iter()).collect();
        let Some(alg) = all
            .iter()
            .map(|v| v.alg)
            .find(|a| algorithm_name(*a) == found)
        else {
            let mut names: Vec<&str> = all.iter().map(|v| algorithm_name(v.alg)).collect();
            names.dedup();
            return Err(AuthError::WrongAlgorithm {
                found: found.to_string(),
                expected: names.join(" or "),
            });
        };
        let same_alg = all.iter().filter(|v| v.alg == alg);
        // A token naming a key is checked with that key alone; keys without an id
        // (PEM files, the HS256 secret) are tried for tokens of their algorithm.
        let named: Vec<&Verifier> = same_alg
            .clone()
            .filter(|v| kid.is_some() && v.kid.as_deref() == kid)
            .copied()
            .collect();
        let candidates: Vec<&Verifier> = if named.is_empty() {
            same_alg.filter(|v| v.kid.is_none()).copied().collect()
        } else {
            named
        };
        if candidates.is_empty() {
            return Err(match kid {
                Some(kid) => AuthError::UnknownKey {
                    kid: crate::telemetry::clip(kid).to_string(),
                },
                None => AuthError::BadSignature,
            });
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![alg];
        let mut last = AuthError::BadSignature;
        let mut claims = None;
        for v in candidates {
            match jsonwebtoken::decode::<Claims>(token, &v.key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {
                    last = AuthError::BadSignature;
                }
                Err(e) => {
                    last = self.explain(e.kind(), &payload, alg);
                    break;
                }
            }
        }
        let claims = claims.ok_or(last)?;
        if claims.sub.trim().is_empty() || claims.site.trim().is_empty() {
            return Err(AuthError::InvalidClaims(
                "`sub` and `site` must not be empty".into(),
            ));
        }
        self.revocations
            .check(&claims.jti, claims.device.as_deref())?;
        Ok(claims)
    }

    fn explain(&self, kind: &ErrorKind, payload: &serde_json::Value, alg: Algorithm) -> AuthError {
        let time = |name: &str| {
            payload
                .get(name)
                .and_then(|v| v.as_f64())
                .map(|s| rfc3339(s as i64))
                .unwrap_or_else(|| "an unreadable time".into())
        };
        match kind {
            ErrorKind::ExpiredSignature => AuthError::Expired { at: time("exp") },
            ErrorKind::ImmatureSignature => AuthError::NotYetValid { at: time("nbf") },
            ErrorKind::InvalidAudience => AuthError::WrongAudience {
                expected: self
                    .config
                    .audience
                    .clone()
                    .unwrap_or_else(|| "no audience".into()),
            },
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer {
                expected: self.config.issuer.clone().unwrap_or_default(),
            },
            ErrorKind::MissingRequiredClaim(c) => {
                AuthError::InvalidClaims(format!("required claim `{c}` is missing"))
            }
            ErrorKind::InvalidClaimFormat(c) => {
                AuthError::InvalidClaims(format!("claim `{c}` has the wrong type"))
            }
            ErrorKind::Json(e) => AuthError::InvalidClaims(e.to_string()),
            ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm {
                found: "another algorithm".into(),
                expected: algorithm_name(alg).into(),
            },
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
                AuthError::Malformed(kind_text(kind))
            }
            other => AuthError::Malformed(kind_text(other)),
        }
    }

    /// Signs a new token with a fresh `jti`, naming the signing key in the header's
    /// `kid` when it has one. Recording it (for the admin API) is the caller's
    /// business: see `Registry::record_issued`.
    pub fn issue(&self, req: &TokenRequest) -> Result<IssuedToken, AuthError> {
        let ring = self.ring();
        let signer = ring
            .signer
            .as_ref()
            .ok_or_else(|| AuthError::CannotSign(algorithm_name(self.algorithm()).into()))?;
        if req.sub.trim().is_empty() || req.site.trim().is_empty() {
            return Err(AuthError::InvalidClaims(
                "`sub` and `site` must not be empty".into(),
            ));
        }
        let now = now_secs();
        let claims = Claims {
            sub: req.sub.clone(),
            role: req.role,
            site: req.site.clone(),
            device: req.device.clone(),
            exp: now + req.ttl.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: Some(now),
            nbf: None,
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone().map(Audience::One),
        };
        let mut header = Header::new(signer.alg);
        header.kid = signer.kid.clone();
        let token = jsonwebtoken::encode(&header, &claims, &signer.key)
            .map_err(|e| AuthError::Key(format!("signing failed: {e}")))?;
        Ok(IssuedToken { token, claims })
    }
}

fn hs256_verifier(secret: &[u8]) -> Verifier {
    Verifier {
        kid: None,
        alg: Algorithm::HS256,
        key: DecodingKey::from_secret(secret),
        jwk: None,
    }
}

/// The ring of an identity provider's PEM keys.
fn pem_ring(
    alg: Algorithm,
    public_keys: &[PathBuf],
    signing_key: Option<&Path>,
    decoding: impl Fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>,
    encoding: impl Fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>,
) -> Result<KeyRing, AuthError> {
    let verifiers = public_keys
        .iter()
        .map(|p| {
            Ok(Verifier {
                kid: None,
                alg,
                key: read_key(p, &decoding)?,
                jwk: None,
            })
        })
        .collect::<Result<_, AuthError>>()?;
    let signer = signing_key
        .map(|p| {
            Ok::<_, AuthError>(Signer {
                kid: None,
                alg,
                key: read_key(p, &encoding)?,
            })
        })
        .transpose()?;
    Ok(KeyRing { verifiers, signer })
}

fn read_key<K>(
    path: &Path,
    parse: impl Fn(&[u8]) -> jsonwebtoken::errors::Result<K>,
) -> Result<K, AuthError> {
    let pem = std::fs::read(path)
        .map_err(|e| AuthError::Key(format!("cannot read {}: {e}", path.display())))?;
    parse(&pem).map_err(|e| AuthError::Key(format!("{} is not a usable key: {e}", path.display())))
}

fn kind_text(kind: &ErrorKind) -> String {
    format!("{kind:?}")
}

/// The JOSE name of an algorithm (`HS256`, `RS256`, `EdDSA`).
pub fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
    }
}

/// Decodes the header and payload JSON of a compact JWT without trusting either.
fn split_token(token: &str) -> Result<(serde_json::Value, serde_json::Value), AuthError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(AuthError::Malformed(format!(
            "expected 3 dot-separated parts, found {}",
            parts.len()
        )));
    }
    let part = |i: usize, what: &str| -> Result<serde_json::Value, AuthError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[i])
            .map_err(|e| AuthError::Malformed(format!("{what} is not base64url: {e}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| AuthError::Malformed(format!("{what} is not JSON: {e}")))
    };
    Ok((part(0, "header")?, part(1, "payload")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_token_explains_shape_errors() {
        assert!(matches!(split_token("a.b"), Err(AuthError::Malformed(m)) if m.contains("3")));
        assert!(
            matches!(split_token("!!.e30.x"), Err(AuthError::Malformed(m)) if m.contains("header"))
        );
    }
}
