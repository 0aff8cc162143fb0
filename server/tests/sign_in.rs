//! One-time sign-in codes over real HTTP: who may issue them, the browser session
//! cookie and the phone's device token they are exchanged for, single use, expiry,
//! the guessing limit, the same-origin rule for cookie writes, sign-out and
//! revocation, and the `sign-in-code` subcommand of the binary.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dealersync_core::access::Role;
use dealersync_server::api::{ApiState, router};
use dealersync_server::auth::{Authenticator, TokenRequest};
use dealersync_server::registry::{Registry, StoreDocuments};
use dealersync_server::signin::FAILURES_PER_ADDRESS;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

struct Server {
    dir: tempfile::TempDir,
    base: String,
    auth: Arc<Authenticator>,
    registry: Arc<Registry>,
    http: reqwest::Client,
}

/// An answer: status, headers, JSON body (or null).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
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
            documents: Arc::new(StoreDocuments(store)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router(state).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Server {
            dir,
            base: format!("http://{addr}"),
            auth,
            registry,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
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
                device: None,
                ttl: Duration::from_secs(600),
            })
            .unwrap()
            .token
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&'static str, String)],
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        Answer {
            status,
            headers,
            body: resp.json().await.unwrap_or(Value::Null),
        }
    }

    /// Issues a code as the holder of `token`.
    async fn issue(&self, token: &str, body: Value) -> Answer {
        self.call(
            reqwest::Method::POST,
            "/api/admin/sign-in-codes",
            &[("authorization", format!("Bearer {token}"))],
            Some(body),
        )
        .await
    }

    /// Issues a code that must be accepted, and returns it.
    async fn code(&self, token: &str, body: Value) -> String {
        let a = self.issue(token, body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        a.body["code"].as_str().unwrap().to_string()
    }

    async fn sign_in(&self, code: &str) -> Answer {
        self.call(
            reqwest::Method::POST,
            "/api/sign-in",
            &[],
            Some(json!({ "code": code })),
        )
        .await
    }

    async fn me_with_cookie(&self, cookie: &str) -> Answer {
        self.call(
            reqwest::Method::GET,
            "/api/me",
            &[("cookie", cookie.to_string())],
            None,
        )
        .await
    }
}

