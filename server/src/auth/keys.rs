//! The relay's own signing keys: Ed25519 key pairs with key ids, kept in
//! `<data-dir>/jwt-keys.json` (mode 0600), generated on first start and rotated by
//! `dealersync-server keys rotate|retire`.
//!
//! One key signs (the newest one rotated in); every key in the file verifies, so the
//! tokens an older key signed stay good until an operator retires it. A key id (`kid`)
//! is the key's RFC 7638 JWK thumbprint: the same key has the same id everywhere, and
//! a downstream relay that caches the public keys picks the right one by the token's
//! header. The public halves are published as a JWK set (RFC 7517, RFC 8037) at
//! `/.well-known/jwks.json`; the private halves never leave this file.
//!
//! The file is replaced atomically (a temporary file renamed over it), so a running
//! relay that rereads it every second (`Authenticator::reload_keys`) sees either the
//! old set or the new one.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::secret::{warn_if_readable_by_others, write_private};
use super::{AuthError, SECRET_FILE};

/// The file in the data directory holding the managed Ed25519 keys.
pub const KEYS_FILE: &str = "jwt-keys.json";

/// The id `keys list` shows, and `keys retire` takes, for the HS256 secret an earlier
/// release left in `jwt-secret` (its tokens carry no key id).
pub const LEGACY_HS256_KID: &str = "hs256";

/// The shortest key id prefix `keys retire` accepts, so that a typo cannot match.
pub const MIN_KID_PREFIX: usize = 8;

/// The file's layout version.
const FILE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyFile {
    version: u32,
    keys: Vec<StoredKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredKey {
    kid: String,
    /// UTC milliseconds.
    created_at_ms: i64,
    /// The 32-byte Ed25519 seed, base64url.
    seed: String,
    /// Whether this key signs new tokens (exactly one does).
    signing: bool,
}

/// One managed key pair as loaded.
#[derive(Clone)]
pub struct ManagedKey {
    /// The key id (RFC 7638 thumbprint).
    pub kid: String,
    /// When it was generated, UTC milliseconds.
    pub created_at_ms: i64,
    /// Whether it signs new tokens.
    pub signing: bool,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for ManagedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half.
        f.debug_struct("ManagedKey")
            .field("kid", &self.kid)
            .field("created_at_ms", &self.created_at_ms)
            .field("signing", &self.signing)
            .finish()
    }
}

impl ManagedKey {
    fn generate(now_ms: i64) -> ManagedKey {
        let mut seed = [0u8; 32];
        // ThreadRng is a CSPRNG reseeded from the OS.
        rand::rng().fill_bytes(&mut seed);
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        ManagedKey {
            kid: thumbprint(&key.verifying_key().to_bytes()),
            created_at_ms: now_ms,
            signing: true,
            key,
        }
    }

    fn from_stored(s: &StoredKey, path: &Path) -> Result<ManagedKey, AuthError> {
        let bad = |what: &str| AuthError::Key(format!("{}: key {}: {what}", path.display(), s.kid));
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&s.seed)
            .map_err(|_| bad("the seed is not base64url"))?
            .try_into()
            .map_err(|_| bad("the seed is not 32 bytes"))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        if thumbprint(&key.verifying_key().to_bytes()) != s.kid {
            return Err(bad("the key id is not the key's thumbprint"));
        }
        Ok(ManagedKey {
            kid: s.kid.clone(),
            created_at_ms: s.created_at_ms,
            signing: s.signing,
            key,
        })
    }

    fn stored(&self) -> StoredKey {
        StoredKey {
            kid: self.kid.clone(),
            created_at_ms: self.created_at_ms,
            seed: URL_SAFE_NO_PAD.encode(self.key.to_bytes()),
            signing: self.signing,
        }
    }

    /// The public half as a JWK.
    pub fn public_jwk(&self) -> PublicJwk {
        PublicJwk::ed25519(&self.kid, &self.key.verifying_key().to_bytes())
    }

    /// The key that signs tokens (PKCS#8, as jsonwebtoken takes it).
    pub fn encoding_key(&self) -> Result<EncodingKey, AuthError> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| AuthError::Key(format!("cannot encode key {}: {e}", self.kid)))?;
        Ok(EncodingKey::from_ed_der(der.as_bytes()))
    }

    /// The key that verifies tokens.
    pub(crate) fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_der(&self.key.verifying_key().to_bytes())
    }
}

