//! One-time sign-in codes: how a person gets a session in a browser, or a phone its
//! device token, without ever seeing or pasting a JWT.
//!
//! An admin, head office or a manager issues a short code (`ABCD-EFGH`, 40 random
//! bits in Crockford's base 32) bound to the claims `dealersync-server token` would
//! put into a token: user, role, site and optionally device. The code lives ten
//! minutes by default and is good once. Only its SHA-256 is stored (table
//! `sign_in_codes` in the registry's SQLite file); redeeming it marks it used in the
//! same statement that checks it, so two redemptions racing cannot both win. Guessing
//! is bounded by [`SignInLimiter`]: failed attempts per client address and in total.
//! The HTTP side is in `signin_routes.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dealersync_core::access::{Claims, Role};
use rand::Rng as _;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::api::tokens::{AdminError, issue_recorded};
use crate::auth::{Authenticator, IssuedToken, TokenRequest, now_secs};
use crate::registry::{Registry, RegistryError};

/// How long a code is good for unless the issuer says otherwise.
pub const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The longest a code may be good for: a code is a password until it is used.
pub const MAX_CODE_LIFETIME: Duration = Duration::from_secs(7 * 86_400);

/// How long a browser session lasts unless the code says otherwise: a working day.
pub const DEFAULT_BROWSER_SESSION: Duration = Duration::from_secs(12 * 3600);

/// How long a phone's device token lasts unless the code says otherwise.
pub const DEFAULT_DEVICE_TOKEN: Duration = crate::api::tokens::DEFAULT_TTL;

/// Characters of a code: Crockford's base 32 (no I, L, O, U), so that a code read
/// aloud or off a TV is not misread; `O`, `I` and `L` typed by mistake are read as
/// `0`, `1` and `1`.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in a code (8 × 5 bits = 40 bits).
pub const CODE_CHARS: usize = 8;

/// Failed attempts one client address may make per [`LIMIT_WINDOW`].
pub const FAILURES_PER_ADDRESS: u32 = 10;

/// Failed attempts from all addresses together per [`LIMIT_WINDOW`]: with 40-bit
/// codes, finding any one of a hundred live codes at this rate takes centuries.
pub const FAILURES_IN_TOTAL: u32 = 1000;

/// The window the failure counts cover.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Addresses the limiter remembers at most; the oldest windows are dropped first.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// Why a code could not be issued or redeemed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown, already used, or expired: one answer for all three, so that the
    /// answer tells a guesser nothing.
    #[error("this sign-in code is not valid: it is mistyped, was already used, or has expired")]
    InvalidCode,
    /// Too many failed attempts; try again after the given time.
    #[error("too many failed sign-in attempts; try again in {} s", .retry_after.as_secs().max(1))]
    RateLimited {
        /// When another attempt will be looked at.
        retry_after: Duration,
    },
    /// The issuer may not issue this code; the message says why.
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// The registry failed or refused (unknown or deactivated site).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Issuing the session's token failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// What a code grants: the claims of the session or device token it is exchanged for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRequest {
    /// The user.
    pub sub: String,
    /// The role.
    pub role: Role,
    /// The user's site.
    pub site: String,
    /// The device the token will name; for a phone, the exchange may name one instead.
    pub device: Option<String>,
    /// Lifetime of the session or device token; `None` for the default of each.
    pub session_ttl: Option<Duration>,
    /// How long the code itself is good for.
    pub lifetime: Duration,
}

/// A code just issued: the only time the code itself is known to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// The code as shown to people, `ABCD-EFGH`.
    pub code: String,
    /// When it stops being good, seconds since the epoch.
    pub expires_at: u64,
}

/// A redeemed code's grant, before the token is issued.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    sub: String,
    role: Role,
    site: String,
    device: Option<String>,
    session_ttl: Option<Duration>,
}

