//! The demo network that `serve --demo` seeds into an empty data directory: a 4S
//! store's head office (`hq`), two distribution centres, three agents, a showroom and
//! two roadshow teams, a model catalogue with prices in fen, targets per site and month,
//! and a few hundred customers and vehicles with their histories over recent months.
//!
//! Everything is written through `core::domain`'s validated operations (plain
//! automerge values, scalar strings), exactly as a field device would write it: phone
//! numbers are valid Chinese mobiles stored as E.164, VINs carry a valid ISO 3779 check
//! digit, vehicles and customers move only along the lifecycles the domain allows. The
//! content is generated from a fixed seed, so two demo networks hold the same people
//! and vehicles (only document ids and times differ).
//!
//! Layout: this file holds what the server calls (seeding, tokens, the banner);
//! `catalogue.rs` the network's fixed content (sites, models, names),
//! `generate.rs` what is generated from it (the network document, each site's
//! customers and vehicles), `care.rs` each site's customer care (areas, referrals,
//! follow-ups, complaints), and `cross_site.rs` what spans documents (quarter and week
//! targets, parts shipments, transfers between regions, a customer registered at three
//! agents, a distribution centre's forecast adjustment).

mod care;
mod catalogue;
mod cross_site;
mod generate;

pub use generate::{chinese_name, demo_vin, mobile_number};

use std::fmt::Write as _;

use dealersync_core::access::Role;
use dealersync_core::domain::DomainError;
use dealersync_core::schema::{Millis, NetworkDocument, SiteHeader};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::api::tokens::{AdminError, issue_recorded};
use crate::auth::{Authenticator, TokenRequest};
use crate::registry::{DocumentWriter, Registry, RegistryError};
use crate::signin::{CodeRequest, SignInError};

use catalogue::SITES;
use generate::{seed_network, seed_site};

/// How long the sign-in codes printed by `serve --demo` stay good: a day, so that
/// the person who started the demo has time to open the links.
pub const DEMO_CODE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Lifetime of the demo tokens.
pub const DEMO_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// Why the demo could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The data directory already has sites; the demo only seeds an empty network.
    #[error("the data directory already has {0} sites; the demo seeds only an empty one")]
    NotEmpty(usize),
    /// The data directory holds a network that is not the demo's (a demo user's site
    /// is missing), so no demo tokens can be issued for it.
    #[error(
        "the data directory holds another network (no site {0:?}); use an empty --data-dir for the demo"
    )]
    NotDemo(String),
    /// The registry or a document write failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Issuing a demo token failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// Issuing a demo sign-in code failed.
    #[error(transparent)]
    SignIn(Box<SignInError>),
}

impl From<SignInError> for DemoError {
    fn from(e: SignInError) -> Self {
        DemoError::SignIn(Box::new(e))
    }
}

impl From<DomainError> for DemoError {
    fn from(e: DomainError) -> Self {
        DemoError::Registry(RegistryError::Domain(e))
    }
}

/// A token printed for one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoToken {
    /// The role.
    pub role: Role,
    /// The user.
    pub sub: String,
    /// The user's site.
    pub site: String,
    /// The JWT.
    pub token: String,
    /// A one-time sign-in code for the same user, for the board in a browser.
    pub sign_in_code: String,
}

/// What was seeded, and what to tell the person who started the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    /// Whether this run seeded the network (false: it was there from an earlier run,
    /// and the counts below are zero).
    pub seeded: bool,
    /// Sites created.
    pub sites: usize,
    /// Customers across all sites.
    pub customers: usize,
    /// Vehicles across all sites.
    pub vehicles: usize,
    /// One token per role: consultant, manager, head office, admin.
    pub tokens: Vec<DemoToken>,
    /// The showroom manager's, for the field app's manager screen.
    pub phone_manager: DemoToken,
}

impl DemoSummary {
    /// The text `serve --demo` prints: the tokens and the URLs to use them with.
    /// `base` is the server's HTTP base URL, e.g. `http://127.0.0.1:3030`.
    pub fn banner(&self, base: &str) -> String {
        let base = base.trim_end_matches('/');
        let ws = base
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        let mut out = String::new();
        if self.seeded {
            let _ = writeln!(
                out,
                "dealersync demo network seeded: {} sites, {} customers, {} vehicles",
                self.sites, self.customers, self.vehicles
            );
        } else {
            let _ = writeln!(
                out,
                "dealersync demo network (seeded earlier in this data directory)"
            );
        }
        let _ = writeln!(out);
        for t in &self.tokens {
            let _ = writeln!(out, "{} ({} at {}):", t.role, t.sub, t.site);
            let _ = writeln!(out, "  {}", t.token);
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Sales board and console in a browser; each link signs in once, good for 24 h:"
        );
        for t in &self.tokens {
            let _ = writeln!(
                out,
                "  {:<12} {:<10} {}",
                t.role.as_str(),
                t.sub,
                crate::signin::sign_in_url(base, &t.sign_in_code)
            );
        }
        let _ = writeln!(
            out,
            "  More codes: dealersync-server sign-in-code --data-dir <dir> --user sun.hao --role manager --site dc-north"
        );
        let _ = writeln!(out, "  Board: {base}/board   Console: {base}/console");
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Sync (automerge-repo WebSocket): {ws}/sync?token=<token>"
        );
        let _ = writeln!(
            out,
            "Sites you may read:  curl -H 'Authorization: Bearer <token>' {base}/api/sites"
        );
        let _ = writeln!(out, "Network document:    {base}/api/network");
        let _ = writeln!(out, "Health and metrics:  {base}/healthz  {base}/metrics");
        // The field app enrols from a link carrying the token (docs/field-app.md).
        if let Some(t) = self.tokens.iter().find(|t| t.role == Role::Consultant) {
            let _ = writeln!(
                out,
                "Field app (phone):   {base}/app/#token={} (as {})",
                t.token, t.sub
            );
        }
        let m = &self.phone_manager;
        let _ = writeln!(
            out,
            "Field app (manager): {base}/app/#token={} (as {}, manager at {}: discount approvals, complaints, transfers)",
            m.token, m.sub, m.site
        );
        out
    }
}