/// A public Ed25519 key as a JSON Web Key (RFC 8037 §2), the entries of
/// `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// Key type: `OKP`.
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// The key id tokens name in their header.
    pub kid: String,
    /// `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl PublicJwk {
    /// The JWK of an Ed25519 public key.
    pub fn ed25519(kid: &str, public: &[u8; 32]) -> PublicJwk {
        PublicJwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(public),
            kid: kid.into(),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    /// The verifying key, if this is a usable Ed25519 signature key; the reason
    /// otherwise (another key type, a key for encryption, a wrong length).
    pub fn decoding_key(&self) -> Result<DecodingKey, AuthError> {
        let bad = |why: &str| AuthError::Key(format!("JWK {:?}: {why}", self.kid));
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(bad("not an Ed25519 key (kty OKP, crv Ed25519)"));
        }
        if self.alg.as_deref().is_some_and(|a| a != "EdDSA") {
            return Err(bad("alg is not EdDSA"));
        }
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(bad("not a signature key"));
        }
        if self.kid.trim().is_empty() {
            return Err(bad("no key id"));
        }
        let x = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| bad("x is not base64url"))?;
        let x: [u8; 32] = x.try_into().map_err(|_| bad("x is not 32 bytes"))?;
        // jsonwebtoken slices the first 32 bytes and would panic on fewer; checked
        // above. A point that is not on the curve is refused here rather than at the
        // first token.
        ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| bad("x is not a valid point"))?;
        Ok(DecodingKey::from_ed_der(&x))
    }
}

/// A JWK set (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<PublicJwk>,
}

/// The RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over the required
/// members in lexicographic order, base64url.
pub fn thumbprint(public: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

fn keys_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEYS_FILE)
}