/// Which kind of credential a code is exchanged for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// A browser session: a token without a device, kept in an HttpOnly cookie.
    Browser,
    /// A phone or tablet: a device token, revocable with the device. The device id
    /// named here wins over the code's; without either, one is made up.
    Device(Option<String>),
}

/// Whether `issuer` may issue a code for `role` at `site`: an admin anything; head
/// office any role but admin; a manager consultants and managers of his own site and
/// the sites below it; a consultant nothing.
pub fn may_issue(
    registry: &Registry,
    issuer: &Claims,
    role: Role,
    site: &str,
) -> Result<(), SignInError> {
    let refuse = |why: String| Err(SignInError::Forbidden(why));
    if role == Role::Relay {
        // A relay's token is an operator's act (`dealersync-server token --role relay`),
        // never a code typed into a phone.
        return refuse(
            "relay tokens are issued with `dealersync-server token`, not sign-in codes".into(),
        );
    }
    match issuer.role {
        Role::Admin => Ok(()),
        Role::HeadOffice if role == Role::Admin => {
            refuse("head office may not issue admin sign-in codes".into())
        }
        Role::HeadOffice => Ok(()),
        Role::Manager if role > Role::Manager => refuse(format!(
            "a manager issues sign-in codes for consultants and managers, not {role}"
        )),
        Role::Manager => {
            registry.refresh()?;
            if registry.tree().is_within(site, &issuer.site) {
                Ok(())
            } else {
                refuse(format!(
                    "site {:?} is not {} or below it",
                    crate::telemetry::clip(site),
                    issuer.site
                ))
            }
        }
        Role::Relay => refuse("a relay may not issue sign-in codes".into()),
        Role::Consultant => refuse("consultants may not issue sign-in codes".into()),
    }
}

/// Device ids: 1–64 of letters, digits, `.`, `_`, `-` (they end up in logs and in the
/// revocation table).
pub fn validate_device(device: &str) -> Result<(), SignInError> {
    let ok = !device.is_empty()
        && device.len() <= 64
        && device
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SignInError::Invalid(
            "a device id is 1-64 letters, digits, '.', '_' or '-'".into(),
        ))
    }
}

impl Registry {
    /// Stores a new code for `req` (the site must exist and trade) and returns it. The
    /// caller has checked [`may_issue`]. Codes that expired a day ago are dropped here.
    pub fn create_sign_in_code(
        &self,
        req: &CodeRequest,
        issued_by: &str,
    ) -> Result<IssuedCode, SignInError> {
        if req.sub.trim().is_empty() || req.sub.len() > 100 {
            return Err(SignInError::Invalid("a user id is 1-100 characters".into()));
        }
        if req.lifetime.is_zero() || req.lifetime > MAX_CODE_LIFETIME {
            return Err(SignInError::Invalid(format!(
                "a sign-in code is good for at most {} days",
                MAX_CODE_LIFETIME.as_secs() / 86_400
            )));
        }
        if req.session_ttl.is_some_and(|t| t > crate::auth::MAX_TTL) {
            return Err(SignInError::Invalid(format!(
                "a session lasts at most {} days",
                crate::auth::MAX_TTL.as_secs() / 86_400
            )));
        }
        if let Some(d) = &req.device {
            validate_device(d)?;
        }
        let site = self.site(&req.site)?;
        if !site.active {
            return Err(SignInError::Invalid(format!(
                "site {} is deactivated; sign-in codes are issued for active sites only",
                site.id
            )));
        }
        let code = new_code();
        let now = now_secs();
        let expires_at = now + req.lifetime.as_secs();
        let conn = self.conn();
        conn.execute(
            "DELETE FROM sign_in_codes WHERE expires_at < ?1",
            [now as i64 - 86_400],
        )
        .map_err(RegistryError::from)?;
        conn.execute(
            "INSERT INTO sign_in_codes
               (code_hash, sub, role, site, device, session_ttl, issued_by, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                code_hash(&normalise(&code).unwrap_or_default()),
                req.sub.trim(),
                req.role.as_str(),
                req.site,
                req.device,
                req.session_ttl.map(|t| t.as_secs() as i64),
                issued_by,
                now as i64,
                expires_at as i64,
            ],
        )
        .map_err(RegistryError::from)?;
        tracing::info!(sub = %crate::telemetry::clip(&req.sub), role = %req.role, site = %req.site, issued_by, "issued a sign-in code");
        Ok(IssuedCode { code, expires_at })
    }

