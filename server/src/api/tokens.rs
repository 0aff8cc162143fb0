//! Tokens and revocations: the admin routes that issue, list and revoke, the same
//! operations for the server binary's `token` and `revoke`, and why they fail.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dealersync_core::access::Role;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Body, Caller, FormatQuery, blocking, csv_response, wants_csv};
use super::state::ApiState;
use crate::auth::{AuthError, Authenticator, TokenRequest, parse_ttl};
use crate::registry::{Registry, RegistryError, Revocation};

/// Default lifetime of tokens issued through the API and the CLI.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);

/// This module's routes, merged by [`super::router`].
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/admin/tokens", get(list_tokens).post(issue_token))
        .route("/api/admin/revocations", post(revoke))
}

/// Body of `POST /api/admin/tokens`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewToken {
    /// User.
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Site (must exist).
    pub site: String,
    /// Device.
    #[serde(default)]
    pub device: Option<String>,
    /// Lifetime, e.g. `30d` (default 30 days).
    #[serde(default)]
    pub ttl: Option<String>,
}

/// Answer of `POST /api/admin/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedView {
    /// The JWT.
    pub token: String,
    /// Its id, for revocation.
    pub jti: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
}

async fn issue_token(
    State(st): State<ApiState>,
    caller: Caller,
    Body(body): Body<NewToken>,
) -> Result<(StatusCode, Json<IssuedView>), ApiError> {
    caller.require_admin()?;
    let ttl = match &body.ttl {
        Some(t) => parse_ttl(t).map_err(ApiError::bad_request)?,
        None => DEFAULT_TTL,
    };
    let req = TokenRequest {
        sub: body.sub,
        role: body.role,
        site: body.site,
        device: body.device,
        ttl,
    };
    let issued = blocking(move || Ok(issue_recorded(&st.auth, &st.registry, &req)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedView {
            token: issued.token,
            jti: issued.claims.jti,
            expires_at: issued.claims.exp,
        }),
    ))
}

async fn list_tokens(
    State(st): State<ApiState>,
    caller: Caller,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let csv = wants_csv(&q.format)?;
    let rows = blocking(move || Ok(st.registry.issued_tokens()?)).await?;
    if csv {
        csv_response(&rows)
    } else {
        Ok(Json(rows).into_response())
    }
}

/// Body of `POST /api/admin/revocations`: exactly one of the two.
#[derive(Debug, Clone, Deserialize)]
pub struct RevokeBody {
    /// A token id.
    #[serde(default)]
    pub jti: Option<String>,
    /// A device.
    #[serde(default)]
    pub device: Option<String>,
}

async fn revoke(
    State(st): State<ApiState>,
    caller: Caller,
    Body(body): Body<RevokeBody>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let what = match (body.jti, body.device) {
        (Some(j), None) => Revocation::Token(j),
        (None, Some(d)) => Revocation::Device(d),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of \"jti\" and \"device\"",
            ));
        }
    };
    blocking(move || Ok(st.registry.revoke(&what)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why an admin operation from the API or the CLI failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Signing or key setup failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Auth(a @ AuthError::InvalidClaims(_)) => {
                ApiError::bad_request(a.to_string())
            }
            AdminError::Auth(a) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, a.kind(), a.to_string())
            }
            AdminError::Registry(r) => r.into(),
        }
    }
}

/// Issues a token for an existing site and records it for `GET /api/admin/tokens`.
pub fn issue_recorded(
    auth: &Authenticator,
    registry: &Registry,
    req: &TokenRequest,
) -> Result<crate::auth::IssuedToken, AdminError> {
    if req.ttl > crate::auth::MAX_TTL {
        return Err(RegistryError::Invalid(format!(
            "a token lives at most {} days",
            crate::auth::MAX_TTL.as_secs() / 86_400
        ))
        .into());
    }
    let site = registry.site(&req.site)?;
    if !site.active {
        return Err(RegistryError::Invalid(format!(
            "site {} is deactivated; tokens are issued for active sites only",
            site.id
        ))
        .into());
    }
    let issued = auth.issue(req)?;
    registry.record_issued(&issued.claims)?;
    tracing::info!(sub = %req.sub, role = %req.role, site = %req.site, jti = %issued.claims.jti, "issued token");
    Ok(issued)
}

/// `dealersync-server token ...`: issue a token (the JWT alone goes to stdout).
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// User id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// consultant, manager, head_office or admin.
    #[arg(long)]
    pub role: Role,
    /// The user's site id.
    #[arg(long)]
    pub site: String,
    /// Device id, so that the device can be revoked alone.
    #[arg(long)]
    pub device: Option<String>,
    /// Lifetime: 30d, 12h, 15m, 90s, 2w.
    #[arg(long, default_value = "30d", value_parser = parse_ttl)]
    pub ttl: Duration,
}

impl TokenArgs {
    /// Issues the token against the registry in `data_dir` and returns the JWT.
    pub fn run(
        &self,
        data_dir: &Path,
        auth: crate::auth::AuthConfig,
    ) -> Result<String, AdminError> {
        let registry = Arc::new(Registry::open_in(data_dir)?);
        let authn = Authenticator::open(data_dir, auth, registry.clone())?;
        let issued = issue_recorded(
            &authn,
            &registry,
            &TokenRequest {
                sub: self.sub.clone(),
                role: self.role,
                site: self.site.clone(),
                device: self.device.clone(),
                ttl: self.ttl,
            },
        )?;
        Ok(issued.token)
    }
}

/// `dealersync-server revoke --jti J | --device ID`.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct RevokeArgs {
    /// Revoke one token by its id.
    #[arg(long)]
    pub jti: Option<String>,
    /// Revoke every token naming this device.
    #[arg(long)]
    pub device: Option<String>,
}

impl RevokeArgs {
    /// Records the revocation in `data_dir`; a running server honours it on the next
    /// verification.
    pub fn run(&self, data_dir: &Path) -> Result<(), AdminError> {
        let registry = Registry::open_in(data_dir)?;
        let what = match (&self.jti, &self.device) {
            (Some(j), _) => Revocation::Token(j.clone()),
            (None, Some(d)) => Revocation::Device(d.clone()),
            (None, None) => {
                return Err(RegistryError::Invalid("give --jti or --device".into()).into());
            }
        };
        registry.revoke(&what)?;
        Ok(())
    }
}