/// The managed keys, `None` if the data directory has none yet.
pub fn load_managed(data_dir: &Path) -> Result<Option<Vec<ManagedKey>>, AuthError> {
    let path = keys_path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AuthError::Key(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    parse_managed(&bytes, &path).map(Some)
}

/// Parses the key file's bytes (as read by the caller, who may compare them with the
/// last ones it loaded).
pub(crate) fn parse_managed(bytes: &[u8], path: &Path) -> Result<Vec<ManagedKey>, AuthError> {
    let file: KeyFile = serde_json::from_slice(bytes)
        .map_err(|e| AuthError::Key(format!("{} is not a key file: {e}", path.display())))?;
    if file.version != FILE_VERSION {
        return Err(AuthError::Key(format!(
            "{} has layout version {}; this release reads version {FILE_VERSION}",
            path.display(),
            file.version
        )));
    }
    let keys = file
        .keys
        .iter()
        .map(|k| ManagedKey::from_stored(k, path))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.iter().filter(|k| k.signing).count() != 1 {
        return Err(AuthError::Key(format!(
            "{} must have exactly one signing key",
            path.display()
        )));
    }
    warn_if_readable_by_others(path);
    Ok(keys)
}

/// The managed keys, generating the first one on first start. A data directory
/// of an earlier release (with only `jwt-secret`) gets its first Ed25519 key here: from
/// then on the relay signs with it.
pub fn load_or_create_managed(data_dir: &Path) -> Result<Vec<ManagedKey>, AuthError> {
    if let Some(keys) = load_managed(data_dir)? {
        return Ok(keys);
    }
    let path = keys_path(data_dir);
    std::fs::create_dir_all(data_dir)
        .map_err(|e| AuthError::Key(format!("cannot create {}: {e}", data_dir.display())))?;
    let key = ManagedKey::generate(dealersync_core::time::now_ms());
    let bytes = file_bytes(std::slice::from_ref(&key))?;
    match write_private(&path, &bytes) {
        Ok(()) => {
            tracing::info!(path = %path.display(), kid = %key.kid, "generated a new Ed25519 token signing key");
            Ok(vec![key])
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_managed(data_dir)?
            .ok_or_else(|| AuthError::Key(format!("{} vanished", path.display()))),
        Err(e) => Err(AuthError::Key(format!(
            "cannot write {}: {e}",
            path.display()
        ))),
    }
}

fn file_bytes(keys: &[ManagedKey]) -> Result<Vec<u8>, AuthError> {
    let file = KeyFile {
        version: FILE_VERSION,
        keys: keys.iter().map(ManagedKey::stored).collect(),
    };
    serde_json::to_vec_pretty(&file).map_err(|e| AuthError::Key(e.to_string()))
}

/// Replaces the key file atomically: a private temporary file, fsynced, renamed over.
fn replace_file(data_dir: &Path, keys: &[ManagedKey]) -> Result<(), AuthError> {
    let path = keys_path(data_dir);
    let tmp = data_dir.join(format!(
        "{KEYS_FILE}.{}-{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let io = |what: &str, p: &Path, e: std::io::Error| {
        AuthError::Key(format!("cannot {what} {}: {e}", p.display()))
    };
    write_private(&tmp, &file_bytes(keys)?).map_err(|e| io("write", &tmp, e))?;
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("replace", &path, e));
    }
    // The rename is durable once the directory is.
    if let Ok(dir) = std::fs::File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// One line of `keys list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListing {
    /// The key id (`hs256` for the legacy secret).
    pub kid: String,
    /// `EdDSA` or `HS256`.
    pub algorithm: &'static str,
    /// When it was generated, if known.
    pub created_at_ms: Option<i64>,
    /// Whether it signs new tokens (otherwise it only verifies).
    pub signing: bool,
}

/// The keys this data directory verifies with, the signing one first.
pub fn list(data_dir: &Path) -> Result<Vec<KeyListing>, AuthError> {
    let mut out: Vec<KeyListing> = load_managed(data_dir)?
        .unwrap_or_default()
        .into_iter()
        .map(|k| KeyListing {
            kid: k.kid,
            algorithm: "EdDSA",
            created_at_ms: Some(k.created_at_ms),
            signing: k.signing,
        })
        .collect();
    out.sort_by_key(|k| (!k.signing, std::cmp::Reverse(k.created_at_ms)));
    if data_dir.join(SECRET_FILE).exists() {
        out.push(KeyListing {
            kid: LEGACY_HS256_KID.into(),
            algorithm: "HS256",
            created_at_ms: None,
            signing: false,
        });
    }
    Ok(out)
}

/// Generates a new signing key; the previous ones keep verifying. Returns the new
/// key's id.
pub fn rotate(data_dir: &Path) -> Result<String, AuthError> {
    let mut keys = load_or_create_managed(data_dir)?;
    for k in &mut keys {
        k.signing = false;
    }
    let key = ManagedKey::generate(dealersync_core::time::now_ms());
    let kid = key.kid.clone();
    keys.push(key);
    replace_file(data_dir, &keys)?;
    tracing::info!(%kid, "rotated the token signing key");
    Ok(kid)
}

/// Retires a key: tokens it signed stop verifying (at the running relay within a
/// second, at downstream relays at their next refresh). `kid` may be a unique prefix
/// of at least [`MIN_KID_PREFIX`] characters, or `hs256` for the legacy secret (the
/// `jwt-secret` file is deleted). The signing key cannot be retired: rotate first.
/// Returns the full id retired.
pub fn retire(data_dir: &Path, kid: &str) -> Result<String, AuthError> {
    let kid = kid.trim();
    if kid == LEGACY_HS256_KID {
        let path = data_dir.join(SECRET_FILE);
        return match std::fs::remove_file(&path) {
            Ok(()) => Ok(LEGACY_HS256_KID.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AuthError::Key(
                "there is no HS256 secret (jwt-secret) to retire".into(),
            )),
            Err(e) => Err(AuthError::Key(format!(
                "cannot delete {}: {e}",
                path.display()
            ))),
        };
    }
    if kid.len() < MIN_KID_PREFIX {
        return Err(AuthError::Key(format!(
            "give the key id, or at least its first {MIN_KID_PREFIX} characters (see `keys list`)"
        )));
    }
    let mut keys = load_managed(data_dir)?.unwrap_or_default();
    let matching: Vec<usize> = (0..keys.len())
        .filter(|&i| keys[i].kid.starts_with(kid))
        .collect();
    let i = match matching.as_slice() {
        [i] => *i,
        [] => return Err(AuthError::Key(format!("no key {kid:?} (see `keys list`)"))),
        _ => {
            return Err(AuthError::Key(format!(
                "{kid:?} names {} keys; give more of the id",
                matching.len()
            )));
        }
    };
    if keys[i].signing {
        return Err(AuthError::Key(format!(
            "key {} signs new tokens; run `keys rotate` first, then retire it",
            keys[i].kid
        )));
    }
    let retired = keys.remove(i).kid;
    replace_file(data_dir, &keys)?;
    tracing::info!(kid = %retired, "retired a token signing key");
    Ok(retired)
}

/// `dealersync-server keys ...`: the managed signing keys of a data directory. Works
/// while the relay runs: it rereads the key file within a second.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// The keys that verify tokens, the signing one first.
    List,
    /// Generates a new signing key; the old ones keep verifying until retired.
    Rotate,
    /// Stops trusting a key (its id, a unique prefix, or `hs256` for the secret of an
    /// earlier release): the tokens it signed are refused from then on.
    Retire {
        /// The key id (see `keys list`).
        kid: String,
    },
}