    /// Marks the code used and returns its grant, or [`SignInError::InvalidCode`]
    /// if it is unknown, used or expired. One `UPDATE ... RETURNING`: of two
    /// redemptions at once, exactly one gets the grant.
    fn redeem_sign_in_code(&self, code: &str) -> Result<Grant, SignInError> {
        let normal = normalise(code).ok_or(SignInError::InvalidCode)?;
        let now = now_secs() as i64;
        let grant = self
            .conn()
            .query_row(
                "UPDATE sign_in_codes SET used_at = ?2
                 WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                 RETURNING sub, role, site, device, session_ttl",
                params![code_hash(&normal), now],
                |r| {
                    let role: String = r.get(1)?;
                    let ttl: Option<i64> = r.get(4)?;
                    Ok(Grant {
                        sub: r.get(0)?,
                        role: role.parse().map_err(|_| {
                            rusqlite::Error::InvalidColumnType(
                                1,
                                "role".into(),
                                rusqlite::types::Type::Text,
                            )
                        })?,
                        site: r.get(2)?,
                        device: r.get(3)?,
                        session_ttl: ttl.map(|s| Duration::from_secs(s.max(1) as u64)),
                    })
                },
            )
            .optional()
            .map_err(RegistryError::from)?;
        grant.ok_or(SignInError::InvalidCode)
    }
}

/// Redeems `code` for a browser session or a device token: the code is used up
/// whatever happens next, and the token is recorded like any other (so it is listed
/// by `GET /api/admin/tokens` and revocable by its `jti` or device).
pub fn exchange(
    auth: &Authenticator,
    registry: &Registry,
    code: &str,
    kind: &Exchange,
) -> Result<IssuedToken, SignInError> {
    let grant = registry.redeem_sign_in_code(code)?;
    let (device, ttl) = match kind {
        Exchange::Browser => (None, grant.session_ttl.unwrap_or(DEFAULT_BROWSER_SESSION)),
        Exchange::Device(named) => {
            let device = match named.clone().or(grant.device) {
                Some(d) => {
                    validate_device(&d)?;
                    d
                }
                None => format!(
                    "device-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ),
            };
            (
                Some(device),
                grant.session_ttl.unwrap_or(DEFAULT_DEVICE_TOKEN),
            )
        }
    };
    let issued = issue_recorded(
        auth,
        registry,
        &TokenRequest {
            sub: grant.sub,
            role: grant.role,
            site: grant.site,
            device,
            ttl,
        },
    )?;
    Ok(issued)
}

/// A fresh code, `ABCD-EFGH`.
fn new_code() -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(CODE_CHARS + 1);
    for i in 0..CODE_CHARS {
        if i == CODE_CHARS / 2 {
            code.push('-');
        }
        code.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    code
}

/// The code as stored: upper case, without separators, `O`/`I`/`L` read as digits;
/// `None` if it cannot be a code at all.
fn normalise(code: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_CHARS);
    for c in code.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() == CODE_CHARS {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_CHARS).then_some(out)
}

fn code_hash(normal: &str) -> String {
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// Counts failed redemptions per client address and in total over a sliding
/// [`LIMIT_WINDOW`], and refuses attempts beyond the limits before the code is looked
/// at. In memory: a restart forgets the counts, which costs a guesser a restart per
/// thousand guesses against a space of 2^40.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    inner: Mutex<LimiterState>,
}

