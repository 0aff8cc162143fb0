//! `POST /api/conflicts/{id}/resolve`: a manager settles a business conflict from the
//! console. The choice means what it means in the field CLI (`conflicts resolve
//! --keep`): `core::conflicts::Resolution` decides which resolving operation goes to
//! which site document, and the edits go through the relay's engine like the planning
//! writes (durable before the answer, pushed to connected devices at once, audited
//! under the caller's user and device).
//!
//! Who may settle a conflict: a manager whose subtree holds every site document the
//! resolution writes, or an admin. Head office reads site documents only
//! (docs/auth.md), so it sees conflicts but a manager of the site settles them; a
//! consultant settles his own site's in the field client.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use dealersync_core::access::{Access, Role};
use dealersync_core::conflicts::{Conflict, Resolution};
use dealersync_core::time::now_ms;
use serde::Deserialize;
use serde_json::json;

use super::{ReportsState, Scope};
use crate::api::error::ApiError;
use crate::api::extract::{Body, Caller, blocking};
use crate::registry::{Author, Registry, RegistryError};

/// The conflict routes.
pub fn routes() -> Router<ReportsState> {
    Router::new().route("/api/conflicts/{id}/resolve", post(resolve))
}

/// The body of a resolution.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    /// One of the conflict's `choices.options[].value` (a customer or site id), or
    /// for a forecast or a part count the figure to keep.
    keep: String,
}

/// Whether `caller` may settle `c`: `Err` says why not.
pub fn may_resolve(registry: &Registry, caller: &Caller, c: &Conflict) -> Result<(), ApiError> {
    let who = caller.principal();
    if c.kind == dealersync_core::conflicts::ConflictKind::TransferDecision {
        return Err(ApiError::forbidden(
            "concurrent transfer decisions are settled by head office with the field client: dealersync conflicts resolve ID --keep approved|refused",
        ));
    }
    match who.role {
        Role::Manager | Role::Admin => {}
        Role::HeadOffice => {
            return Err(ApiError::forbidden(
                "head office reads site documents only; a manager of the site (or an admin) settles this conflict",
            ));
        }
        Role::Consultant | Role::Relay => {
            return Err(ApiError::forbidden(
                "conflicts are settled by a manager of the site (a consultant uses the field client)",
            ));
        }
    }
    let tree = registry.tree();
    let sites = c.values.iter().map(|v| v.site.as_str());
    match sites
        .clone()
        .find(|s| tree.site_access(&who, s) != Access::ReadWrite)
    {
        Some(s) => Err(ApiError::forbidden(format!(
            "this token may not write the document of site {s}, which this conflict involves"
        ))),
        None => Ok(()),
    }
}

async fn resolve(
    State(st): State<ReportsState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<ResolveBody>,
) -> Result<Response, ApiError> {
    super::loaded(&st).await?;
    let answer = blocking(move || {
        let snapshot = st.model.snapshot();
        let scope = Scope::new(&st.registry, &caller, &snapshot, None)?;
        let (found, _) = scope.detect_conflicts();
        let c = found.iter().find(|c| c.id == id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no open conflict {} (it may have been settled already)",
                    crate::telemetry::clip(&id)
                ),
            )
        })?;
        may_resolve(&st.registry, &caller, c)?;
        let resolution = Resolution::of(c, &b.keep).map_err(RegistryError::from)?;
        // Every document first, so a site missing from the registry changes nothing.
        let docs = resolution
            .edits
            .iter()
            .map(|e| Ok((st.registry.site(&e.site)?.document_id, e)))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let author = Author::of(&caller.0);
        let network = snapshot.network.clone();
        for (doc, edit) in &docs {
            st.documents.edit_as(*doc, Some(&author), &mut |am| {
                edit.apply(am, Some(&network), &author.user, now_ms())
                    .map_err(RegistryError::from)
            })?;
        }
        // Read your own write: the console's list is fetched again at once.
        let ids: Vec<_> = docs.iter().map(|(d, _)| *d).collect();
        st.model.apply(&ids)?;
        tracing::info!(
            user = %caller.0.sub,
            role = %caller.0.role,
            conflict = %c.id,
            chosen = %resolution.chosen,
            "conflict resolved"
        );
        Ok(json!({
            "resolved": c.id,
            "kind": c.kind,
            "chosen": resolution.chosen,
            "sites": resolution.sites().collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(Json(answer).into_response())
}