impl KeysCommand {
    /// Runs the command on `data_dir`; returns what to print.
    pub fn run(&self, data_dir: &Path) -> Result<String, AuthError> {
        match self {
            KeysCommand::List => {
                let mut out = String::new();
                for k in list(data_dir)? {
                    let created = k
                        .created_at_ms
                        .map(|ms| super::lifetime::rfc3339(ms / 1000))
                        .unwrap_or_else(|| "-".into());
                    let status = if k.signing { "signing" } else { "verifying" };
                    out.push_str(&format!(
                        "{}\t{}\t{status}\t{created}\n",
                        k.kid, k.algorithm
                    ));
                }
                Ok(out)
            }
            KeysCommand::Rotate => Ok(format!("{}\n", rotate(data_dir)?)),
            KeysCommand::Retire { kid } => Ok(format!("retired {}\n", retire(data_dir, kid)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_id_is_the_rfc_7638_thumbprint() {
        // RFC 8037 Appendix A.3: the thumbprint of the example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            thumbprint(&x.try_into().unwrap()),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rotate_keeps_old_keys_verifying_and_retire_refuses_the_signing_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_managed(dir.path()).unwrap();
        assert_eq!(first.len(), 1);
        assert!(first[0].signing);
        let again = load_or_create_managed(dir.path()).unwrap();
        assert_eq!(again[0].kid, first[0].kid, "created once");

        let new = rotate(dir.path()).unwrap();
        let keys = load_managed(dir.path()).unwrap().unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().any(|k| k.kid == new && k.signing));
        assert!(keys.iter().any(|k| k.kid == first[0].kid && !k.signing));

        let e = retire(dir.path(), &new).unwrap_err();
        assert!(e.to_string().contains("keys rotate"), "{e}");
        assert!(retire(dir.path(), "abc").is_err(), "too short a prefix");
        assert_eq!(
            retire(dir.path(), &first[0].kid[..10]).unwrap(),
            first[0].kid
        );
        let keys = load_managed(dir.path()).unwrap().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid, new);
        assert!(
            retire(dir.path(), LEGACY_HS256_KID).is_err(),
            "no secret here"
        );
    }

    #[test]
    fn a_jwk_that_is_not_an_ed25519_signature_key_is_refused() {
        let good = PublicJwk::ed25519("k", &[7u8; 32]);
        let short = PublicJwk {
            x: URL_SAFE_NO_PAD.encode([1u8; 16]),
            ..good.clone()
        };
        assert!(short.decoding_key().is_err());
        let hmac = PublicJwk {
            kty: "oct".into(),
            ..good.clone()
        };
        assert!(hmac.decoding_key().is_err());
        let enc = PublicJwk {
            use_: Some("enc".into()),
            ..good.clone()
        };
        assert!(enc.decoding_key().is_err());
    }
}
