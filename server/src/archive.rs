//! The monthly carry-over (docs/growth.md): `POST /api/admin/archive` on a running
//! relay, and the `dealersync-server archive --month YYYY-MM` command that either asks
//! a running relay through that route (`--server`) or works on a stopped relay's data
//! directory (which is also how an earlier release's data directory is migrated).

use std::path::Path;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use dealersync_core::time::now_ms;
use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::api::extract::{Body, Caller, blocking};
use crate::api::state::ApiState;
use crate::registry::{ArchivedSite, Registry, RegistryError, StoreDocuments};

/// How long the command waits for a running relay to carry every site over.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Body of `POST /api/admin/archive`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveRequest {
    /// The month the new working documents start with, `YYYY-MM` (China Standard Time).
    pub month: String,
}

/// Why the `archive` command failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The registry or a document refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The running relay could not be reached or refused.
    #[error("relay {url}: {reason}")]
    Relay {
        /// What was asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// The route, merged into `api::router`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/admin/archive", post(archive))
        .with_state(state)
}

async fn archive(
    State(st): State<ApiState>,
    caller: Caller,
    Body(body): Body<ArchiveRequest>,
) -> Result<Json<Vec<ArchivedSite>>, ApiError> {
    caller.require_admin()?;
    if st.registry.is_downstream() {
        // Its sites' documents are head office's: a carry-over here would make working
        // documents head office never heard of. The chains come with the site tree.
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "downstream_relay",
            "this relay follows an upstream relay: run the carry-over there; the new \
             documents and the archives reach this relay with the site tree",
        ));
    }
    let done = blocking(move || {
        Ok(st
            .registry
            .archive_month(st.documents.as_ref(), &body.month, now_ms())?)
    })
    .await?;
    Ok(Json(done))
}

/// `dealersync-server archive`: carry every site over into a new month.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveArgs {
    /// The month the new working documents start with, `YYYY-MM`.
    #[arg(long)]
    pub month: String,
    /// A running relay's base URL: the carry-over goes through it (its admin API), so
    /// that connected devices see it at once. Without it the command works on
    /// `--data-dir`, which no relay may be serving.
    #[arg(long, requires = "token")]
    pub server: Option<String>,
    /// An admin token of that relay.
    #[arg(long, env = "DEALERSYNC_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ArchiveArgs {
    /// Runs the carry-over and returns what to print, one line per site.
    pub fn run(&self, data_dir: &Path) -> Result<String, ArchiveError> {
        let done = match (&self.server, &self.token) {
            (Some(server), Some(token)) => self.through_relay(server, token)?,
            _ => {
                let registry = Registry::open_in(data_dir)?;
                registry.archive_month(
                    &StoreDocuments::open_in(data_dir)?,
                    &self.month,
                    now_ms(),
                )?
            }
        };
        Ok(describe(&done))
    }

    fn through_relay(&self, server: &str, token: &str) -> Result<Vec<ArchivedSite>, ArchiveError> {
        let url = format!("{}/api/admin/archive", server.trim_end_matches('/'));
        let failed = |reason: String| ArchiveError::Relay {
            url: url.clone(),
            reason,
        };
        let tls =
            crate::upstream::transport::tls_config(None).map_err(|e| failed(e.to_string()))?;
        let client = crate::upstream::transport::http_client(&tls, REQUEST_TIMEOUT)
            .map_err(|e| failed(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let body = ArchiveRequest {
            month: self.month.clone(),
        };
        let request = client.post(&url).json(&body);
        runtime
            .block_on(crate::upstream::transport::send_json(
                request,
                token,
                url.clone(),
            ))
            .map_err(|e| match e {
                crate::upstream::UpstreamError::Upstream { reason, .. } => failed(reason),
                other => failed(other.to_string()),
            })
    }
}

/// `site<TAB>working document<TAB>archived document or "already in the month"`.
fn describe(done: &[ArchivedSite]) -> String {
    done.iter()
        .map(|s| match &s.archived {
            Some(old) => format!("{}\t{}\tarchived {old}\n", s.site, s.document_id),
            None => format!("{}\t{}\talready in the month\n", s.site, s.document_id),
        })
        .collect()
}
