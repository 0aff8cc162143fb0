//! Issued tokens, revocations and the audit log's read side.

use dealersync_core::access::Claims;
use dealersync_core::protocol::DocumentId;
use dealersync_core::time::now_ms;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Registry, RegistryError};
use crate::auth::{AuthError, Revocations};

/// A token the server issued, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedRecord {
    /// Token id.
    pub jti: String,
    /// User.
    pub sub: String,
    /// Role name.
    pub role: String,
    /// Site.
    pub site: String,
    /// Device, if any.
    pub device: Option<String>,
    /// Issued at, seconds since the epoch.
    pub issued_at: i64,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
    /// Whether its jti or device has been revoked.
    pub revoked: bool,
}

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One token.
    Token(String),
    /// Every token naming this device.
    Device(String),
}

/// One row of the audit log that the store writes with every accepted change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Document changed.
    pub doc: String,
    /// Automerge change hash, hex.
    pub change_hash: String,
    /// Automerge actor id, hex.
    pub actor: String,
    /// User (`sub`).
    pub user: Option<String>,
    /// Device.
    pub device: Option<String>,
    /// Received at, UTC milliseconds.
    pub received_at: i64,
    /// The relays the change came through, leaf side first (`rs-1-laptop >
    /// dc-north-relay`); `None` when it reached this relay directly.
    pub via: Option<String>,
}
impl Registry {
    /// Records an issued token for the admin API.
    pub fn record_issued(&self, claims: &Claims) -> Result<(), RegistryError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO issued_tokens (jti, sub, role, site, device, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                claims.jti,
                claims.sub,
                claims.role.as_str(),
                claims.site,
                claims.device,
                claims.iat.unwrap_or_else(crate::auth::now_secs) as i64,
                claims.exp as i64
            ],
        )?;
        Ok(())
    }

    /// Issued tokens, newest first, with their revocation status.
    pub fn issued_tokens(&self) -> Result<Vec<IssuedRecord>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.jti, t.sub, t.role, t.site, t.device, t.issued_at, t.expires_at,
                    EXISTS (SELECT 1 FROM revocations r
                            WHERE (r.kind = 'jti' AND r.value = t.jti)
                               OR (r.kind = 'device' AND r.value = t.device))
             FROM issued_tokens t ORDER BY t.issued_at DESC, t.jti",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(IssuedRecord {
                jti: r.get(0)?,
                sub: r.get(1)?,
                role: r.get(2)?,
                site: r.get(3)?,
                device: r.get(4)?,
                issued_at: r.get(5)?,
                expires_at: r.get(6)?,
                revoked: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a token id or a device; revoking twice is not an error.
    pub fn revoke(&self, what: &Revocation) -> Result<(), RegistryError> {
        let (kind, value) = match what {
            Revocation::Token(j) => ("jti", j),
            Revocation::Device(d) => ("device", d),
        };
        if value.trim().is_empty() {
            return Err(RegistryError::Invalid(format!("empty {kind} to revoke")));
        }
        {
            let conn = self.conn();
            conn.execute(
                "INSERT OR IGNORE INTO revocations (kind, value, revoked_at) VALUES (?1, ?2, ?3)",
                params![kind, value, now_ms()],
            )?;
            // Open connections of this token or device see it before we return.
            self.revocations.reload(&conn)?;
        }
        tracing::info!(kind, value = %crate::telemetry::clip(value), "revoked");
        Ok(())
    }

    /// Reloads the revocation list if the table changed (another process may have run
    /// `dealersync-server revoke`); returns whether it did. The relay calls this every
    /// [`crate::revocation::POLL_INTERVAL`].
    pub fn poll_revocations(&self) -> Result<bool, RegistryError> {
        let conn = self.conn();
        Ok(self.revocations.reload(&conn)?)
    }

    /// Why a token with this id and device may no longer be used, as of the last
    /// reload of the revocation list (no database query).
    pub fn revoked(&self, jti: &str, device: Option<&str>) -> Option<AuthError> {
        self.revocations.revoked(jti, device)
    }

    /// Changes whenever the revocation list may have grown: open connections wait on
    /// it and then check their own token with [`Registry::revoked`].
    pub fn revocation_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    /// The audit log of one document, newest first, at most `limit` rows. The table is
    /// written by the document store in the same transaction as each accepted change;
    /// before the store has created it, the log is empty.
    pub fn audit(&self, doc: &DocumentId, limit: u32) -> Result<Vec<AuditEntry>, RegistryError> {
        let conn = self.conn();
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit')",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut stmt = conn.prepare(
            "SELECT doc_id, change_hash, actor, user, device, received_at, via FROM audit
             WHERE doc_id = ?1 ORDER BY received_at DESC, rowid DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![doc.to_string(), limit], |r| {
            Ok(AuditEntry {
                doc: r.get(0)?,
                change_hash: r.get(1)?,
                actor: r.get(2)?,
                user: r.get(3)?,
                device: r.get(4)?,
                received_at: r.get(5)?,
                via: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Revocations for Registry {
    fn check(&self, jti: &str, device: Option<&str>) -> Result<(), AuthError> {
        let conn = self.conn();
        let hit: Option<String> = conn
            .query_row(
                "SELECT kind FROM revocations
                 WHERE (kind = 'jti' AND value = ?1) OR (kind = 'device' AND value = ?2)
                 ORDER BY kind DESC LIMIT 1",
                params![jti, device],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| AuthError::RevocationCheck(e.to_string()))?;
        match hit.as_deref() {
            None => Ok(()),
            Some("jti") => Err(AuthError::Revoked {
                jti: jti.to_string(),
            }),
            Some(_) => Err(AuthError::DeviceRevoked {
                device: device.unwrap_or_default().to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_check_distinguishes_jti_and_device() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open_in(dir.path()).unwrap();
        reg.check("j1", Some("d1")).unwrap();
        reg.revoke(&Revocation::Device("d1".into())).unwrap();
        assert_eq!(
            reg.check("j1", Some("d1")),
            Err(AuthError::DeviceRevoked {
                device: "d1".into()
            })
        );
        reg.check("j1", None).unwrap();
        reg.revoke(&Revocation::Token("j1".into())).unwrap();
        assert_eq!(
            reg.check("j1", Some("d1")),
            Err(AuthError::Revoked { jti: "j1".into() })
        );
    }
}
