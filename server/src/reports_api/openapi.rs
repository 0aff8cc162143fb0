//! `GET /api/openapi.json`: an OpenAPI 3.1 description of the relay's whole HTTP API,
//! built from the route table below (method, path, parameters, who may call it, what
//! it answers). `tests/openapi.rs` calls every documented route on the real binary, so
//! a route that is documented but not served fails the build's tests.

use axum::Json;
use serde_json::{Map, Value, json};

use super::KINDS;

/// One documented route.
pub struct RouteDoc {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path, with `{name}` for path parameters.
    pub path: &'static str,
    /// Tag (section of the API).
    pub tag: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Who may call it, and what it answers.
    pub description: &'static str,
    /// Query parameters: name and meaning.
    pub query: &'static [(&'static str, &'static str)],
    /// The JSON body, described, when the route takes one.
    pub body: Option<&'static str>,
}

const REPORT_QUERY: &[(&str, &str)] = &[
    (
        "period",
        "2026, 2026-Q4, 2026-11, 2026-W45 or 2026-11-03 (CST); default: the current month",
    ),
    (
        "site",
        "the subtree to report on; default: the caller's site (consultant, manager) or the whole network",
    ),
    (
        "level",
        "KPI/board rows of these levels only: region, site, team, consultant (comma-separated)",
    ),
    (
        "group",
        "stock summed by model, site and/or status (comma-separated)",
    ),
    ("format", "json (default), csv or xlsx"),
    ("lang", "spreadsheet headers: zh (default) or en"),
    (
        "slowMoverDays",
        "ageing and order plan: the slow-mover threshold in days (default 90)",
    ),
    (
        "safetyPercent",
        "order plan: safety stock as a percentage of the forecast (default 10)",
    ),
    (
        "safetyUnits",
        "order plan: safety stock as a fixed number of units per model",
    ),
];

