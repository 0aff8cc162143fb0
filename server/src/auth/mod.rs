//! Tokens: verifying the JWT a peer presents, issuing tokens for the CLI, the keys
//! that sign them, and finding the token in a request.
//!
//! By default the relay signs with Ed25519 keys it generates into its data directory
//! and rotates on demand ([`keys`]); every token names its key in the header's `kid`,
//! and the public keys are published at `/.well-known/jwks.json`, so that a downstream
//! relay can verify the tokens without being able to forge them. A data directory of
//! an earlier release keeps verifying the HS256 tokens its `jwt-secret` signed until
//! the secret is retired. Alternatively one algorithm is fixed by configuration: HS256
//! with a generated secret, or RS256 / EdDSA with an identity provider's public keys
//! read from files. A token whose header names an algorithm the relay has no key for,
//! `none` included, is rejected before its signature is looked at. `exp` is required;
//! `nbf`, `aud` and `iss` are checked when present or configured; revoked token ids
//! and devices are rejected (see [`Revocations`]).
//!
//! Where the token travels (see [`token_from_request`]): `Authorization: Bearer`, the
//! `?token=` query (the automerge-repo browser adapter opens `new WebSocket(url)` and
//! cannot set headers), or a `Sec-WebSocket-Protocol` entry `bearer.<jwt>` offered next
//! to [`SUBPROTOCOL`].

mod authenticator;
mod config;
pub mod keys;
mod lifetime;
mod request;
mod secret;

pub use authenticator::{Authenticator, IssuedToken, TokenRequest, algorithm_name};
pub use config::{AuthArgs, AuthConfig, KeyConfig};
pub use keys::{JwkSet, PublicJwk};
pub use lifetime::{MAX_TTL, now_secs, parse_ttl, time_left};
pub use request::{SESSION_COOKIE, TokenPlace, redacted, session_cookie, token_from_request};
pub use secret::{load_or_create_secret, read_secret};

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
    /// The header's `kid` names a key this relay does not know: retired, or of
    /// another network (or, at a downstream relay, not fetched from upstream yet).
    #[error(
        "unknown key: the token was signed with key {kid}, which this server does not trust (retired, or another network's)"
    )]
    UnknownKey {
        /// The key id the token names (clipped).
        kid: String,
    },
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
        "cannot issue tokens: this server verifies {0} with public keys only; configure a signing key (--jwt-signing-key), or ask the relay that issued the token"
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
            AuthError::UnknownKey { .. } => "unknown_key",
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
