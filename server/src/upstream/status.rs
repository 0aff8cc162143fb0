//! How far behind its upstream this relay is: `GET /api/upstream` and the
//! `dealersync_upstream_*` metrics.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use dealersync_core::access::DocumentOwner;
use serde::Serialize;

use super::{LinkState, Upstream};
use crate::api::error::ApiError;
use crate::api::extract::{Caller, blocking};
use crate::api::state::ApiState;
use crate::relay::UpstreamDoc;
use crate::telemetry::{UPSTREAM_CONNECTED, UPSTREAM_LAST_CONTACT, UPSTREAM_UNACKNOWLEDGED};

/// `GET /api/upstream`: the link and, per document the caller may read, the changes
/// held here that the upstream has not acknowledged.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamView {
    /// The upstream relay's base URL.
    pub upstream: String,
    /// The relay token's site: the top of the subtree this relay syncs.
    pub site: String,
    /// The link's state.
    #[serde(flatten)]
    pub link: LinkState,
    /// Changes not acknowledged upstream, over the documents listed.
    pub unacknowledged: u64,
    /// Per document.
    pub documents: Vec<UpstreamDocView>,
}

/// One document of [`UpstreamView`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamDocView {
    /// Bare document id.
    pub document_id: String,
    /// The site whose document it is; `None` for the network document.
    pub site: Option<String>,
    /// The counts.
    #[serde(flatten)]
    pub standing: UpstreamDoc,
}

/// The route, for a relay with an upstream; a relay without one answers 404 there
/// (no route), which clients read as "no upstream".
pub fn router(state: ApiState, upstream: Upstream) -> Router {
    Router::new()
        .route("/api/upstream", get(view))
        .with_state(UpstreamState {
            api: state,
            upstream,
        })
}

/// The route's state: the API's (token checks, registry) and the link.
#[derive(Clone)]
struct UpstreamState {
    api: ApiState,
    upstream: Upstream,
}

impl axum::extract::FromRef<UpstreamState> for std::sync::Arc<crate::auth::Authenticator> {
    fn from_ref(s: &UpstreamState) -> Self {
        s.api.auth.clone()
    }
}

impl axum::extract::FromRef<UpstreamState> for std::sync::Arc<crate::registry::Registry> {
    fn from_ref(s: &UpstreamState) -> Self {
        s.api.registry.clone()
    }
}

async fn view(
    State(UpstreamState {
        api: state,
        upstream,
    }): State<UpstreamState>,
    caller: Caller,
) -> Result<Json<UpstreamView>, ApiError> {
    let registry = state.registry.clone();
    let ledger = upstream.ledger.snapshot();
    let documents = blocking(move || {
        let who = caller.principal();
        let tree = registry.tree();
        Ok(ledger
            .into_iter()
            .filter(|(doc, _)| registry.access(&who, doc).can_read())
            .map(|(doc, standing)| UpstreamDocView {
                document_id: doc.to_string(),
                site: match tree.owner(&doc) {
                    Some(DocumentOwner::Site(site)) => Some(site),
                    _ => None,
                },
                standing,
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(UpstreamView {
        upstream: upstream.config.base.clone(),
        site: upstream.config.relay.site.clone(),
        link: upstream.state(),
        unacknowledged: documents
            .iter()
            .filter_map(|d| d.standing.unacknowledged)
            .sum(),
        documents,
    }))
}

/// Sets the upstream gauges once a second.
pub(super) async fn export_metrics(up: Upstream) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        let state = up.state();
        metrics::gauge!(UPSTREAM_CONNECTED).set(if state.connected { 1.0 } else { 0.0 });
        if let Some(at) = state.last_contact {
            metrics::gauge!(UPSTREAM_LAST_CONTACT).set(at as f64 / 1000.0);
        }
        metrics::gauge!(UPSTREAM_UNACKNOWLEDGED).set(up.ledger.unacknowledged() as f64);
    }
}