/// `dealersync_session=...` from a Set-Cookie header, as a browser sends it back.
fn cookie_of(a: &Answer) -> String {
    let set = a
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a Set-Cookie header");
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_manager_issues_codes_for_his_subtree_only() {
    let s = Server::start().await;
    let manager = s.token(Role::Manager, "dc-north");
    let ok = s
        .issue(
            &manager,
            json!({"user": "li.na", "role": "consultant", "site": "agent-a"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let code = ok.body["code"].as_str().unwrap();
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(
        ok.body["signInUrl"].as_str().unwrap(),
        format!("{}/signin?code={code}", s.base)
    );
    // The phone app's link, for the QR code a manager shows a consultant.
    assert_eq!(
        ok.body["appUrl"].as_str().unwrap(),
        format!("{}/app/#code={code}", s.base)
    );
    assert!(
        ok.body["appQrSvg"]
            .as_str()
            .is_some_and(|svg| svg.contains("<svg")),
        "{}",
        ok.body
    );
    assert_eq!(ok.body["role"], "consultant");

    for (body, why) in [
        (
            json!({"user": "x", "role": "consultant", "site": "dc-south"}),
            "not dc-north or below",
        ),
        (
            json!({"user": "x", "role": "head_office", "site": "dc-north"}),
            "consultants and managers",
        ),
    ] {
        let a = s.issue(&manager, body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        assert!(
            a.body["error"].as_str().unwrap().contains(why),
            "{}",
            a.body
        );
    }
    let consultant = s.token(Role::Consultant, "agent-a");
    let a = s
        .issue(
            &consultant,
            json!({"user": "x", "role": "consultant", "site": "agent-a"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let hq = s.token(Role::HeadOffice, "hq");
    let a = s
        .issue(&hq, json!({"user": "x", "role": "admin", "site": "hq"}))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = s
        .issue(
            &hq,
            json!({"user": "x", "role": "manager", "site": "dc-south"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    // Bad input is answered, not guessed at.
    let admin = s.token(Role::Admin, "hq");
    for body in [
        json!({"user": "x", "role": "consultant", "site": "nowhere"}),
        json!({"user": "x", "role": "consultant", "site": "hq", "validFor": "8d"}),
        json!({"user": "x", "role": "consultant", "site": "hq", "device": "a b"}),
        json!({"user": "", "role": "consultant", "site": "hq"}),
        json!({"user": "x", "role": "king", "site": "hq"}),
    ] {
        let a = s.issue(&admin, body.clone()).await;
        assert!(a.status.is_client_error(), "{body}: {}", a.status);
        assert!(a.body["error"].is_string(), "{body}: {}", a.body);
    }
}

#[tokio::test]
async fn a_code_signs_a_browser_in_once_with_an_http_only_cookie() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "hq");
    let code = s
        .code(
            &admin,
            json!({"user": "sun.hao", "role": "manager", "site": "dc-north"}),
        )
        .await;

    // Typed in lower case without the dash: still the code.
    let a = s.sign_in(&code.replace('-', "").to_lowercase()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["sub"], "sun.hao");
    assert!(
        a.body.get("token").is_none(),
        "a browser never sees its token"
    );
    let set = a.headers["set-cookie"].to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = cookie_of(&a);
    let me = s.me_with_cookie(&cookie).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(
        (&me.body["sub"], &me.body["role"], &me.body["site"]),
        (&json!("sun.hao"), &json!("manager"), &json!("dc-north"))
    );
    let twelve_hours = dealersync_server::auth::now_secs() + 12 * 3600;
    assert!(
        me.body["expiresAt"]
            .as_u64()
            .unwrap()
            .abs_diff(twelve_hours)
            < 60
    );

    // Good once.
    let again = s.sign_in(&code).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);
    assert_eq!(again.body["kind"], "invalid_code");

    // The session is a recorded token: an admin sees it and may revoke it.
    let jti = a.body["jti"].as_str().unwrap();
    assert!(
        s.registry
            .issued_tokens()
            .unwrap()
            .iter()
            .any(|t| t.jti == jti && t.sub == "sun.hao")
    );
}

#[tokio::test]
async fn cookie_writes_must_come_from_the_relays_own_origin_and_sign_out_revokes() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "hq");
    let code = s
        .code(
            &admin,
            json!({"user": "sun.hao", "role": "manager", "site": "dc-north"}),
        )
        .await;
    let cookie = cookie_of(&s.sign_in(&code).await);
    let body = json!({"user": "li.na", "role": "consultant", "site": "agent-a"});
    let post = |extra: Vec<(&'static str, String)>| {
        let mut headers = vec![("cookie", cookie.clone())];
        headers.extend(extra);
        let body = body.clone();
        let s = &s;
        async move {
            s.call(
                reqwest::Method::POST,
                "/api/admin/sign-in-codes",
                &headers,
                Some(body),
            )
            .await
        }
    };
    let cross = post(vec![("origin", "https://evil.example".into())]).await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN, "{}", cross.body);
    assert_eq!(cross.body["kind"], "cross_origin");
    let bare = post(vec![]).await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN, "{}", bare.body);
    let own = post(vec![("origin", s.base.clone())]).await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);

    // Signing out from another site is refused; from the relay's page it revokes.
    let out = |origin: String| {
        let cookie = cookie.clone();
        let s = &s;
        async move {
            s.call(
                reqwest::Method::POST,
                "/api/sign-out",
                &[("cookie", cookie), ("origin", origin)],
                None,
            )
            .await
        }
    };
    assert_eq!(
        out("https://evil.example".into()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.me_with_cookie(&cookie).await.status, StatusCode::OK);
    let done = out(s.base.clone()).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert!(
        done.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = s.me_with_cookie(&cookie).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    assert_eq!(after.body["kind"], "revoked");
}

#[tokio::test]
async fn a_phone_gets_a_device_token_that_its_device_revocation_ends() {
    let s = Server::start().await;
    let manager = s.token(Role::Manager, "dc-north");
    let code = s
        .code(
            &manager,
            json!({"user": "li.na", "role": "consultant", "site": "agent-a", "sessionTtl": "7d"}),
        )
        .await;
    let a = s
        .call(
            reqwest::Method::POST,
            "/api/sign-in/device",
            &[],
            Some(json!({"code": code, "device": "phone-li-na"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.headers.get("set-cookie").is_none());
    assert_eq!(a.body["device"], "phone-li-na");
    let seven_days = dealersync_server::auth::now_secs() + 7 * 86_400;
    assert!(a.body["expiresAt"].as_u64().unwrap().abs_diff(seven_days) < 60);
    let token = a.body["token"].as_str().unwrap().to_string();
    let bearer = [("authorization", format!("Bearer {token}"))];
    let me = s.call(reqwest::Method::GET, "/api/me", &bearer, None).await;
    assert_eq!(me.body["device"], "phone-li-na", "{}", me.body);
    assert_eq!(me.body["site"], "agent-a");

    let admin = s.token(Role::Admin, "hq");
    let r = s
        .call(
            reqwest::Method::POST,
            "/api/admin/revocations",
            &[("authorization", format!("Bearer {admin}"))],
            Some(json!({"device": "phone-li-na"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let me = s.call(reqwest::Method::GET, "/api/me", &bearer, None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.body["kind"], "device_revoked");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "hq");
    let code = s
        .code(
            &admin,
            json!({"user": "a", "role": "consultant", "site": "hq"}),
        )
        .await;
    // Age every code by an hour, as if it had been issued long ago.
    let db = rusqlite::Connection::open(s.dir.path().join("dealersync.db")).unwrap();
    db.execute(
        "UPDATE sign_in_codes SET expires_at = expires_at - 3600",
        [],
    )
    .unwrap();
    let a = s.sign_in(&code).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.body["kind"], "invalid_code");
    // Only the hash is stored.
    let stored: String = db
        .query_row("SELECT code_hash FROM sign_in_codes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains(&code.replace('-', "")));
}

#[tokio::test]
async fn guessing_is_cut_off_with_429_even_for_a_right_code() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "hq");
    let code = s
        .code(
            &admin,
            json!({"user": "a", "role": "consultant", "site": "hq"}),
        )
        .await;
    for i in 0..FAILURES_PER_ADDRESS {
        let a = s.sign_in(&format!("ZZZZ-{i:04}")).await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            a.body
        );
    }
    let a = s.sign_in(&code).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    // The refused attempt did not use the code up: it is still in the table unused.
    let db = rusqlite::Connection::open(s.dir.path().join("dealersync.db")).unwrap();
    let unused: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM sign_in_codes WHERE used_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unused, 1);
}

#[tokio::test]
async fn the_binary_issues_a_code_that_the_api_accepts() {
    let s = Server::start().await;
    let out = std::process::Command::new(common::BIN)
        .args([
            "sign-in-code",
            "--user",
            "zhou.min",
            "--role",
            "head_office",
            "--site",
            "hq",
            "--base-url",
            "http://relay.example:3030",
            "--data-dir",
        ])
        .arg(s.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let code = lines.next().unwrap();
    assert_eq!(
        lines.next().unwrap(),
        format!("http://relay.example:3030/signin?code={code}")
    );
    assert_eq!(
        lines.next().unwrap(),
        format!("http://relay.example:3030/app/#code={code}"),
        "the phone app's link"
    );
    let a = s.sign_in(code).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["role"], "head_office");
    // A site that does not exist is an error with a reason, not a code.
    let bad = std::process::Command::new(common::BIN)
        .args([
            "sign-in-code",
            "--user",
            "x",
            "--role",
            "consultant",
            "--site",
            "mars",
        ])
        .arg("--data-dir")
        .arg(s.dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("mars"));
}

#[tokio::test]
async fn pages_need_a_session_and_the_console_a_manager() {
    let s = Server::start().await;
    let admin = s.token(Role::Admin, "hq");
    let get = |path: &'static str, cookie: Option<String>| {
        let headers: Vec<(&'static str, String)> =
            cookie.map(|c| vec![("cookie", c)]).unwrap_or_default();
        let s = &s;
        async move {
            let mut req = s.http.get(format!("{}{path}", s.base));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send().await.unwrap()
        }
    };
    let signed_out = get("/console", None).await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_out.headers()["location"], "/signin?next=/console");
    assert_eq!(get("/signin", None).await.status(), StatusCode::OK);

    let consultant = s
        .code(
            &admin,
            json!({"user": "li.na", "role": "consultant", "site": "agent-a"}),
        )
        .await;
    let consultant = cookie_of(&s.sign_in(&consultant).await);
    let board = get("/board", Some(consultant.clone())).await;
    assert_eq!(board.status(), StatusCode::OK);
    assert_eq!(board.headers()["content-type"], "text/html; charset=utf-8");
    let csp = board.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert_eq!(board.headers()["referrer-policy"], "no-referrer");
    let refused = get("/console", Some(consultant)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("id=\"forbidden\""));

    let manager = s
        .code(
            &admin,
            json!({"user": "sun.hao", "role": "manager", "site": "dc-north"}),
        )
        .await;
    let manager = cookie_of(&s.sign_in(&manager).await);
    assert_eq!(
        get("/console", Some(manager)).await.status(),
        StatusCode::OK
    );

    let module = get("/web/common.js", None).await;
    assert_eq!(module.status(), StatusCode::OK);
    assert_eq!(
        module.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    // Pages only through their gated routes; nothing outside web/.
    for path in ["/web/console.html", "/web/../Cargo.toml", "/web/nothing.js"] {
        assert_eq!(
            get(path, None).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}
