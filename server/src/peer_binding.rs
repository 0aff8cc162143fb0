//! Peer and storage ids bound to the user and device that first used them, so that
//! another token cannot speak as that peer nor pick up its saved sync states.

use dealersync_core::access::Claims;
use rusqlite::{OptionalExtension, params};

use crate::registry::{Registry, RegistryError};

/// How long a peer or storage id stays bound to a user without being used: 90 days.
pub const PEER_BINDING_RETENTION_MS: i64 = 90 * 86_400_000;

/// Longest peer or storage id a `join` may bind, in bytes. automerge-repo makes up ids
/// of a few dozen characters; anything longer is refused before it reaches
/// `peer_bindings`, so that no token holder can grow the table with ids of any size.
pub const MAX_PEER_ID_BYTES: usize = 128;

impl Registry {
    /// Binds the peer id (and storage id) a connection claims in `join` to its token's
    /// user and device, or refuses if another user or device holds them: another
    /// connection cannot speak as that peer, nor pick up its saved sync states.
    /// Bindings unused for [`PEER_BINDING_RETENTION_MS`] lapse (browsers make up a new
    /// peer id per page load, and those must not pile up forever).
    pub fn bind_peer(
        &self,
        peer: &str,
        storage: Option<&str>,
        claims: &Claims,
        now_ms: i64,
    ) -> Result<(), RegistryError> {
        for (kind, id) in [("peer", Some(peer)), ("storage", storage)] {
            if let Some(id) = id
                && id.len() > MAX_PEER_ID_BYTES
            {
                return Err(RegistryError::IdTooLong {
                    kind,
                    len: id.len(),
                });
            }
        }
        let device = claims.device.as_deref().unwrap_or("");
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM peer_bindings WHERE last_seen < ?1",
            [now_ms - PEER_BINDING_RETENTION_MS],
        )?;
        for (kind, id) in [("peer", Some(peer)), ("storage", storage)] {
            let Some(id) = id else { continue };
            let holder: Option<(String, String)> = tx
                .query_row(
                    "SELECT sub, device FROM peer_bindings WHERE kind = ?1 AND id = ?2",
                    params![kind, id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match holder {
                Some((sub, dev)) if sub != claims.sub || dev != device => {
                    return Err(RegistryError::PeerTaken {
                        kind,
                        id: id.to_string(),
                    });
                }
                _ => {
                    tx.execute(
                        "INSERT INTO peer_bindings (kind, id, sub, device, last_seen)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (kind, id) DO UPDATE SET last_seen = excluded.last_seen",
                        params![kind, id, claims.sub, device, now_ms],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}