/// Seeds the demo network into an empty registry and returns a token per role.
///
/// `docs` writes the documents (a [`crate::registry::StoreDocuments`] before the relay
/// starts); `now` anchors the generated history (events spread over the six months
/// before it).
pub fn seed_demo(
    registry: &Registry,
    docs: &dyn DocumentWriter,
    auth: &Authenticator,
    now: Millis,
) -> Result<DemoSummary, DemoError> {
    let existing = registry.sites()?.len();
    if existing > 0 {
        return Err(DemoError::NotEmpty(existing));
    }
    let mut rng = StdRng::seed_from_u64(0x4D45_4D4F);
    for s in SITES {
        registry.create_site(
            docs,
            SiteHeader {
                id: s.id.into(),
                name: s.name.into(),
                kind: s.kind,
                parent: s.parent.map(String::from),
                channel: Some(s.channel),
            },
        )?;
    }
    let network_id = registry
        .network_document()?
        .ok_or_else(|| RegistryError::Invalid("the network document was not created".into()))?;

    // The catalogue, commercial policy and site targets, as head office writes them.
    let mut net_snapshot = NetworkDocument::new();
    docs.edit(network_id, &mut |doc| {
        seed_network(doc, now)?;
        net_snapshot = NetworkDocument::read(doc).map_err(|e| RegistryError::Document {
            doc: network_id,
            reason: e.to_string(),
        })?;
        Ok(())
    })?;

    let mut customers = 0;
    let mut vehicles = 0;
    let mut serial = 100_000u32;
    for (index, s) in SITES.iter().enumerate() {
        let site = registry.site(s.id)?;
        let mut site_rng = StdRng::seed_from_u64(rng.random::<u64>() ^ index as u64);
        docs.edit(site.document_id, &mut |doc| {
            let (c, v) = seed_site(doc, s, &net_snapshot, &mut site_rng, &mut serial, now)?;
            customers += c;
            vehicles += v;
            Ok(())
        })?;
    }

    // Quarter and week targets, parts shipments, transfers between regions, customers
    // registered at two sites, a forecast adjustment.
    let (c, v) = cross_site::seed_cross_site(registry, docs, network_id, now)?;
    customers += c;
    vehicles += v;

    let tokens = demo_tokens(registry, auth)?;
    tracing::info!(
        sites = SITES.len(),
        customers,
        vehicles,
        "seeded the demo network"
    );
    Ok(DemoSummary {
        seeded: true,
        sites: SITES.len(),
        customers,
        vehicles,
        tokens,
        phone_manager: phone_manager_token(registry, auth)?,
    })
}

/// What `serve --demo` does: seeds an empty data directory, or, when the demo network
/// is already there from an earlier run, only issues fresh tokens for it.
pub fn ensure_demo(
    registry: &Registry,
    docs: &dyn DocumentWriter,
    auth: &Authenticator,
    now: Millis,
) -> Result<DemoSummary, DemoError> {
    if registry.sites()?.is_empty() {
        return seed_demo(registry, docs, auth, now);
    }
    Ok(DemoSummary {
        seeded: false,
        sites: registry.sites()?.len(),
        customers: 0,
        vehicles: 0,
        tokens: demo_tokens(registry, auth)?,
        phone_manager: phone_manager_token(registry, auth)?,
    })
}

/// Issues a fresh token for each demo user: consultant `wang.fang` at `showroom`,
/// manager `sun.hao` at `dc-north`, head office `zhou.min` and `admin` at `hq`.
pub fn demo_tokens(registry: &Registry, auth: &Authenticator) -> Result<Vec<DemoToken>, DemoError> {
    [
        (Role::Consultant, "wang.fang", "showroom"),
        (Role::Manager, "sun.hao", "dc-north"),
        (Role::HeadOffice, "zhou.min", "hq"),
        (Role::Admin, "admin", "hq"),
    ]
    .into_iter()
    .map(|(role, sub, site)| demo_token(registry, auth, role, sub, site))
    .collect()
}

/// The showroom's manager for the field app (`qian.jing`): the app works on the
/// enrolled site's document, and the showroom is where the demo's discount request
/// waits and its complaints are.
pub fn phone_manager_token(
    registry: &Registry,
    auth: &Authenticator,
) -> Result<DemoToken, DemoError> {
    demo_token(registry, auth, Role::Manager, "qian.jing", "showroom")
}

fn demo_token(
    registry: &Registry,
    auth: &Authenticator,
    role: Role,
    sub: &str,
    site: &str,
) -> Result<DemoToken, DemoError> {
    match registry.site(site) {
        Ok(_) => {}
        Err(RegistryError::UnknownSite(_)) => return Err(DemoError::NotDemo(site.into())),
        Err(e) => return Err(e.into()),
    }
    let issued = issue_recorded(
        auth,
        registry,
        &TokenRequest {
            sub: sub.into(),
            role,
            site: site.into(),
            device: None,
            ttl: DEMO_TOKEN_TTL,
        },
    )?;
    let code = registry.create_sign_in_code(
        &CodeRequest {
            sub: sub.into(),
            role,
            site: site.into(),
            device: None,
            session_ttl: None,
            lifetime: DEMO_CODE_LIFETIME,
        },
        "demo",
    )?;
    Ok(DemoToken {
        role,
        sub: sub.into(),
        site: site.into(),
        token: issued.token,
        sign_in_code: code.code,
    })
}
