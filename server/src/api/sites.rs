//! Sites, the network and the audit log: `GET /api/me`, `/api/sites`,
//! `/api/sites/chains`, `/api/network`, `/api/audit`, the admin routes that create, update and deactivate sites, and the
//! server binary's `site add|list`.

use std::path::Path;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use dealersync_core::access::{DocumentOwner, Role};
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{SiteChannel, SiteHeader, SiteKind};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Body, Caller, FormatQuery, blocking, csv_response, wants_csv};
use super::state::ApiState;
use super::tokens::AdminError;
use crate::registry::{ChainRecord, Registry, SiteRecord};

/// Longest `?doc=` accepted before it is parsed as a document id.
pub const MAX_DOCUMENT_ID_CHARS: usize = 64;

/// Most audit rows one request returns.
pub const MAX_AUDIT_ROWS: u32 = 10_000;

/// This module's routes, merged by [`super::router`].
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/sites", get(list_sites))
        .route("/api/sites/chains", get(list_chains))
        .route("/api/network", get(network))
        .route("/api/audit", get(audit))
        .route("/api/admin/sites", post(create_site))
        .route("/api/admin/sites/{id}", patch(update_site))
        .route("/api/admin/sites/{id}/deactivate", post(deactivate_site))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    sub: String,
    role: Role,
    site: String,
    device: Option<String>,
    expires_at: u64,
}

async fn me(caller: Caller) -> Json<Me> {
    let c = caller.0;
    Json(Me {
        sub: c.sub,
        role: c.role,
        site: c.site,
        device: c.device,
        expires_at: c.exp,
    })
}

/// One row of `GET /api/sites`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    /// Site id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Site kind.
    pub kind: SiteKind,
    /// Parent site id.
    pub parent: Option<String>,
    /// Bare automerge-repo document id.
    pub document_id: String,
    /// Whether the site still trades (a deactivated site is read-only).
    pub active: bool,
}

impl From<&SiteRecord> for SiteView {
    fn from(s: &SiteRecord) -> Self {
        SiteView {
            id: s.id.clone(),
            name: s.name.clone(),
            kind: s.kind,
            parent: s.parent.clone(),
            document_id: s.document_id.to_string(),
            active: s.active,
        }
    }
}

async fn list_sites(
    State(st): State<ApiState>,
    caller: Caller,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let csv = wants_csv(&q.format)?;
    let who = caller.principal();
    let reg = st.registry.clone();
    let sites = blocking(move || {
        reg.refresh()?;
        Ok(reg.readable_sites(&who)?)
    })
    .await?;
    let views: Vec<SiteView> = sites.iter().map(SiteView::from).collect();
    if csv {
        csv_response(&views)
    } else {
        Ok(Json(views).into_response())
    }
}

/// One row of `GET /api/sites/chains`: a site's documents, oldest first, the last its
/// working document (docs/growth.md). A downstream relay mirrors them so that it
/// knows the site's archives and applies their grace week as its upstream does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SiteChain {
    /// Site id.
    pub site: String,
    /// Its documents, oldest first; one with no month for a site never carried over.
    pub chain: Vec<ChainRecord>,
}

/// The chains of the sites the caller may read (a separate route, so that
/// `GET /api/sites` keeps its flat rows and its CSV form).
async fn list_chains(State(st): State<ApiState>, caller: Caller) -> Result<Response, ApiError> {
    let who = caller.principal();
    let reg = st.registry.clone();
    let chains = blocking(move || {
        reg.refresh()?;
        let mut out = Vec::new();
        for site in reg.readable_sites(&who)? {
            out.push(SiteChain {
                chain: reg.chain(&site.id)?,
                site: site.id,
            });
        }
        Ok(out)
    })
    .await?;
    Ok(Json(chains).into_response())
}

async fn network(State(st): State<ApiState>, caller: Caller) -> Result<Response, ApiError> {
    let reg = st.registry.clone();
    // `access` may reload the registry from SQLite: on the blocking pool too.
    let readable = blocking(move || {
        Ok(reg
            .network_document()?
            .filter(|id| reg_can_read(&reg, &caller, id)))
    })
    .await?;
    match readable {
        Some(id) => Ok(Json(serde_json::json!({ "documentId": id.to_string() })).into_response()),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the network has not been set up yet",
        )),
    }
}

fn reg_can_read(reg: &Registry, caller: &Caller, doc: &DocumentId) -> bool {
    reg.access(&caller.principal(), doc).can_read()
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    doc: Option<String>,
    limit: Option<u32>,
    format: Option<String>,
}

