//! Which algorithm and keys the server trusts, from flags, environment or a file.

use std::path::PathBuf;
use std::time::Duration;

use super::AuthError;

/// Which algorithm and keys the server trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyConfig {
    /// The default: Ed25519 signing keys with key ids, generated and rotated in the
    /// data directory (`jwt-keys.json`, see [`super::keys`]) and published at
    /// `/.well-known/jwks.json`. A `jwt-secret` left by an earlier release keeps
    /// verifying the HS256 tokens it signed until `keys retire hs256`; no new HS256
    /// token is issued.
    Managed,
    /// HS256 only, with the secret in `<data-dir>/jwt-secret`, generated on first
    /// start (`--jwt-algorithm HS256`). A downstream relay cannot verify these tokens
    /// without the power to forge them.
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
    /// EdDSA (Ed25519) from an identity provider: PEM public keys and optionally the
    /// PEM private key.
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
            keys: KeyConfig::Managed,
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
    /// Accepted token algorithm: EdDSA (keys generated into the data dir, or an
    /// identity provider's given with --jwt-public-key), RS256 (--jwt-public-key), or
    /// HS256 (legacy: a shared secret generated into the data dir).
    #[arg(long, env = "DEALERSYNC_JWT_ALGORITHM", default_value = "EdDSA")]
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
        let algorithm = self.jwt_algorithm.to_ascii_uppercase();
        let keys = match algorithm.as_str() {
            "HS256" => {
                if !self.jwt_public_key.is_empty() || self.jwt_signing_key.is_some() {
                    return Err(AuthError::Key(
                        "--jwt-public-key and --jwt-signing-key need --jwt-algorithm RS256 or EdDSA"
                            .into(),
                    ));
                }
                KeyConfig::Hs256Generated
            }
            // EdDSA without keys of its own: the relay's managed keys.
            "EDDSA" if self.jwt_public_key.is_empty() && self.jwt_signing_key.is_none() => {
                KeyConfig::Managed
            }
            "RS256" | "EDDSA" => {
                if self.jwt_public_key.is_empty() {
                    return Err(AuthError::Key(format!(
                        "{} with keys of its own needs at least one --jwt-public-key (EdDSA without \
                         --jwt-public-key and --jwt-signing-key uses the relay's own keys)",
                        self.jwt_algorithm
                    )));
                }
                let public_keys = self.jwt_public_key.clone();
                let signing_key = self.jwt_signing_key.clone();
                if algorithm == "RS256" {
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
                    "unsupported --jwt-algorithm {other}; use EdDSA, RS256 or HS256"
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