#[derive(Debug, Default)]
struct LimiterState {
    per_address: HashMap<IpAddr, Window>,
    total: Window,
}

/// Failures within one window that started at `start`.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            start: Instant::now(),
            failures: 0,
        }
    }
}

impl Window {
    /// The failures still counted at `now` (a window older than [`LIMIT_WINDOW`]
    /// starts over).
    fn current(&mut self, now: Instant) -> u32 {
        if now.duration_since(self.start) >= LIMIT_WINDOW {
            *self = Window {
                start: now,
                failures: 0,
            };
        }
        self.failures
    }

    fn retry_after(&self, now: Instant) -> Duration {
        LIMIT_WINDOW.saturating_sub(now.duration_since(self.start))
    }
}

impl SignInLimiter {
    /// `Err(RateLimited)` if `addr` or everyone together has failed too often.
    pub fn check(&self, addr: IpAddr) -> Result<(), SignInError> {
        let now = Instant::now();
        let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if st.total.current(now) >= FAILURES_IN_TOTAL {
            return Err(SignInError::RateLimited {
                retry_after: st.total.retry_after(now),
            });
        }
        if let Some(w) = st.per_address.get_mut(&addr)
            && w.current(now) >= FAILURES_PER_ADDRESS
        {
            return Err(SignInError::RateLimited {
                retry_after: w.retry_after(now),
            });
        }
        Ok(())
    }

    /// Counts a failed attempt from `addr`.
    pub fn failed(&self, addr: IpAddr) {
        let now = Instant::now();
        let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        st.total.current(now);
        st.total.failures += 1;
        if st.per_address.len() >= MAX_TRACKED_ADDRESSES && !st.per_address.contains_key(&addr) {
            st.per_address
                .retain(|_, w| now.duration_since(w.start) < LIMIT_WINDOW);
            if st.per_address.len() >= MAX_TRACKED_ADDRESSES
                && let Some(oldest) = st
                    .per_address
                    .iter()
                    .min_by_key(|(_, w)| w.start)
                    .map(|(a, _)| *a)
            {
                st.per_address.remove(&oldest);
            }
        }
        let w = st.per_address.entry(addr).or_insert(Window {
            start: now,
            failures: 0,
        });
        w.current(now);
        w.failures += 1;
    }
}

/// `dealersync-server sign-in-code ...`: issue a code from the data directory (the
/// operator at the server is trusted like an admin). Works while the server runs.
#[derive(Debug, Clone, clap::Args)]
pub struct SignInCodeArgs {
    /// The user the session will be for (`sub`).
    #[arg(long)]
    pub user: String,
    /// consultant, manager, head_office or admin.
    #[arg(long)]
    pub role: Role,
    /// The user's site id.
    #[arg(long)]
    pub site: String,
    /// The device the token will name (for a phone).
    #[arg(long)]
    pub device: Option<String>,
    /// How long the code is good for: 10m (default), at most 7d.
    #[arg(long, default_value = "10m", value_parser = crate::auth::parse_ttl)]
    pub valid_for: Duration,
    /// How long the session lasts (default 12h in a browser, 30d on a device).
    #[arg(long, value_parser = crate::auth::parse_ttl)]
    pub session_ttl: Option<Duration>,
    /// The relay's address as people reach it, for the printed link.
    #[arg(
        long,
        env = "DEALERSYNC_PUBLIC_URL",
        default_value = "http://127.0.0.1:3030"
    )]
    pub base_url: String,
}

impl SignInCodeArgs {
    /// Issues the code in `data_dir`'s registry; returns it with its link.
    pub fn run(&self, data_dir: &std::path::Path) -> Result<(IssuedCode, String), SignInError> {
        let registry = Registry::open_in(data_dir)?;
        let issued = registry.create_sign_in_code(
            &CodeRequest {
                sub: self.user.trim().to_string(),
                role: self.role,
                site: self.site.clone(),
                device: self.device.clone(),
                session_ttl: self.session_ttl,
                lifetime: self.valid_for,
            },
            "cli",
        )?;
        let url = sign_in_url(&self.base_url, &issued.code);
        Ok((issued, url))
    }
}

