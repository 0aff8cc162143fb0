//! What the API handlers share: the authenticator, the registry and the document writer.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::Authenticator;
use crate::registry::{DocumentWriter, Registry};

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
