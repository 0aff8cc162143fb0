//! Token verification: every way a token can be wrong is refused with a reason, and the
//! token is found in each of the three places a client may put it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Uri, header};
use base64::Engine as _;
use dealersync_core::access::{Audience, Claims, Role};
use dealersync_server::auth::{
    AuthArgs, AuthConfig, AuthError, Authenticator, KeyConfig, SECRET_FILE, TokenPlace,
    TokenRequest, keys, load_or_create_secret, now_secs, token_from_request,
};
use dealersync_server::registry::{Registry, Revocation};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    registry: Arc<Registry>,
    auth: Authenticator,
}

/// The legacy HS256-only configuration (`--jwt-algorithm HS256`): its secret is what
/// these tests forge tokens with.
fn hs256_config() -> AuthConfig {
    AuthConfig {
        keys: KeyConfig::Hs256Generated,
        ..AuthConfig::default()
    }
}

fn hs256() -> Fixture {
    with_config(hs256_config())
}

fn with_config(config: AuthConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let registry = Arc::new(Registry::open_in(&data).unwrap());
    let auth = Authenticator::open(&data, config, registry.clone()).unwrap();
    Fixture {
        _dir: dir,
        data,
        registry,
        auth,
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn request(role: Role) -> TokenRequest {
    TokenRequest {
        sub: "li.na".into(),
        role,
        site: "dc-north".into(),
        device: Some("tablet-3".into()),
        ttl: Duration::from_secs(3600),
    }
}

fn claims(exp: u64) -> Claims {
    Claims {
        sub: "li.na".into(),
        role: Role::Consultant,
        site: "dc-north".into(),
        device: None,
        exp,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: None,
        nbf: None,
        iss: None,
        aud: None,
    }
}

fn secret(f: &Fixture) -> Vec<u8> {
    load_or_create_secret(&f.data).unwrap()
}

fn sign_hs(f: &Fixture, alg: Algorithm, c: &impl serde::Serialize) -> String {
    jsonwebtoken::encode(&Header::new(alg), c, &EncodingKey::from_secret(&secret(f))).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn issued_token_verifies_with_its_claims() {
    let f = hs256();
    let issued = f.auth.issue(&request(Role::Manager)).unwrap();
    let got = f.auth.verify(&issued.token).unwrap();
    assert_eq!(got, issued.claims);
    assert_eq!(got.role, Role::Manager);
    assert!(got.exp >= now_secs() + 3590);
    let other = f.auth.issue(&request(Role::Manager)).unwrap();
    assert_ne!(other.claims.jti, issued.claims.jti, "jti must be fresh");
}

#[test]
fn secret_is_generated_once_with_mode_0600() {
    let f = hs256();
    let path = f.data.join(SECRET_FILE);
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(hex::decode(first.trim()).unwrap().len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // A restart reads the same secret: tokens survive it.
    let token = f.auth.issue(&request(Role::Consultant)).unwrap().token;
    let again = Authenticator::open(&f.data, hs256_config(), f.registry.clone()).unwrap();
    again.verify(&token).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
}

#[test]
fn a_short_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SECRET_FILE), hex::encode([7u8; 16])).unwrap();
    let err = load_or_create_secret(dir.path()).unwrap_err();
    assert!(err.to_string().contains("at least 32"), "{err}");
}

#[test]
fn tampered_signature_and_payload_are_refused() {
    let f = hs256();
    let token = f.auth.issue(&request(Role::Consultant)).unwrap().token;
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    // Change the first signature character (all six of its bits are signature bits,
    // unlike the last one's).
    let sig = parts[2].clone();
    let first = sig.chars().next().unwrap();
    let swapped = if first == 'A' { 'B' } else { 'A' };
    parts[2] = format!("{swapped}{}", &sig[1..]);
    assert_eq!(
        f.auth.verify(&parts.join(".")),
        Err(AuthError::BadSignature)
    );

    // A payload promoted to admin with the original signature.
    let mut c: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    c["role"] = "admin".into();
    let forged = format!(
        "{}.{}.{}",
        token.split('.').next().unwrap(),
        b64(&serde_json::to_vec(&c).unwrap()),
        token.split('.').nth(2).unwrap()
    );
    assert_eq!(f.auth.verify(&forged), Err(AuthError::BadSignature));

    // Signed with another secret.
    let foreign = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(now_secs() + 600),
        &EncodingKey::from_secret(&[9u8; 32]),
    )
    .unwrap();
    assert_eq!(f.auth.verify(&foreign), Err(AuthError::BadSignature));
}