/// The link a person opens to sign a browser in with `code` (the board and console).
pub fn sign_in_url(base: &str, code: &str) -> String {
    format!("{}/signin?code={code}", base.trim_end_matches('/'))
}

/// The link that enrols the phone app with `code` (what a QR code shown to a
/// consultant carries): the app at `/app/` reads the code from the fragment, which no
/// server or proxy log sees.
pub fn app_url(base: &str, code: &str) -> String {
    format!("{}/app/#code={code}", base.trim_end_matches('/'))
}

/// The QR code of `text`, error correction M (a smudged phone screen or a creased
/// printout still reads), or `None` for a text too long for any QR version.
fn qr_code(text: &str) -> Option<qrcode::QrCode> {
    qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()
}

/// `text` (a phone app link) as a QR code in an SVG image, with its quiet zone, for the
/// console to show a consultant's phone camera.
pub fn qr_svg(text: &str) -> Option<String> {
    Some(
        qr_code(text)?
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_of_a_phone_link_reads_back_as_the_link() {
        let link = app_url("https://relay.dealer.example:8443", "K7QM-3XZD");
        let code = qr_code(&link).unwrap();
        // Drawn as a phone camera would see it: 4 pixels a module, a 4-module margin.
        let (w, scale, margin) = (code.width(), 4, 4);
        let colors = code.to_colors();
        let side = (w + 2 * margin) * scale;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            let (mx, my) = (
                (x / scale).wrapping_sub(margin),
                (y / scale).wrapping_sub(margin),
            );
            let dark = mx < w && my < w && colors[my * w + mx] == qrcode::Color::Dark;
            if dark { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, text) = grids[0].decode().unwrap();
        assert_eq!(text, link);
        let svg = qr_svg(&link).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    }

    #[test]
    fn codes_are_eight_characters_of_the_alphabet_and_normalise_back() {
        for _ in 0..100 {
            let code = new_code();
            assert_eq!(code.len(), CODE_CHARS + 1, "{code}");
            assert_eq!(&code[4..5], "-");
            let normal = normalise(&code).expect("own code");
            assert_eq!(normal, code.replace('-', ""));
        }
        assert_eq!(normalise("abcd efgh").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalise("oIl2-3456").as_deref(), Some("01123456"));
        for bad in ["", "ABCD-EFG", "ABCD-EFGHJ", "ABCD-EFGU", "ABCD-EFG€"] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }

    #[test]
    fn limiter_refuses_an_address_after_its_failures_but_not_another() {
        let limiter = SignInLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..FAILURES_PER_ADDRESS {
            limiter.check(a).unwrap();
            limiter.failed(a);
        }
        let e = limiter.check(a).unwrap_err();
        assert!(
            matches!(e, SignInError::RateLimited { retry_after } if retry_after <= LIMIT_WINDOW)
        );
        limiter.check(b).unwrap();
    }

    #[test]
    fn limiter_refuses_everyone_after_the_total_failures() {
        let limiter = SignInLimiter::default();
        for i in 0..FAILURES_IN_TOTAL {
            let addr = IpAddr::from([10, 1, (i / 256) as u8, (i % 256) as u8]);
            limiter.failed(addr);
        }
        assert!(matches!(
            limiter.check("192.168.1.1".parse().unwrap()),
            Err(SignInError::RateLimited { .. })
        ));
    }

    #[test]
    fn device_ids_are_checked() {
        assert!(validate_device("pixel-7_a.1").is_ok());
        for bad in ["", "a b", "x".repeat(65).as_str(), "手机"] {
            assert!(validate_device(bad).is_err(), "{bad}");
        }
    }
}
