//! The JSON API: which sites and documents a caller may sync, the admin operations
//! (sites, tokens, revocation) and the audit log. Also the same admin operations for
//! the server binary's subcommands (`token`, `revoke`, `site add|list`), so that HTTP
//! and CLI cannot drift apart.
//!
//! Every route needs a valid token (401 with the reason otherwise). A document the
//! caller may not read is answered 404 exactly as a document that does not exist; a
//! route the caller's role may not use is 403.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use dealersync_core::access::{Claims, DocumentOwner, Principal, Role};
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{SiteChannel, SiteHeader, SiteKind};
use dealersync_core::spreadsheet::neutralise;
use serde::{Deserialize, Serialize};

use crate::auth::{AuthError, Authenticator, TokenRequest, parse_ttl};
use crate::registry::{DocumentWriter, Registry, RegistryError, Revocation, SiteRecord};
use crate::telemetry::clip;

/// Default lifetime of tokens issued through the API and the CLI.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);

/// Longest `?doc=` accepted before it is parsed as a document id.
pub const MAX_DOCUMENT_ID_CHARS: usize = 64;

/// Most audit rows one request returns.
pub const MAX_AUDIT_ROWS: u32 = 10_000;

use crate::admission::admit_site;
pub use crate::admission::{SyncAuth, extensions};

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Verifies (and, for the admin API, issues) tokens.
    pub auth: Arc<Authenticator>,
    /// Sites, tokens, revocations, audit.
    pub registry: Arc<Registry>,
    /// Writes site and network documents; the relay passes one that goes through its
    /// sync engine so that connected peers see admin changes at once.
    pub documents: Arc<dyn DocumentWriter>,
}

impl FromRef<ApiState> for Arc<Authenticator> {
    fn from_ref(s: &ApiState) -> Self {
        s.auth.clone()
    }
}

impl FromRef<ApiState> for Arc<Registry> {
    fn from_ref(s: &ApiState) -> Self {
        s.registry.clone()
    }
}

/// The `/api/...` routes. Merge into the relay's router: `app.merge(api::router(state))`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/sites", get(list_sites))
        .route("/api/network", get(network))
        .route("/api/audit", get(audit))
        .route("/api/admin/sites", post(create_site))
        .route("/api/admin/sites/{id}", patch(update_site))
        .route("/api/admin/sites/{id}/deactivate", post(deactivate_site))
        .route("/api/admin/tokens", get(list_tokens).post(issue_token))
        .route("/api/admin/revocations", post(revoke))
        .with_state(state.clone())
        .merge(crate::signin_routes::router(state.clone()))
        .merge(crate::trust_routes::router(state.clone()))
        .merge(crate::archive::router(state.clone()))
        .merge(crate::web::router(state))
}

/// An API error: a status and a JSON body `{"error": message, "kind": kind}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// The answer for a document that does not exist or that the caller may not read:
    /// the same for both, so that ids cannot be probed.
    pub fn no_document(doc: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no document {}", clip(doc)),
        )
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    kind: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: &self.message,
            kind: self.kind,
        });
        let mut resp = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: tell the client which scheme and why.
            let desc = self.message.replace(['"', '\\'], "'");
            if let Ok(v) = HeaderValue::from_str(&format!(
                "Bearer error=\"invalid_token\", error_description=\"{desc}\""
            )) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if e.is_token_fault() {
            ApiError::new(StatusCode::UNAUTHORIZED, e.kind(), e.to_string())
        } else {
            tracing::error!(error = %e, "authentication failed on the server side");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.kind(), e.to_string())
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match &e {
            RegistryError::UnknownSite(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_site", e.to_string())
            }
            RegistryError::SiteExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "site_exists", e.to_string())
            }
            RegistryError::Invalid(_) | RegistryError::Domain(_) => {
                ApiError::bad_request(e.to_string())
            }
            RegistryError::Store(s) if s.kind() == "busy" => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
            }
            _ => {
                tracing::error!(error = %e, "registry operation failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

/// The authenticated caller of a request: its verified claims.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl Caller {
    /// The principal the policy sees.
    pub fn principal(&self) -> Principal {
        self.0.principal()
    }

    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the admin API needs an admin token; this token's role is {}",
                self.0.role
            )))
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
    Arc<Registry>: FromRef<S>,
{
    type Rejection = ApiError;

    /// Verifies the token on the blocking pool: the revocation check and the registry
    /// refresh read SQLite, and a burst of API calls must not hold up the async
    /// workers that answer `/healthz` and the sockets.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let registry = Arc::<Registry>::from_ref(state);
        let (headers, uri) = (parts.headers.clone(), parts.uri.clone());
        let method = parts.method.clone();
        blocking(move || {
            let (claims, place) = auth.authenticate(&headers, &uri)?;
            crate::signin_routes::check_same_origin(&method, &headers, place)?;
            admit_site(&registry, &claims)?;
            Ok(Caller(claims))
        })
        .await
    }
}

/// A JSON body whose rejection (bad JSON, unknown enum value, wrong content type) is
/// answered in the API's JSON error format instead of axum's plain text.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            // serde quotes the offending value, which may be megabytes long.
            Err(r) => Err(ApiError::new(
                r.status(),
                "bad_request",
                crate::telemetry::clip_to(&r.body_text(), 300),
            )),
        }
    }
}

/// Runs registry work (SQLite, fsync) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("task failed: {e}"),
        )
    })?
}

/// `?format=csv` on tabular routes.
#[derive(Debug, Deserialize, Default)]
struct FormatQuery {
    format: Option<String>,
}

fn wants_csv(format: &Option<String>) -> Result<bool, ApiError> {
    match format.as_deref() {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown format {other:?}; use json or csv"
        ))),
    }
}

/// Rows as CSV, every cell passed through [`neutralise`] so that a site name or user
/// typed as `=HYPERLINK(...)` opens as text in a spreadsheet.
fn csv_response<T: Serialize>(rows: &[T]) -> Result<Response, ApiError> {
    let internal = |e: &dyn std::fmt::Display| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    };
    // Serialise first (the csv serializer writes headers in field order), then write
    // the cells again neutralised.
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| internal(&e))?;
    }
    let plain = w.into_inner().map_err(|e| internal(&e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(plain.as_slice());
    let mut w = csv::Writer::from_writer(Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| internal(&e))?;
        w.write_record(record.iter().map(|c| neutralise(c).into_owned()))
            .map_err(|e| internal(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| internal(&e))?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response())
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
                let store = crate::storage::SqliteStore::open(
                    data_dir,
                    &crate::storage::StoreOptions::default(),
                )
                .map_err(|e| RegistryError::Invalid(e.to_string()))?;
                let docs = crate::registry::StoreDocuments(Arc::new(store));
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
