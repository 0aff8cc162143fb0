//! Tokens: verifying the JWT a peer presents, issuing tokens for the CLI, and finding
//! the token in a request.
//!
//! One algorithm is accepted, fixed by configuration: HS256 with a secret the server
//! generates into its data directory on first start, or RS256 / EdDSA with public keys
//! read from files (an identity provider signs; the server only verifies). A token whose
//! header names any other algorithm, `none` included, is rejected before its signature
//! is looked at. `exp` is required; `nbf`, `aud` and `iss` are checked when present or
//! configured; revoked token ids and devices are rejected (see [`Revocations`]).
//!
//! Where the token travels (see [`token_from_request`]): `Authorization: Bearer`, the
//! `?token=` query (the automerge-repo browser adapter opens `new WebSocket(url)` and
//! cannot set headers), or a `Sec-WebSocket-Protocol` entry `bearer.<jwt>` offered next
//! to [`SUBPROTOCOL`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Uri, header};
use base64::Engine as _;
use dealersync_core::access::{Audience, Claims, Role};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;

/// The file in the data directory holding the HS256 secret (hex).
pub const SECRET_FILE: &str = "jwt-secret";

/// The WebSocket subprotocol the server selects when a client offers its token as a
/// subprotocol entry: browsers fail a handshake whose answer names no offered protocol,
/// and the server must not echo the token itself.
pub const SUBPROTOCOL: &str = "dealersync";

/// Prefix of the `Sec-WebSocket-Protocol` entry that carries the token.
pub const SUBPROTOCOL_TOKEN_PREFIX: &str = "bearer.";

/// Smallest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a token was refused, or why the authenticator could not be set up. The
/// messages go to the client as they are: they say what is wrong, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in any of the accepted places.
    #[error(
        "no token: send `Authorization: Bearer <token>`, the `?token=` query parameter, or a `Sec-WebSocket-Protocol` entry `bearer.<token>`"
    )]
    Missing,
    /// Not three base64url parts with a JSON header.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names an algorithm other than the configured one (or `none`).
    #[error("wrong algorithm: token is signed with {found}, this server accepts only {expected}")]
    WrongAlgorithm {
        /// What the token's header says.
        found: String,
        /// What the server is configured for.
        expected: String,
    },
    /// The signature does not verify with any configured key.
    #[error("bad signature: the token was not signed by a key this server trusts")]
    BadSignature,
    /// `exp` is in the past, beyond the leeway.
    #[error("token expired at {at} (UTC)")]
    Expired {
        /// When, RFC 3339.
        at: String,
    },
    /// `nbf` is in the future, beyond the leeway.
    #[error("token not valid before {at} (UTC)")]
    NotYetValid {
        /// When, RFC 3339.
        at: String,
    },
    /// `aud` does not name this server.
    #[error("token audience does not name this server (expected {expected})")]
    WrongAudience {
        /// The configured audience, or "no audience" when none is configured.
        expected: String,
    },
    /// `iss` is not the configured issuer.
    #[error("token issuer is not {expected}")]
    WrongIssuer {
        /// The configured issuer.
        expected: String,
    },
    /// A claim is missing or has the wrong type.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// The token id was revoked.
    #[error("token {jti} was revoked")]
    Revoked {
        /// The revoked token id.
        jti: String,
    },
    /// The device the token was issued to was revoked.
    #[error("device {device} was revoked")]
    DeviceRevoked {
        /// The revoked device.
        device: String,
    },
    /// The server cannot sign: it only holds public keys.
    #[error(
        "cannot issue tokens: this server verifies {0} with public keys only; configure a signing key (--jwt-signing-key)"
    )]
    CannotSign(String),
    /// A key or secret could not be read, created or parsed.
    #[error("key configuration: {0}")]
    Key(String),
    /// The revocation list could not be read; the token is refused rather than
    /// trusted (fail closed).
    #[error("cannot check revocations: {0}")]
    RevocationCheck(String),
}

impl AuthError {
    /// Whether the fault lies with the token (401) rather than with the server (500).
    pub fn is_token_fault(&self) -> bool {
        !matches!(
            self,
            AuthError::CannotSign(_) | AuthError::Key(_) | AuthError::RevocationCheck(_)
        )
    }

