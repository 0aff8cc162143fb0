//! What other modules plug into the sync endpoint: the authorizer that decides who a
//! WebSocket connection is ([`Admission`]), the checks an open connection keeps running
//! (its peer id in `join`, revocations), and extra HTTP routes. Defined apart from
//! [`crate::server`] so that the modules that implement them (`admission`, the API)
//! and the one that uses them (`ws`) depend on this, not on each other.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use dealersync_core::protocol::engine::ConnInfo;
use tokio::sync::watch;

/// Decides who a WebSocket connection is before it is upgraded: from the request's
/// headers and query (a bearer token, `?token=`, the subprotocol), the access it has
/// per document, its user and device. A refusal is answered with the status and
/// message and no upgrade.
pub type Authorize =
    Arc<dyn Fn(&HeaderMap, &Uri) -> Result<Admission, Box<Response>> + Send + Sync>;

/// Vets the peer id (and storage id, if any) a connection claims in its `join`,
/// before the sync engine sees it: `Err` is the reason to send in an `error` before
/// closing. Runs on a blocking thread (it may write to the database).
pub type JoinCheck = Arc<dyn Fn(&str, Option<&str>) -> Result<(), String> + Send + Sync>;

/// Tells an open connection that its credentials were revoked: `changes` moves when
/// the revocation list may have grown, then `check` says why this connection's token
/// may no longer be used, if it may not.
#[derive(Clone)]
pub struct RevocationCheck {
    /// Moves whenever revocations may have been added.
    pub changes: watch::Receiver<u64>,
    /// The reason to send in an `error` before closing, if the token is revoked.
    pub check: Arc<dyn Fn() -> Option<String> + Send + Sync>,
}

/// A WebSocket connection the authorizer let in.
pub struct Admission {
    /// Access per document, user and device, for the engine.
    pub info: ConnInfo,
    /// The subprotocol to select when the token came as one (browsers fail the
    /// handshake otherwise).
    pub subprotocol: Option<&'static str>,
    /// When the credentials expire; the connection is then closed with an `error`.
    pub expires_in: Option<Duration>,
    /// Binds the peer id claimed in `join` to the credentials; `None` accepts any.
    pub join_check: Option<JoinCheck>,
    /// Whose share of the engine's time this connection spends (the user); `None` for
    /// trusted connections without a share (admins, tools).
    pub engine_share: Option<String>,
    /// Closes the connection when its credentials are revoked; `None` if they cannot be.
    pub revocation: Option<RevocationCheck>,
    /// For a downstream relay's connection: records its contact while it lives.
    pub contact: Option<crate::downstreams::Contact>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("info", &self.info)
            .field("subprotocol", &self.subprotocol)
            .field("expires_in", &self.expires_in)
            .field("join_check", &self.join_check.is_some())
            .field("engine_share", &self.engine_share)
            .field("revocation", &self.revocation.is_some())
            .field("contact", &self.contact)
            .finish()
    }
}

impl Admission {
    /// Full access, no expiry: a relay without tokens.
    pub fn open() -> Self {
        Admission {
            info: ConnInfo::full_access(),
            subprotocol: None,
            expires_in: None,
            join_check: None,
            engine_share: None,
            revocation: None,
            contact: None,
        }
    }
}

/// What other modules plug into the server: how connections are authorized and
/// further HTTP routes (the API).
#[derive(Clone)]
pub struct Extensions {
    /// Authorizes WebSocket connections.
    pub authorize: Authorize,
    /// Routes merged into the server's router.
    pub routes: Router,
}

impl Default for Extensions {
    /// Every connection may read and write every document the server knows (the
    /// engine still refuses to create unknown ones); no extra routes. For a relay
    /// without tokens, and for tests.
    fn default() -> Self {
        Extensions {
            authorize: Arc::new(|_, _| Ok(Admission::open())),
            routes: Router::new(),
        }
    }
}