#[test]
fn another_algorithm_is_refused_even_with_the_right_secret() {
    let f = hs256();
    let token = sign_hs(&f, Algorithm::HS512, &claims(now_secs() + 600));
    let err = f.auth.verify(&token).unwrap_err();
    assert_eq!(
        err,
        AuthError::WrongAlgorithm {
            found: "HS512".into(),
            expected: "HS256".into()
        }
    );
    assert!(err.to_string().contains("HS512"), "{err}");

    // An RS256 token presented to an HS256 server.
    let rs = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(now_secs() + 600),
        &EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa-private.pem")).unwrap()).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        f.auth.verify(&rs),
        Err(AuthError::WrongAlgorithm { found, .. }) if found == "RS256"
    ));
}

#[test]
fn alg_none_is_refused() {
    let f = hs256();
    let body = b64(&serde_json::to_vec(&claims(now_secs() + 600)).unwrap());
    for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None"}"#] {
        let h = b64(header.as_bytes());
        for token in [format!("{h}.{body}."), format!("{h}.{body}.c2ln")] {
            let err = f.auth.verify(&token).unwrap_err();
            assert!(
                matches!(&err, AuthError::WrongAlgorithm { found, .. } if found.eq_ignore_ascii_case("none")),
                "{token}: {err:?}"
            );
        }
    }
}