    /// A short, stable name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::WrongAlgorithm { .. } => "wrong_algorithm",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired { .. } => "expired",
            AuthError::NotYetValid { .. } => "not_yet_valid",
            AuthError::WrongAudience { .. } => "wrong_audience",
            AuthError::WrongIssuer { .. } => "wrong_issuer",
            AuthError::InvalidClaims(_) => "invalid_claims",
            AuthError::Revoked { .. } => "revoked",
            AuthError::DeviceRevoked { .. } => "device_revoked",
            AuthError::CannotSign(_) => "cannot_sign",
            AuthError::Key(_) => "key",
            AuthError::RevocationCheck(_) => "revocation_check",
        }
    }
}

/// Answers whether a token id or a device was revoked. The registry implements it over
/// SQLite; the check runs on every verification so that `dealersync-server revoke`
/// from another process takes effect on the next connection.
pub trait Revocations: Send + Sync {
    /// `Err(AuthError::Revoked | DeviceRevoked)` if either is revoked,
    /// `Err(AuthError::RevocationCheck)` if the list cannot be read.
    fn check(&self, jti: &str, device: Option<&str>) -> Result<(), AuthError>;
}

/// Which algorithm and keys the server trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyConfig {
    /// HS256 with the secret in `<data-dir>/jwt-secret`, generated on first start.
    Hs256Generated,
    /// RS256: PEM public keys (several during a key rotation) and optionally the PEM
    /// private key to issue tokens with.
    Rs256 {
        /// Public keys that verify tokens.
        public_keys: Vec<PathBuf>,
        /// Private key for `dealersync-server token`; without it the server only
        /// verifies.
        signing_key: Option<PathBuf>,
    },
    /// EdDSA (Ed25519): PEM public keys and optionally the PEM private key.
    EdDsa {
        /// Public keys that verify tokens.
        public_keys: Vec<PathBuf>,
        /// Private key for issuing.
        signing_key: Option<PathBuf>,
    },
}

/// Everything that decides whether a token is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Algorithm and keys.
    pub keys: KeyConfig,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// When set, `aud` is required and must name it; when unset, a token that carries
    /// an `aud` is refused (RFC 7519 §4.1.3: it is meant for someone else).
    pub audience: Option<String>,
    /// When set, `iss` is required and must equal it; put into issued tokens.
    pub issuer: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            keys: KeyConfig::Hs256Generated,
            leeway: Duration::from_secs(30),
            audience: None,
            issuer: None,
        }
    }
}

/// The command-line and environment options for [`AuthConfig`], to `#[command(flatten)]`
/// into `serve` and `token`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// Accepted token algorithm: HS256 (secret generated into the data dir), RS256 or
    /// EdDSA (public keys given with --jwt-public-key).
    #[arg(long, env = "DEALERSYNC_JWT_ALGORITHM", default_value = "HS256")]
    pub jwt_algorithm: String,
    /// PEM public key that verifies RS256/EdDSA tokens; repeat during a key rotation.
    #[arg(long, env = "DEALERSYNC_JWT_PUBLIC_KEY", value_delimiter = ',')]
    pub jwt_public_key: Vec<PathBuf>,
    /// PEM private key to issue RS256/EdDSA tokens with.
    #[arg(long, env = "DEALERSYNC_JWT_SIGNING_KEY")]
    pub jwt_signing_key: Option<PathBuf>,
    /// Clock skew tolerated on exp/nbf, in seconds.
    #[arg(long, env = "DEALERSYNC_JWT_LEEWAY", default_value_t = 30)]
    pub jwt_leeway: u64,
    /// Required audience (`aud`).
    #[arg(long, env = "DEALERSYNC_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Required issuer (`iss`); also written into issued tokens.
    #[arg(long, env = "DEALERSYNC_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
}

