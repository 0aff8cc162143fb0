//! `GET /api/downstreams`: head office's view of the downstream relays that sync with
//! it (kept by [`crate::downstreams`]).

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Json, Router};
use dealersync_core::access::Role;
use serde::Serialize;

use super::error::ApiError;
use super::extract::{Caller, blocking};
use super::state::ApiState;
use crate::downstreams::{DownstreamRelay, Downstreams};

/// `GET /api/downstreams`, for head office and admin tokens.
pub fn router(state: ApiState, downstreams: Arc<Downstreams>) -> Router {
    Router::new()
        .route("/api/downstreams", get(view))
        .layer(Extension(downstreams))
        .with_state(state)
}

/// The answer of `GET /api/downstreams`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownstreamsView {
    /// Every downstream relay that has synced with this relay, by relay and site.
    pub relays: Vec<DownstreamRelay>,
}

async fn view(
    Extension(downstreams): Extension<Arc<Downstreams>>,
    caller: Caller,
) -> Result<Json<DownstreamsView>, ApiError> {
    if !matches!(caller.0.role, Role::HeadOffice | Role::Admin) {
        return Err(ApiError::forbidden(format!(
            "the downstream relays are listed for head office and admin tokens; this token's role is {}",
            caller.0.role
        )));
    }
    let relays = blocking(move || Ok(downstreams.list())).await?;
    Ok(Json(DownstreamsView { relays }))
}
