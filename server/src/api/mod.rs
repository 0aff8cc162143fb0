//! The JSON API: which sites and documents a caller may sync, the admin operations
//! (sites, tokens, revocation) and the audit log. Also the same admin operations for
//! the server binary's subcommands (`token`, `revoke`, `site add|list`), so that HTTP
//! and CLI cannot drift apart.
//!
//! Every route needs a valid token (401 with the reason otherwise). A document the
//! caller may not read is answered 404 exactly as a document that does not exist; a
//! route the caller's role may not use is 403.

pub mod downstreams;
pub mod error;
pub mod extract;
pub mod origin;
pub mod sites;
pub mod state;
pub mod tokens;

use axum::Router;

pub use crate::admission::SyncAuth;

pub use error::ApiError;
pub use extract::{Body, Caller, blocking};
pub use sites::{
    MAX_AUDIT_ROWS, MAX_DOCUMENT_ID_CHARS, NewSite, SiteChain, SiteCommand, SiteUpdate, SiteView,
};
pub use state::ApiState;
pub use tokens::{
    AdminError, DEFAULT_TTL, IssuedView, NewToken, RevokeArgs, RevokeBody, TokenArgs,
    issue_recorded,
};

/// The `/api/...` routes. Merge into the relay's router: `app.merge(api::router(state))`.
pub fn router(state: ApiState) -> Router {
    sites::routes()
        .merge(tokens::routes())
        .with_state(state.clone())
        .merge(crate::signin_routes::router(state.clone()))
        .merge(crate::trust_routes::router(state.clone()))
        .merge(crate::archive::router(state.clone()))
        .merge(crate::web::router(state))
}

/// What the relay plugs in (`server::serve(options, api::extensions(state), ..)`):
/// WebSocket upgrades admitted by token ([`crate::admission::authorizer`]) and the
/// `/api/...` routes served next to `/sync`, with `/api/downstreams` when head office's
/// table of downstream relays can be read.
pub fn extensions(state: ApiState) -> crate::extensions::Extensions {
    let downstreams = match crate::downstreams::Downstreams::load(state.registry.clone()) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the downstream relays; /api/downstreams is off");
            None
        }
    };
    if let Some(d) = &downstreams
        && tokio::runtime::Handle::try_current().is_ok()
    {
        d.spawn_upkeep();
    }
    let mut routes = router(state.clone());
    if let Some(d) = &downstreams {
        routes = routes.merge(downstreams::router(state.clone(), d.clone()));
    }
    crate::extensions::Extensions {
        authorize: crate::admission::authorizer(state, downstreams),
        routes,
    }
}