impl AuthArgs {
    /// The configuration these options describe.
    pub fn config(&self) -> Result<AuthConfig, AuthError> {
        let keys = match self.jwt_algorithm.to_ascii_uppercase().as_str() {
            "HS256" => {
                if !self.jwt_public_key.is_empty() {
                    return Err(AuthError::Key(
                        "--jwt-public-key needs --jwt-algorithm RS256 or EdDSA".into(),
                    ));
                }
                KeyConfig::Hs256Generated
            }
            "RS256" | "EDDSA" => {
                if self.jwt_public_key.is_empty() {
                    return Err(AuthError::Key(format!(
                        "{} needs at least one --jwt-public-key",
                        self.jwt_algorithm
                    )));
                }
                let public_keys = self.jwt_public_key.clone();
                let signing_key = self.jwt_signing_key.clone();
                if self.jwt_algorithm.eq_ignore_ascii_case("RS256") {
                    KeyConfig::Rs256 {
                        public_keys,
                        signing_key,
                    }
                } else {
                    KeyConfig::EdDsa {
                        public_keys,
                        signing_key,
                    }
                }
            }
            other => {
                return Err(AuthError::Key(format!(
                    "unsupported --jwt-algorithm {other}; use HS256, RS256 or EdDSA"
                )));
            }
        };
        Ok(AuthConfig {
            keys,
            leeway: Duration::from_secs(self.jwt_leeway),
            audience: self.jwt_audience.clone(),
            issuer: self.jwt_issuer.clone(),
        })
    }
}

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

/// Verifies tokens against the configured algorithm and keys, and issues them when it
/// holds a signing key.
pub struct Authenticator {
    algorithm: Algorithm,
    verifying_keys: Vec<DecodingKey>,
    signing_key: Option<EncodingKey>,
    validation: Validation,
    config: AuthConfig,
    revocations: Arc<dyn Revocations>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        f.debug_struct("Authenticator")
            .field("algorithm", &self.algorithm)
            .field("verifying_keys", &self.verifying_keys.len())
            .field("can_sign", &self.signing_key.is_some())
            .finish()
    }
}

impl Authenticator {
    /// Sets up from configuration. For HS256 the secret is read from
    /// `<data_dir>/jwt-secret`, and generated there (mode 0600) if it does not exist.
    pub fn open(
        data_dir: &Path,
        config: AuthConfig,
        revocations: Arc<dyn Revocations>,
    ) -> Result<Self, AuthError> {
        let (algorithm, verifying_keys, signing_key) = match &config.keys {
            KeyConfig::Hs256Generated => {
                let secret = load_or_create_secret(data_dir)?;
                (
                    Algorithm::HS256,
                    vec![DecodingKey::from_secret(&secret)],
                    Some(EncodingKey::from_secret(&secret)),
                )
            }
            KeyConfig::Rs256 {
                public_keys,
                signing_key,
            } => {
                let verify = read_keys(public_keys, DecodingKey::from_rsa_pem)?;
                let sign = signing_key
                    .as_deref()
                    .map(|p| read_key(p, EncodingKey::from_rsa_pem))
                    .transpose()?;
                (Algorithm::RS256, verify, sign)
            }
            KeyConfig::EdDsa {
                public_keys,
                signing_key,
            } => {
                let verify = read_keys(public_keys, DecodingKey::from_ed_pem)?;
                let sign = signing_key
                    .as_deref()
                    .map(|p| read_key(p, EncodingKey::from_ed_pem))
                    .transpose()?;
                (Algorithm::EdDSA, verify, sign)
            }
        };
        let mut validation = Validation::new(algorithm);
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
        Ok(Authenticator {
            algorithm,
            verifying_keys,
            signing_key,
            validation,
            config,
            revocations,
        })
    }

    /// The one accepted algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
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
        let expected = algorithm_name(self.algorithm);
        if found != expected {
            return Err(AuthError::WrongAlgorithm {
                found: found.to_string(),
                expected: expected.to_string(),
            });
        }
        let mut last = AuthError::BadSignature;
        let mut claims = None;
        for key in &self.verifying_keys {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {
                    last = AuthError::BadSignature;
                }
                Err(e) => {
                    last = self.explain(e.kind(), &payload);
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

    fn explain(&self, kind: &ErrorKind, payload: &serde_json::Value) -> AuthError {
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
                expected: algorithm_name(self.algorithm).into(),
            },
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
                AuthError::Malformed(kind_text(kind))
            }
            other => AuthError::Malformed(kind_text(other)),
        }
    }

    /// Signs a new token with a fresh `jti`. Recording it (for the admin API) is the
    /// caller's business: see `Registry::record_issued`.
    pub fn issue(&self, req: &TokenRequest) -> Result<IssuedToken, AuthError> {
        let key = self
            .signing_key
            .as_ref()
            .ok_or_else(|| AuthError::CannotSign(algorithm_name(self.algorithm).into()))?;
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
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)
            .map_err(|e| AuthError::Key(format!("signing failed: {e}")))?;
        Ok(IssuedToken { token, claims })
    }
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