#[test]
fn expired_token_says_when() {
    let f = hs256();
    let exp = now_secs() - 3600;
    let token = sign_hs(&f, Algorithm::HS256, &claims(exp));
    let err = f.auth.verify(&token).unwrap_err();
    let want = chrono::DateTime::from_timestamp(exp as i64, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(err, AuthError::Expired { at: want.clone() });
    assert!(err.to_string().contains(&want), "{err}");
}

#[test]
fn leeway_tolerates_small_skew_only() {
    let f = with_config(AuthConfig {
        leeway: Duration::from_secs(120),
        ..hs256_config()
    });
    let just_expired = sign_hs(&f, Algorithm::HS256, &claims(now_secs() - 60));
    f.auth.verify(&just_expired).unwrap();
    let long_expired = sign_hs(&f, Algorithm::HS256, &claims(now_secs() - 600));
    assert!(matches!(
        f.auth.verify(&long_expired),
        Err(AuthError::Expired { .. })
    ));
}

#[test]
fn missing_exp_is_refused() {
    let f = hs256();
    let mut c = serde_json::to_value(claims(0)).unwrap();
    c.as_object_mut().unwrap().remove("exp");
    let token = sign_hs(&f, Algorithm::HS256, &c);
    let err = f.auth.verify(&token).unwrap_err();
    assert!(
        matches!(&err, AuthError::InvalidClaims(m) if m.contains("exp")),
        "{err:?}"
    );
}

#[test]
fn not_yet_valid_token_is_refused() {
    let f = hs256();
    let mut c = claims(now_secs() + 7200);
    c.nbf = Some(now_secs() + 3600);
    let token = sign_hs(&f, Algorithm::HS256, &c);
    assert!(matches!(
        f.auth.verify(&token),
        Err(AuthError::NotYetValid { .. })
    ));
    c.nbf = Some(now_secs() - 10);
    f.auth.verify(&sign_hs(&f, Algorithm::HS256, &c)).unwrap();
}

#[test]
fn revoked_jti_and_device_are_refused() {
    let f = hs256();
    let a = f.auth.issue(&request(Role::Consultant)).unwrap();
    let mut other_device = request(Role::Consultant);
    other_device.device = Some("phone-9".into());
    let b = f.auth.issue(&other_device).unwrap();
    f.auth.verify(&a.token).unwrap();

    f.registry
        .revoke(&Revocation::Token(a.claims.jti.clone()))
        .unwrap();
    assert_eq!(
        f.auth.verify(&a.token),
        Err(AuthError::Revoked {
            jti: a.claims.jti.clone()
        })
    );
    f.auth.verify(&b.token).unwrap();

    f.registry
        .revoke(&Revocation::Device("phone-9".into()))
        .unwrap();
    assert_eq!(
        f.auth.verify(&b.token),
        Err(AuthError::DeviceRevoked {
            device: "phone-9".into()
        })
    );
}

#[test]
fn revocation_from_another_process_takes_effect() {
    let f = hs256();
    let a = f.auth.issue(&request(Role::Consultant)).unwrap();
    // A second registry on the same file, as `dealersync-server revoke` opens it.
    let cli = Registry::open_in(&f.data).unwrap();
    cli.revoke(&Revocation::Token(a.claims.jti.clone()))
        .unwrap();
    assert!(matches!(
        f.auth.verify(&a.token),
        Err(AuthError::Revoked { .. })
    ));
}

#[test]
fn missing_and_malformed_tokens_are_refused() {
    let f = hs256();
    assert_eq!(f.auth.verify(""), Err(AuthError::Missing));
    assert!(matches!(
        f.auth.verify("not-a-jwt"),
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        f.auth.verify("a.b.c"),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn claims_without_role_or_with_unknown_role_are_refused() {
    let f = hs256();
    let mut c = serde_json::to_value(claims(now_secs() + 600)).unwrap();
    c["role"] = "root".into();
    let err = f
        .auth
        .verify(&sign_hs(&f, Algorithm::HS256, &c))
        .unwrap_err();
    assert!(matches!(err, AuthError::InvalidClaims(_)), "{err:?}");
    c.as_object_mut().unwrap().remove("role");
    assert!(matches!(
        f.auth.verify(&sign_hs(&f, Algorithm::HS256, &c)),
        Err(AuthError::InvalidClaims(_))
    ));
}

#[test]
fn audience_and_issuer_are_checked() {
    let f = with_config(AuthConfig {
        audience: Some("dealersync".into()),
        issuer: Some("https://id.example".into()),
        ..hs256_config()
    });
    // Issued tokens carry both and pass.
    let ok = f.auth.issue(&request(Role::Consultant)).unwrap();
    assert_eq!(ok.claims.aud, Some(Audience::One("dealersync".into())));
    f.auth.verify(&ok.token).unwrap();

    let mut c = ok.claims.clone();
    c.aud = Some(Audience::One("someone-else".into()));
    assert!(matches!(
        f.auth.verify(&sign_hs(&f, Algorithm::HS256, &c)),
        Err(AuthError::WrongAudience { .. })
    ));
    // An identity provider's array audience that names this server passes.
    let mut c = ok.claims.clone();
    c.aud = Some(Audience::Many(vec!["reports".into(), "dealersync".into()]));
    f.auth.verify(&sign_hs(&f, Algorithm::HS256, &c)).unwrap();
    let mut c = ok.claims.clone();
    c.iss = Some("https://evil.example".into());
    assert!(matches!(
        f.auth.verify(&sign_hs(&f, Algorithm::HS256, &c)),
        Err(AuthError::WrongIssuer { .. })
    ));
    let mut c = ok.claims.clone();
    c.iss = None;
    assert!(matches!(
        f.auth.verify(&sign_hs(&f, Algorithm::HS256, &c)),
        Err(AuthError::InvalidClaims(m)) if m.contains("iss")
    ));

    // Without a configured audience, a token meant for another audience is refused.
    let plain = hs256();
    let mut c = claims(now_secs() + 600);
    c.aud = Some(Audience::One("other-service".into()));
    assert!(matches!(
        plain.auth.verify(&sign_hs(&plain, Algorithm::HS256, &c)),
        Err(AuthError::WrongAudience { .. })
    ));
}

#[test]
fn rs256_with_public_key_verifies_and_rejects_hs256_forgery() {
    let public = fixture("rsa-public.pem");
    let f = with_config(AuthConfig {
        keys: KeyConfig::Rs256 {
            public_keys: vec![public.clone()],
            signing_key: Some(fixture("rsa-private.pem")),
        },
        ..AuthConfig::default()
    });
    let t = f.auth.issue(&request(Role::HeadOffice)).unwrap();
    assert!(
        t.token
            .starts_with(&b64(br#"{"typ":"JWT","alg":"RS256"}"#)[..10])
    );
    assert_eq!(f.auth.verify(&t.token).unwrap().role, Role::HeadOffice);

    // The classic confusion attack: HS256 keyed with the public key's PEM.
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(now_secs() + 600),
        &EncodingKey::from_secret(&std::fs::read(&public).unwrap()),
    )
    .unwrap();
    assert!(matches!(
        f.auth.verify(&forged),
        Err(AuthError::WrongAlgorithm { found, .. }) if found == "HS256"
    ));

    // Signed by a key the server does not trust.
    let other = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(now_secs() + 600),
        &EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa-other-private.pem")).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(f.auth.verify(&other), Err(AuthError::BadSignature));
}

#[test]
fn verify_only_server_cannot_issue() {
    let f = with_config(AuthConfig {
        keys: KeyConfig::EdDsa {
            public_keys: vec![fixture("ed25519-public.pem")],
            signing_key: None,
        },
        ..AuthConfig::default()
    });
    let err = f.auth.issue(&request(Role::Admin)).unwrap_err();
    assert!(matches!(err, AuthError::CannotSign(_)), "{err:?}");
    // An identity provider holding the private key signs; the server verifies.
    let idp = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims(now_secs() + 600),
        &EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519-private.pem")).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(f.auth.verify(&idp).unwrap().sub, "li.na");
    // No HS256 secret is created for an EdDSA server.
    assert!(!f.data.join(SECRET_FILE).exists());
}

#[test]
fn auth_args_build_configs_and_refuse_inconsistent_ones() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        auth: AuthArgs,
    }
    let c = Cli::parse_from(["x"]).auth.config().unwrap();
    assert_eq!(
        c.keys,
        KeyConfig::Managed,
        "the relay's own Ed25519 keys by default"
    );
    let c = Cli::parse_from(["x", "--jwt-algorithm", "hs256"])
        .auth
        .config()
        .unwrap();
    assert_eq!(c.keys, KeyConfig::Hs256Generated);
    assert_eq!(c.leeway, Duration::from_secs(30));
    let c = Cli::parse_from([
        "x",
        "--jwt-algorithm",
        "EdDSA",
        "--jwt-public-key",
        "/k.pem",
    ])
    .auth
    .config()
    .unwrap();
    assert!(matches!(c.keys, KeyConfig::EdDsa { .. }));
    assert!(
        Cli::parse_from(["x", "--jwt-algorithm", "RS256"])
            .auth
            .config()
            .is_err()
    );
    assert!(
        Cli::parse_from(["x", "--jwt-algorithm", "none"])
            .auth
            .config()
            .is_err()
    );
}

fn uri(s: &str) -> Uri {
    s.parse().unwrap()
}

#[test]
fn token_found_in_each_of_the_three_places() {
    let f = hs256();
    let token = f.auth.issue(&request(Role::Consultant)).unwrap().token;

    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let (t, place) = token_from_request(&h, &uri("/sync")).unwrap();
    assert_eq!((t.as_str(), place), (token.as_str(), TokenPlace::Header));

    let mut h = HeaderMap::new();
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(&format!("dealersync, bearer.{token}")).unwrap(),
    );
    let (t, place) = token_from_request(&h, &uri("/sync")).unwrap();
    assert_eq!(
        (t.as_str(), place),
        (token.as_str(), TokenPlace::Subprotocol)
    );

    let (t, place) =
        token_from_request(&HeaderMap::new(), &uri(&format!("/sync?x=1&token={token}"))).unwrap();
    assert_eq!((t.as_str(), place), (token.as_str(), TokenPlace::Query));
    f.auth.verify(&t).unwrap();

    assert_eq!(
        token_from_request(&HeaderMap::new(), &uri("/sync?x=1")),
        Err(AuthError::Missing)
    );
    let mut basic = HeaderMap::new();
    basic.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic Zm9vOmJhcg=="),
    );
    assert!(matches!(
        token_from_request(&basic, &uri("/sync")),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn managed_keys_name_their_kid_and_rotate_and_retire_under_a_running_relay() {
    let f = with_config(AuthConfig::default());
    assert!(
        !f.data.join(SECRET_FILE).exists(),
        "no shared secret by default"
    );
    let before = f.auth.issue(&request(Role::Consultant)).unwrap().token;
    let old_kid = f.auth.signing_kid().unwrap();
    let header = jsonwebtoken::decode_header(&before).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(old_kid.as_str()));

    // `keys rotate` from another process: a token the new key signs verifies once the
    // relay has reread the file, and so does the old one.
    let new_kid = keys::rotate(&f.data).unwrap();
    let other = Authenticator::open(&f.data, AuthConfig::default(), f.registry.clone()).unwrap();
    let after = other.issue(&request(Role::Consultant)).unwrap().token;
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid,
        Some(new_kid.clone())
    );
    assert!(f.auth.reload_keys().unwrap(), "the change is seen");
    assert!(!f.auth.reload_keys().unwrap(), "and only once");
    f.auth.verify(&after).unwrap();
    f.auth.verify(&before).unwrap();
    assert_eq!(f.auth.signing_kid(), Some(new_kid.clone()));

    // Retired: its tokens are refused, saying which key.
    keys::retire(&f.data, &old_kid).unwrap();
    f.auth.reload_keys().unwrap();
    assert!(matches!(
        f.auth.verify(&before),
        Err(AuthError::UnknownKey { kid }) if kid == old_kid
    ));
    f.auth.verify(&after).unwrap();
    let published: Vec<String> = f.auth.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(published, vec![new_kid]);
}