async fn audit(
    State(st): State<ApiState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let csv = wants_csv(&q.format)?;
    let raw = q
        .doc
        .ok_or_else(|| ApiError::bad_request("missing ?doc=<document id>"))?;
    // A document id is 20 bytes in bs58check, about 28 characters; parsing a long
    // string as base58 takes quadratic time, so anything longer is refused unread.
    if raw.len() > MAX_DOCUMENT_ID_CHARS {
        return Err(ApiError::bad_request(format!(
            "?doc= is {} characters; a document id has at most {MAX_DOCUMENT_ID_CHARS}",
            raw.len()
        )));
    }
    let limit = q.limit.unwrap_or(1000).clamp(1, MAX_AUDIT_ROWS);
    let reg = st.registry.clone();
    let who = caller.principal();
    // Parsing, the query and writing up to 10,000 rows all run on the blocking pool.
    blocking(move || {
        let doc: DocumentId = raw.parse().map_err(|_| ApiError::no_document(&raw))?;
        reg.refresh()?;
        let tree = reg.tree();
        // Unreadable and unknown look the same; readable-but-not-managed is 403.
        if !tree.access(&who, &doc).can_read() {
            return Err(ApiError::no_document(&raw));
        }
        let allowed = match (who.role, tree.owner(&doc)) {
            (Role::Admin, _) => true,
            (Role::HeadOffice, _) => true,
            (Role::Manager, Some(DocumentOwner::Site(site))) => tree.is_within(&site, &who.site),
            _ => false,
        };
        if !allowed {
            return Err(ApiError::forbidden(
                "the audit log is for managers of the site and above",
            ));
        }
        let rows = reg.audit(&doc, limit)?;
        if csv {
            csv_response(&rows)
        } else {
            Ok(Json(rows).into_response())
        }
    })
    .await
}

/// Body of `POST /api/admin/sites`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewSite {
    /// Site id (slug).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Kind, e.g. `agent`.
    pub kind: SiteKind,
    /// Parent site id; absent only for head office.
    #[serde(default)]
    pub parent: Option<String>,
    /// Sales channel (`direct`, `general_agent`, `franchise_agent`, `brand_store`);
    /// optional.
    #[serde(default)]
    pub channel: Option<SiteChannel>,
}

async fn create_site(
    State(st): State<ApiState>,
    caller: Caller,
    Body(body): Body<NewSite>,
) -> Result<(StatusCode, Json<SiteView>), ApiError> {
    caller.require_admin()?;
    let site = blocking(move || {
        Ok(st.registry.create_site(
            st.documents.as_ref(),
            SiteHeader {
                id: body.id,
                name: body.name,
                kind: body.kind,
                parent: body.parent,
                channel: body.channel,
            },
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(SiteView::from(&site))))
}

/// Body of `PATCH /api/admin/sites/{id}`: rename and/or move.
#[derive(Debug, Clone, Deserialize)]
pub struct SiteUpdate {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// New parent site id.
    #[serde(default)]
    pub parent: Option<String>,
}

async fn update_site(
    State(st): State<ApiState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    Body(body): Body<SiteUpdate>,
) -> Result<Json<SiteView>, ApiError> {
    caller.require_admin()?;
    if body.name.is_none() && body.parent.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: give \"name\" and/or \"parent\"",
        ));
    }
    if body.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::bad_request("a site needs a name"));
    }
    let site = blocking(move || {
        let docs = st.documents.as_ref();
        let mut site = st.registry.site(&id)?;
        // The move first: it is the part that can be refused, and a refused request
        // should change nothing.
        if let Some(parent) = &body.parent
            && site.parent.as_deref() != Some(parent.as_str())
        {
            site = st.registry.move_site(docs, &id, parent)?;
        }
        if let Some(name) = &body.name {
            site = st.registry.rename_site(docs, &id, name)?;
        }
        Ok(site)
    })
    .await?;
    Ok(Json(SiteView::from(&site)))
}

async fn deactivate_site(
    State(st): State<ApiState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<SiteView>, ApiError> {
    caller.require_admin()?;
    let site =
        blocking(move || Ok(st.registry.deactivate_site(st.documents.as_ref(), &id)?)).await?;
    Ok(Json(SiteView::from(&site)))
}

/// `dealersync-server site add|list`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SiteCommand {
    /// Create a site and its document (with the server stopped, or use the admin API).
    Add {
        /// Site id, e.g. `agent-7`.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// head_office, distribution_centre, agent, showroom or roadshow.
        #[arg(long)]
        kind: SiteKind,
        /// Parent site id.
        #[arg(long)]
        parent: Option<String>,
        /// Sales channel: direct (直销), general_agent (总代理), franchise_agent
        /// (特许代理) or brand_store (品牌专卖).
        #[arg(long)]
        channel: Option<SiteChannel>,
    },
    /// List sites as `id kind parent documentId name`.
    List,
}

impl SiteCommand {
    /// Runs the command against `data_dir` and returns what to print.
    pub fn run(&self, data_dir: &Path) -> Result<String, AdminError> {
        let registry = Registry::open_in(data_dir)?;
        match self {
            SiteCommand::Add {
                id,
                name,
                kind,
                parent,
                channel,
            } => {
                let docs = crate::registry::StoreDocuments::open_in(data_dir)?;
                let site = registry.create_site(
                    &docs,
                    SiteHeader {
                        id: id.clone(),
                        name: name.clone(),
                        kind: *kind,
                        parent: parent.clone(),
                        channel: *channel,
                    },
                )?;
                Ok(site.document_id.to_string())
            }
            SiteCommand::List => {
                let mut out = String::new();
                for s in registry.sites()? {
                    out.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}{}\n",
                        s.id,
                        s.kind,
                        s.parent.as_deref().unwrap_or("-"),
                        s.document_id,
                        s.name,
                        if s.active { "" } else { "\t(deactivated)" }
                    ));
                }
                Ok(out)
            }
        }
    }
}