fn read_key<K>(
    path: &Path,
    parse: impl Fn(&[u8]) -> jsonwebtoken::errors::Result<K>,
) -> Result<K, AuthError> {
    let pem = std::fs::read(path)
        .map_err(|e| AuthError::Key(format!("cannot read {}: {e}", path.display())))?;
    parse(&pem).map_err(|e| AuthError::Key(format!("{} is not a usable key: {e}", path.display())))
}

fn read_keys<K>(
    paths: &[PathBuf],
    parse: impl Fn(&[u8]) -> jsonwebtoken::errors::Result<K> + Copy,
) -> Result<Vec<K>, AuthError> {
    paths.iter().map(|p| read_key(p, parse)).collect()
}

/// Reads the HS256 secret, creating it with 32 random bytes (mode 0600) on first start.
pub fn load_or_create_secret(data_dir: &Path) -> Result<Vec<u8>, AuthError> {
    let path = data_dir.join(SECRET_FILE);
    let key_err = |what: &str, e: std::io::Error| {
        AuthError::Key(format!("cannot {what} {}: {e}", path.display()))
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = hex::decode(text.trim())
                .map_err(|e| AuthError::Key(format!("{} is not hex: {e}", path.display())))?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(AuthError::Key(format!(
                    "{} holds {} bytes; HS256 needs at least {MIN_SECRET_BYTES}",
                    path.display(),
                    secret.len()
                )));
            }
            warn_if_readable_by_others(&path);
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(|e| key_err("create the directory of", e))?;
            let mut secret = vec![0u8; MIN_SECRET_BYTES];
            // ThreadRng is a CSPRNG reseeded from the OS.
            rand::rng().fill_bytes(&mut secret);
            write_private(&path, hex::encode(&secret).as_bytes())
                .map_err(|e| key_err("write", e))?;
            tracing::info!(path = %path.display(), "generated a new HS256 token secret");
            Ok(secret)
        }
        Err(e) => Err(key_err("read", e)),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // create_new: two servers starting at once must not overwrite each other's secret.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the token secret is readable by other users; chmod 600 it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

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
    /// (`crate::signin::check_same_origin`).
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

/// Parses a lifetime such as `30d`, `12h`, `15m`, `90s`, `2w` (a bare number is seconds).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid lifetime {s:?}: expected e.g. 30d, 12h, 15m, 90s"))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "invalid lifetime unit {other:?}: use s, m, h, d or w"
            ));
        }
    };
    if n == 0 {
        return Err("a token lifetime must be more than zero".into());
    }
    match n.checked_mul(unit_secs) {
        Some(secs) if secs <= MAX_TTL.as_secs() => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "lifetime {s:?} is too long: a token lives at most {} days; issue a new one \
             when it runs out",
            MAX_TTL.as_secs() / 86_400
        )),
    }
}

/// The longest token lifetime `token --ttl` and the admin API accept: 366 days. A
/// lost device's token must run out some day even if nobody revokes it.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 86_400);

/// How long until `claims` expire, zero if they already have: a relay closes a live
/// connection at that moment with an `error` saying the token expired.
pub fn time_left(claims: &Claims) -> Duration {
    Duration::from_secs(claims.exp.saturating_sub(now_secs()))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_parses_units_and_rejects_nonsense() {
        assert_eq!(parse_ttl("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_ttl("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse_ttl("366d").unwrap(), MAX_TTL);
        for too_long in ["367d", "5000w", "31622401"] {
            let e = parse_ttl(too_long).unwrap_err();
            assert!(e.contains("at most 366 days"), "{too_long}: {e}");
        }
        for bad in ["", "d", "3y", "0d", "-1h", "1.5h"] {
            assert!(parse_ttl(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn redacted_hides_only_the_token() {
        let uri: Uri = "/sync?a=1&token=eyJ.abc.def&b=2".parse().unwrap();
        assert_eq!(redacted(&uri), "/sync?a=1&token=***&b=2");
        let plain: Uri = "/api/sites".parse().unwrap();
        assert_eq!(redacted(&plain), "/api/sites");
    }

    #[test]
    fn split_token_explains_shape_errors() {
        assert!(matches!(split_token("a.b"), Err(AuthError::Malformed(m)) if m.contains("3")));
        assert!(
            matches!(split_token("!!.e30.x"), Err(AuthError::Malformed(m)) if m.contains("header"))
        );
    }
}
