//! The JSON API over real HTTP: what each role sees, the admin operations, the audit
//! log, and the error answers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use dealersync_core::access::Role;
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::NetworkDocument;
use dealersync_core::store::{AuditRecord, Store, WriteBatch};
use dealersync_server::api::{ApiState, IssuedView, SiteView, router};
use dealersync_server::auth::{Authenticator, TokenRequest};
use dealersync_server::registry::{Registry, StoreDocuments};
use dealersync_server::storage::SqliteStore;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Server {
    _dir: tempfile::TempDir,
    base: String,
    store: Arc<SqliteStore>,
    registry: Arc<Registry>,
    auth: Arc<Authenticator>,
    http: reqwest::Client,
}

impl Server {
    async fn start() -> Server {
        let common::Network {
            dir,
            store,
            registry,
            auth,
        } = common::network(|id| format!("{id} 站"));
        let state = ApiState {
            auth: auth.clone(),
            registry: registry.clone(),
            documents: Arc::new(StoreDocuments(store.clone())),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Server {
            _dir: dir,
            base: format!("http://{addr}"),
            store,
            registry,
            auth,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    fn token(&self, role: Role, site: &str) -> String {
        self.auth
            .issue(&TokenRequest {
                sub: format!("{role}@{site}"),
                role,
                site: site.into(),
                device: Some(format!("dev-{role}-{site}")),
                ttl: Duration::from_secs(600),
            })
            .unwrap()
            .token
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn site_ids(&self, token: &str) -> Vec<String> {
        let (status, body) = self.get("/api/sites", Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let sites: Vec<SiteView> = serde_json::from_value(body).unwrap();
        let mut ids: Vec<String> = sites.into_iter().map(|s| s.id).collect();
        ids.sort();
        ids
    }

    fn network(&self) -> NetworkDocument {
        let id = self.registry.network_document().unwrap().unwrap();
        let stored = self.store.load(&id).unwrap().unwrap();
        NetworkDocument::read(&automerge::AutoCommit::load(&stored.chunks.concat()).unwrap())
            .unwrap()
    }
}

#[tokio::test]
async fn missing_and_bad_tokens_get_401_with_the_reason() {
    let s = Server::start().await;
    let resp = s
        .http
        .get(format!("{}/api/sites", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "missing");
    assert!(body["error"].as_str().unwrap().contains("Authorization"));

    let (status, body) = s.get("/api/sites", Some("x.y.z")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["kind"], "malformed");
}

#[tokio::test]
async fn each_role_lists_the_sites_it_may_read() {
    let s = Server::start().await;
    let all = ["agent-a", "dc-north", "dc-south", "hq"];
    assert_eq!(
        s.site_ids(&s.token(Role::Consultant, "agent-a")).await,
        ["agent-a"]
    );
    assert_eq!(
        s.site_ids(&s.token(Role::Consultant, "dc-north")).await,
        ["dc-north"]
    );
    assert_eq!(
        s.site_ids(&s.token(Role::Manager, "dc-north")).await,
        ["agent-a", "dc-north"]
    );
    assert_eq!(
        s.site_ids(&s.token(Role::Manager, "dc-south")).await,
        ["dc-south"]
    );
    assert_eq!(s.site_ids(&s.token(Role::HeadOffice, "hq")).await, all);
    assert_eq!(s.site_ids(&s.token(Role::Admin, "hq")).await, all);

    // The listed document ids are the registry's, bare bs58check.
    let (_, body) = s
        .get("/api/sites", Some(&s.token(Role::Consultant, "agent-a")))
        .await;
    let doc = body[0]["documentId"].as_str().unwrap();
    assert_eq!(
        doc.parse::<DocumentId>().unwrap(),
        s.registry.site("agent-a").unwrap().document_id
    );
    assert!(!doc.starts_with("automerge:"));
    assert_eq!(body[0]["parent"], "dc-north");
    assert_eq!(body[0]["kind"], "agent");
}

#[tokio::test]
async fn token_in_the_query_works_for_http_too() {
    let s = Server::start().await;
    let t = s.token(Role::Manager, "dc-north");
    let (status, body) = s.get(&format!("/api/network?token={t}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["documentId"].as_str().unwrap(),
        s.registry.network_document().unwrap().unwrap().to_string()
    );
}

#[tokio::test]
async fn sites_as_csv() {
    let s = Server::start().await;
    let t = s.token(Role::Manager, "dc-north");
    let resp = s
        .http
        .get(format!("{}/api/sites?format=csv", s.base))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = resp.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,name,kind,parent,documentId,active"
    );
    assert_eq!(lines.count(), 2, "{text}");
    let (status, _) = s.get("/api/sites?format=xml", Some(&t)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admin_api_manages_sites_and_non_admins_are_forbidden() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "hq");
    let ho = s.token(Role::HeadOffice, "hq");
    use reqwest::Method;
    let new = json!({"id": "show-1", "name": "万达展厅", "kind": "showroom", "parent": "dc-north"});

    let (status, body) = s
        .send(Method::POST, "/api/admin/sites", &ho, new.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].as_str().unwrap().contains("admin"));

    let (status, body) = s
        .send(Method::POST, "/api/admin/sites", &admin, new.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], "show-1");
    assert_eq!(s.network().sites["show-1"].name, "万达展厅");
    let manager = s.token(Role::Manager, "dc-north");
    assert!(s.site_ids(&manager).await.contains(&"show-1".to_string()));

    let (status, _) = s.send(Method::POST, "/api/admin/sites", &admin, new).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = s
        .send(
            Method::POST,
            "/api/admin/sites",
            &admin,
            json!({"id": "x", "name": "x", "kind": "agent", "parent": "nowhere"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = s
        .send(
            Method::POST,
            "/api/admin/sites",
            &admin,
            json!({"id": "x", "name": "x", "kind": "castle", "parent": "hq"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("castle"), "{body}");

    // Move to dc-south and rename in one PATCH.
    let (status, body) = s
        .send(
            Method::PATCH,
            "/api/admin/sites/show-1",
            &admin,
            json!({"name": "南区展厅", "parent": "dc-south"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["parent"], "dc-south");
    assert!(!s.site_ids(&manager).await.contains(&"show-1".to_string()));
    assert_eq!(s.network().sites["show-1"].name, "南区展厅");

    let (status, body) = s
        .send(
            Method::POST,
            "/api/admin/sites/dc-north/deactivate",
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s
        .send(
            Method::POST,
            "/api/admin/sites/show-1/deactivate",
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], false);
    assert!(!s.network().sites.contains_key("show-1"));
}

#[tokio::test]
async fn admin_issues_lists_and_revokes_tokens() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "hq");
    use reqwest::Method;
    let (status, body) = s
        .send(
            Method::POST,
            "/api/admin/tokens",
            &admin,
            json!({"sub": "chen.jie", "role": "consultant", "site": "agent-a", "device": "pad-1", "ttl": "7d"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let issued: IssuedView = serde_json::from_value(body).unwrap();
    assert_eq!(s.site_ids(&issued.token).await, ["agent-a"]);

    let (status, list) = s.get("/api/admin/tokens", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["jti"] == issued.jti.as_str())
        .expect("issued token listed");
    assert_eq!(row["device"], "pad-1");
    assert_eq!(row["revoked"], false);

    let (status, _) = s
        .send(
            Method::POST,
            "/api/admin/revocations",
            &admin,
            json!({"device": "pad-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s.get("/api/sites", Some(&issued.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["kind"], "device_revoked");

    let (status, _) = s
        .send(Method::POST, "/api/admin/revocations", &admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .send(
            Method::POST,
            "/api/admin/tokens",
            &admin,
            json!({"sub": "x", "role": "admin", "site": "nowhere"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .send(
            Method::POST,
            "/api/admin/tokens",
            &s.token(Role::Manager, "hq"),
            json!({"sub": "x", "role": "admin", "site": "hq"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn audit_is_for_managers_above_and_denied_looks_like_missing() {
    let s = Server::start().await;
    let doc = s.registry.site("agent-a").unwrap().document_id;
    s.store
        .commit(&WriteBatch {
            audit: vec![AuditRecord {
                doc,
                change_hash: "ab".repeat(32),
                actor: "cd".repeat(16),
                user: Some("chen.jie".into()),
                device: Some("pad-1".into()),
                received_at: 1_780_000_000_000,
            }],
            ..WriteBatch::default()
        })
        .unwrap();
    let path = format!("/api/audit?doc={doc}");
    for (role, site) in [
        (Role::Manager, "dc-north"),
        (Role::Manager, "hq"),
        (Role::Manager, "agent-a"),
        (Role::HeadOffice, "hq"),
        (Role::Admin, "hq"),
    ] {
        let (status, body) = s.get(&path, Some(&s.token(role, site))).await;
        assert_eq!(status, StatusCode::OK, "{role}@{site}: {body}");
        assert_eq!(body[0]["user"], "chen.jie");
        assert_eq!(body[0]["device"], "pad-1");
        assert_eq!(body[0]["receivedAt"], 1_780_000_000_000i64);
    }
    // A consultant reads the document but does not audit it.
    let (status, _) = s
        .get(&path, Some(&s.token(Role::Consultant, "agent-a")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Outside the caller's reach: the same answer as a document that does not exist.
    let (denied_status, denied) = s
        .get(&path, Some(&s.token(Role::Manager, "dc-south")))
        .await;
    let stray = DocumentId::random();
    let (missing_status, missing) = s
        .get(
            &format!("/api/audit?doc={stray}"),
            Some(&s.token(Role::Manager, "dc-south")),
        )
        .await;
    assert_eq!(denied_status, StatusCode::NOT_FOUND);
    assert_eq!(missing_status, StatusCode::NOT_FOUND);
    assert_eq!(
        denied["error"]
            .as_str()
            .unwrap()
            .replace(&doc.to_string(), "ID"),
        missing["error"]
            .as_str()
            .unwrap()
            .replace(&stray.to_string(), "ID")
    );
    let (status, _) = s.get("/api/audit", Some(&s.token(Role::Admin, "hq"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sync_upgrade_authentication_picks_subprotocol_and_expiry() {
    use axum::http::{HeaderMap, HeaderValue, Uri, header};
    let s = Server::start().await;
    let state = ApiState {
        auth: s.auth.clone(),
        registry: s.registry.clone(),
        documents: Arc::new(StoreDocuments(s.store.clone())),
    };
    let t = s.token(Role::Consultant, "agent-a");
    let mut h = HeaderMap::new();
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(&format!("dealersync, bearer.{t}")).unwrap(),
    );
    let a = state
        .authenticate_sync(&h, &Uri::from_static("/sync"))
        .unwrap();
    assert_eq!(a.subprotocol, Some("dealersync"));
    assert_eq!(a.info.user.as_deref(), Some("consultant@agent-a"));
    assert!(a.expires_in > Duration::from_secs(590) && a.expires_in <= Duration::from_secs(600));
    let own = s.registry.site("agent-a").unwrap().document_id;
    let other = s.registry.site("dc-south").unwrap().document_id;
    assert!((a.info.access)(&own).can_write());
    assert!(!(a.info.access)(&other).can_read());

    let q: Uri = format!("/sync?token={t}").parse().unwrap();
    let b = state.authenticate_sync(&HeaderMap::new(), &q).unwrap();
    assert_eq!(b.subprotocol, None);
    let err = state
        .authenticate_sync(&HeaderMap::new(), &Uri::from_static("/sync"))
        .err()
        .unwrap();
    let resp = axum::response::IntoResponse::into_response(err);
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
