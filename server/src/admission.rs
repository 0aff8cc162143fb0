//! Who may open a WebSocket and stay connected: the token on the upgrade, its site in
//! the registry, the peer ids it claims in `join`, and revocations while it is open.
//! The relay plugs it in through [`authorizer`].

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use dealersync_core::access::Claims;

use crate::api::error::ApiError;
use crate::api::state::ApiState;
use crate::downstreams::Downstreams;
use crate::registry::{Registry, RegistryError};
use crate::telemetry::clip;

/// What the WebSocket upgrade handler needs from the token on the request.
pub struct SyncAuth {
    /// The verified claims (for `Registry::bind_peer` on `join`).
    pub claims: Claims,
    /// The engine's view of the connection: live access rule, user and device.
    pub info: dealersync_core::protocol::ConnInfo,
    /// The subprotocol to select (`.protocols([..])` on the upgrade) when the token
    /// came as a `Sec-WebSocket-Protocol` entry; browsers fail the handshake otherwise.
    pub subprotocol: Option<&'static str>,
    /// When to close the connection with an `error` saying the token expired.
    pub expires_in: Duration,
}

impl ApiState {
    /// Authenticates a WebSocket upgrade: `Err` is the 401 answer to send instead.
    pub fn authenticate_sync(
        &self,
        headers: &axum::http::HeaderMap,
        uri: &axum::http::Uri,
    ) -> Result<SyncAuth, ApiError> {
        let (claims, place) = self.auth.authenticate(headers, uri)?;
        if place == crate::auth::TokenPlace::Cookie {
            crate::api::origin::check_origin(headers)?;
        }
        admit_site(&self.registry, &claims)?;
        Ok(SyncAuth {
            info: self.registry.conn_info(&claims),
            subprotocol: (place == crate::auth::TokenPlace::Subprotocol)
                .then_some(crate::auth::SUBPROTOCOL),
            expires_in: crate::auth::time_left(&claims),
            claims,
        })
    }
}

/// The relay's authorizer (see [`crate::api::extensions`]): WebSocket upgrades are
/// admitted by token, with the registry's live access rule, and a downstream relay's
/// connection records its contact in `downstreams`; starts the task that follows
/// revocations for the connections it admits.
pub fn authorizer(
    state: ApiState,
    downstreams: Option<Arc<Downstreams>>,
) -> crate::extensions::Authorize {
    poll_revocations(state.registry.clone(), state.auth.clone());
    let auth_state = state;
    Arc::new(move |headers, uri| {
        match auth_state.authenticate_sync(headers, uri) {
            Ok(a) => Ok(crate::extensions::Admission {
                info: a.info,
                subprotocol: a.subprotocol,
                expires_in: Some(a.expires_in),
                revocation: Some(revocation_check(&auth_state.registry, &a.claims)),
                // Admins are trusted with the engine's time (tools, imports).
                engine_share: (a.claims.role != dealersync_core::access::Role::Admin)
                    .then(|| a.claims.sub.clone()),
                contact: downstreams.as_ref().and_then(|d| {
                    d.connected(&a.claims)
                        .inspect_err(|e| tracing::warn!(sub = %clip(&a.claims.sub), error = %e, "cannot record a downstream relay's connection"))
                        .ok()
                        .flatten()
                }),
                join_check: Some(join_check(auth_state.registry.clone(), a.claims)),
            }),
            Err(e) => {
                tracing::info!(uri = %clip(&crate::auth::redacted(uri)), error = %clip(&e.message), "sync connection refused");
                Err(Box::new(e.into_response()))
            }
        }
    })
}

/// Closes an open connection when its token or device is revoked (through the API or
/// by `dealersync-server revoke` from another process).
fn revocation_check(
    registry: &Arc<Registry>,
    claims: &Claims,
) -> crate::extensions::RevocationCheck {
    let reg = registry.clone();
    let (jti, device) = (claims.jti.clone(), claims.device.clone());
    let mut changes = registry.revocation_changes();
    // The token was checked against SQLite a moment ago; a revocation that reached the
    // in-memory list between that check and this subscription would otherwise go
    // unnoticed, so the connection task checks once as soon as it starts.
    changes.mark_changed();
    crate::extensions::RevocationCheck {
        changes,
        check: Arc::new(move || {
            reg.revoked(&jti, device.as_deref())
                .map(|e| format!("the token was revoked ({e}); ask an administrator for a new one"))
        }),
    }
}

/// Looks for revocations written by another process (`dealersync-server revoke`)
/// every [`crate::revocation::POLL_INTERVAL`], so open connections of a token revoked
/// from the command line are closed within about a second; and for signing keys
/// rotated or retired by `dealersync-server keys`, so that new tokens verify and
/// retired ones stop within the same second.
fn poll_revocations(registry: Arc<Registry>, auth: Arc<crate::auth::Authenticator>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(crate::revocation::POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let keys = auth.clone();
            match tokio::task::spawn_blocking(move || keys.reload_keys()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot reload the token keys; keeping the ones in use"),
                Err(e) => tracing::warn!(error = %e, "token key reload failed"),
            }
            let reg = registry.clone();
            match tokio::task::spawn_blocking(move || reg.poll_revocations()).await {
                Ok(Ok(true)) => {
                    tracing::info!("revocation list changed; checking open connections")
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the revocation list"),
                Err(e) => tracing::warn!(error = %e, "revocation poll failed"),
            }
        }
    });
}

/// The relay's check of a `join`: the peer and storage ids are bound to the token's
/// user and device ([`Registry::bind_peer`]); another user's or device's are refused,
/// and so is any join when the bindings cannot be read (fail closed).
fn join_check(registry: Arc<Registry>, claims: Claims) -> crate::extensions::JoinCheck {
    Arc::new(move |peer, storage| {
        let now = chrono::Utc::now().timestamp_millis();
        match registry.bind_peer(peer, storage, &claims, now) {
            Ok(()) => Ok(()),
            Err(e @ (RegistryError::PeerTaken { .. } | RegistryError::IdTooLong { .. })) => {
                tracing::warn!(sub = %claims.sub, peer = %clip(peer), error = %e, "join refused");
                Err(e.to_string())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check the peer binding; refusing the join");
                Err(format!("cannot check the peer id: {e}"))
            }
        }
    })
}

/// Refuses a token whose site the registry does not know (a token from an identity
/// provider, or a site that never existed) or has deactivated: the claims are signed,
/// but the site tree no longer backs them. Reads the in-memory tree, refreshed first
/// if another process changed the registry.
pub(crate) fn admit_site(registry: &Registry, claims: &Claims) -> Result<(), ApiError> {
    if let Err(e) = registry.refresh() {
        tracing::warn!(error = %e, "cannot reload the site registry; using the last tree");
    }
    match registry.tree().site(&claims.site) {
        Some(node) if node.active => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "site_deactivated",
            format!(
                "the token's site {:?} is deactivated; ask an administrator for a token of \
                 an active site",
                clip(&claims.site)
            ),
        )),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_site",
            format!(
                "the token's site {:?} does not exist in this network",
                clip(&claims.site)
            ),
        )),
    }
}