/// Every route of the relay's HTTP API.
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/healthz",
        tag: "relay",
        summary: "Health",
        description: "`ok` while the sync engine runs; 503 once it stopped. No token.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        tag: "relay",
        summary: "Prometheus metrics",
        description: "Text format. No token.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/sync",
        tag: "relay",
        summary: "WebSocket sync (automerge-repo protocol 1)",
        description: "Upgrade to a WebSocket; one CBOR message per binary frame. Token in the Authorization header, ?token= or Sec-WebSocket-Protocol.",
        query: &[("token", "the access token")],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/me",
        tag: "identity",
        summary: "Who am I",
        description: "{sub, role, site, device, expiresAt}.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/sites",
        tag: "identity",
        summary: "Sites the caller may read",
        description: "[{id, name, kind, parent, documentId, active, createdAt}].",
        query: &[("format", "json or csv")],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/sites/chains",
        tag: "identity",
        summary: "Each readable site's chain of monthly documents",
        description: "[{site, chain: [{documentId, month, nextMonth, writableUntil}]}], oldest first, the last the working document; an archive is writable by devices until writableUntil (UTC ms). Downstream relays mirror it.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/network",
        tag: "identity",
        summary: "The network document's id",
        description: "{documentId}; 404 before the network exists.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/audit",
        tag: "identity",
        summary: "Audit log of a document",
        description: "Managers of the site or above, head office, admins. [{doc, changeHash, actor, user, device, receivedAt}], newest first.",
        query: &[
            ("doc", "document id"),
            ("limit", "rows (at most 10000)"),
            ("format", "json or csv"),
        ],
        body: None,
    },
    RouteDoc {
        method: "post",
        path: "/api/admin/sites",
        tag: "admin",
        summary: "Create a site",
        description: "Admin token.",
        query: &[],
        body: Some("{id, name, kind, parent?, channel?}"),
    },
    RouteDoc {
        method: "patch",
        path: "/api/admin/sites/{id}",
        tag: "admin",
        summary: "Rename or move a site",
        description: "Admin token.",
        query: &[],
        body: Some("{name?, parent?, channel?}"),
    },
    RouteDoc {
        method: "post",
        path: "/api/admin/sites/{id}/deactivate",
        tag: "admin",
        summary: "Deactivate a site",
        description: "Admin token.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "post",
        path: "/api/admin/archive",
        tag: "admin",
        summary: "Carry every site over into a new month",
        description: "Admin token. Each site's document becomes the archive of the months before and a new working document starts with `month` (docs/growth.md); a site already working in that month is left as it is. Answers, per site, its working document and the archived one (null when nothing was done).",
        query: &[],
        body: Some("{month}"),
    },
    RouteDoc {
        method: "get",
        path: "/api/admin/tokens",
        tag: "admin",
        summary: "Issued tokens",
        description: "Admin token.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "post",
        path: "/api/admin/tokens",
        tag: "admin",
        summary: "Issue a token",
        description: "Admin token. 201 {token, jti, expiresAt}.",
        query: &[],
        body: Some("{sub, role, site, device?, ttl?}"),
    },
    RouteDoc {
        method: "post",
        path: "/api/admin/revocations",
        tag: "admin",
        summary: "Revoke a token or a device",
        description: "Admin token. 204.",
        query: &[],
        body: Some("{jti} or {device}"),
    },
    RouteDoc {
        method: "get",
        path: "/api/revocations",
        tag: "admin",
        summary: "The revocation feed, for downstream relays",
        description: "Relay, head office and admin tokens (403 otherwise). 200 {revocations: [{seq, kind: jti|device, value, revokedAt}], last, more}: every revocation after `after`, oldest first, at most 1000; ask again with after=last while more. Cache-Control: no-store. See docs/auth.md.",
        query: &[(
            "after",
            "the `last` of the previous page; 0 (default) for the whole feed",
        )],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/downstreams",
        tag: "admin",
        summary: "The downstream relays that sync with this relay",
        description: "Head office and admin tokens (403 otherwise). 200 {relays: [{relay, site, connected, firstSeen, lastConnected, lastContact, silentSecs, connects}]}: every relay token that has synced here, by subject and site, with when a frame last came from it (kept across restarts). See docs/tiers.md.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/.well-known/jwks.json",
        tag: "admin",
        summary: "The public keys that verify this relay's tokens",
        description: "No token. 200 application/jwk-set+json {keys: [{kty: OKP, crv: Ed25519, x, kid, alg: EdDSA, use: sig}]}: the relay's own keys and those it trusts from upstream; cacheable (max-age 60, ETag, 304 on If-None-Match). See docs/auth.md.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "post",
        path: "/api/admin/sign-in-codes",
        tag: "sign-in",
        summary: "Issue a one-time sign-in code",
        description: "Admin (any), head office (any role but admin), manager (consultants and managers of his subtree). 201 {code, signInUrl, appUrl, appQrSvg, expiresAt, sub, role, site, device}. See docs/auth.md.",
        query: &[],
        body: Some("{user, role, site, device?, validFor?, sessionTtl?}"),
    },
    RouteDoc {
        method: "post",
        path: "/api/sign-in",
        tag: "sign-in",
        summary: "Exchange a code for a browser session",
        description: "No token. 200 {sub, role, site, expiresAt, jti} with an HttpOnly SameSite=Strict session cookie; 401 invalid_code; 429 rate_limited with Retry-After.",
        query: &[],
        body: Some("{code}"),
    },
    RouteDoc {
        method: "post",
        path: "/api/sign-in/device",
        tag: "sign-in",
        summary: "Exchange a code for a device token (phone enrolment)",
        description: "No token. 200 {token, jti, expiresAt, sub, role, site, device}; 401 invalid_code; 429 rate_limited.",
        query: &[],
        body: Some("{code, device?}"),
    },
    RouteDoc {
        method: "post",
        path: "/api/sign-out",
        tag: "sign-in",
        summary: "Sign out",
        description: "Revokes the session's token (cookie or bearer) and clears the cookie. 204.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/board",
        tag: "pages",
        summary: "The live sales board (HTML)",
        description: "Signed in (session cookie); otherwise a redirect to /signin. See docs/board.md.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/console",
        tag: "pages",
        summary: "The console for managers and head office (HTML)",
        description: "Manager, head office or admin session; 403 page for a consultant; otherwise a redirect to /signin.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/signin",
        tag: "pages",
        summary: "The sign-in page (HTML)",
        description: "No token. `?code=` fills in the code; the button uses it.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api-docs",
        tag: "pages",
        summary: "This description, readable (HTML, offline)",
        description: "No token.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/reports/{kind}",
        tag: "reports",
        summary: "A report",
        description: "kind: stock, ageing, pipeline, forecast, forecast-submissions, order-plan, kpi, board, conflicts (each with the options that settle it: POST /api/conflicts/{id}/resolve). Covers the documents the token may read; sites not readable or missing are reported as not available. See docs/api.md and docs/reports.md.",
        query: REPORT_QUERY,
        body: None,
    },
    RouteDoc {
        method: "post",
        path: "/api/conflicts/{id}/resolve",
        tag: "reports",
        summary: "Settle a business conflict",
        description: "id: a conflict id from the conflicts report, which also lists each conflict's `choices` {choose: customer|site|quantity|count, options: [{value, label, site, status, at}]}, the customers' `names` and whether the caller may settle it (`resolvable`). A manager of every site the resolution writes, or an admin (head office reads site documents only: 403). Written through the relay's engine and audited under the caller. 200 {resolved, kind, chosen, sites}; 400 when `keep` is not one of the options; 404 when no such conflict is open (settled already, or not visible to the caller).",
        query: &[],
        body: Some(
            "{keep}: a customer or site id of the options (or a unique prefix), or the figure for a forecast or part count",
        ),
    },
    RouteDoc {
        method: "get",
        path: "/api/reports/events",
        tag: "reports",
        summary: "Change stream (server-sent events)",
        description: "`ready`, then `change` {sites, network} within moments of each commit, filtered to what the token may read.",
        query: &[
            ("site", "only sites of this subtree"),
            ("token", "the access token, for EventSource"),
        ],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/targets",
        tag: "planning",
        summary: "Targets of the caller's scope",
        description: "{targets: [{site, consultant, period, target}]}.",
        query: &[("site", "subtree"), ("period", "only this period key")],
        body: None,
    },
    RouteDoc {
        method: "put",
        path: "/api/targets",
        tag: "planning",
        summary: "Set targets",
        description: "Site targets: head office, admins, or a manager for the sites below his own. Consultant targets: whoever may write the site document. All entries are checked before any is written.",
        query: &[],
        body: Some(
            "{targets: [{site, consultant?, period, units, revenue, visits?, calls?, testDrives?}]}",
        ),
    },
    RouteDoc {
        method: "post",
        path: "/api/targets/split",
        tag: "planning",
        summary: "Propose a split of a target",
        description: "Into periods, the sites below, or consultants; by working days, last year's sales, even or given weights. Parts add up exactly. Nothing is written.",
        query: &[],
        body: Some(
            "{site, consultant?, period, into, basis, total?, holidays?, weights?, members?}",
        ),
    },
    RouteDoc {
        method: "get",
        path: "/api/targets/check",
        tag: "planning",
        summary: "Do a target's parts add up",
        description: "Σ sub-period targets and Σ child-site targets against the target: the difference per figure.",
        query: &[("site", "the site"), ("period", "the period")],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/catalogue",
        tag: "planning",
        summary: "Model catalogue and discount limits",
        description: "{models, discountLimits} (fen).",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "put",
        path: "/api/catalogue/{model}",
        tag: "planning",
        summary: "Add or change a model",
        description: "Head office and admins.",
        query: &[],
        body: Some("{name, trims?, cost, listPrice} (fen)"),
    },
    RouteDoc {
        method: "put",
        path: "/api/discount-limits/{role}",
        tag: "planning",
        summary: "Set a role's discount limit",
        description: "Head office and admins. role: consultant, manager, head_office, admin.",
        query: &[],
        body: Some("{limit} (fen)"),
    },
    RouteDoc {
        method: "get",
        path: "/api/contests",
        tag: "planning",
        summary: "Sales contests and their standings",
        description: "{contests: [{id, name, period, metric, members, teams: [{rank, name, value, members, membersNotAvailable}], leaders, bottom}]}.",
        query: &[("site", "subtree")],
        body: None,
    },
    RouteDoc {
        method: "put",
        path: "/api/contests/{id}",
        tag: "planning",
        summary: "Define or change a sales contest",
        description: "Head office and admins; a manager for his subtree.",
        query: &[],
        body: Some("{name, period, metric, members, teams: [{name, members}], site?}"),
    },
    RouteDoc {
        method: "delete",
        path: "/api/contests/{id}",
        tag: "planning",
        summary: "Remove a sales contest",
        description: "Whoever may define it. 204.",
        query: &[],
        body: None,
    },
    RouteDoc {
        method: "get",
        path: "/api/openapi.json",
        tag: "relay",
        summary: "This description",
        description: "OpenAPI 3.1. No token.",
        query: &[],
        body: None,
    },
];

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let mut p = json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
                if name == "kind" {
                    p["schema"]["enum"] = json!(KINDS);
                }
                p
            })
            .collect();
        params.extend(r.query.iter().map(|(name, d)| {
            json!({"name": name, "in": "query", "required": false, "description": d, "schema": {"type": "string"}})
        }));
        let open = matches!(r.path, "/healthz" | "/metrics" | "/api/openapi.json");
        let mut op = json!({
            "tags": [r.tag],
            "summary": r.summary,
            "description": r.description,
            "parameters": params,
            "responses": {
                "200": {"description": "Success"},
                "400": {"description": "Bad argument: {error, kind}"},
                "401": {"description": "Missing or invalid token"},
                "403": {"description": "The role may not do this"},
                "404": {"description": "Not found, or not readable by this token"},
            },
        });
        if open {
            op["security"] = json!([]);
        }
        if let Some(body) = r.body {
            op["requestBody"] = json!({
                "required": true,
                "description": body,
                "content": {"application/json": {"schema": {"type": "object"}}},
            });
        }
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dealersync relay",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Offline-first sync for a car dealer's sales network: WebSocket sync, reports, planning and administration. See docs/api.md and docs/auth.md.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    })
}

/// `GET /api/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}
