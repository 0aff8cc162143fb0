//! Revocations as open connections see them: an in-memory copy of the `revocations`
//! table and a generation number that changes whenever the table does.
//!
//! A new connection or request is checked against SQLite ([`crate::auth::Revocations`]).
//! A WebSocket that is already open must be cut too, without a database query per
//! frame: each connection task waits on [`RevocationList::subscribe`] and asks
//! [`RevocationList::revoked`] for its own token id and device when the generation
//! moves, and the engine's access rule asks the same set on every document message,
//! so nothing a revoked token sends is stored. The admin API reloads the list as it
//! revokes (the connection closes at once); `dealersync-server revoke` runs in another
//! process, so the relay also polls the table (see [`POLL_INTERVAL`]).
//!
//! Downstream relays learn revocations from their upstream through a feed
//! ([`crate::registry::revocations`]) and write them into their own table, so that the
//! list below cuts their open connections exactly as for a local revocation.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;

use crate::auth::AuthError;

/// How often the relay looks for revocations written by another process.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Revoked {
    jtis: HashSet<String>,
    devices: HashSet<String>,
}

/// The revoked token ids and devices, and a generation that moves when they change.
#[derive(Debug)]
pub struct RevocationList {
    revoked: RwLock<Arc<Revoked>>,
    /// Row count and largest rowid of the table when last loaded: revocations are only
    /// ever inserted, so a change of either means the list changed.
    loaded: Mutex<Option<(i64, i64)>>,
    generation: watch::Sender<u64>,
}

impl Default for RevocationList {
    fn default() -> Self {
        RevocationList {
            revoked: RwLock::default(),
            loaded: Mutex::new(None),
            generation: watch::Sender::new(0),
        }
    }
}

impl RevocationList {
    /// Reloads the list from `conn` if the table changed since the last load, and then
    /// moves the generation; returns whether it did. Cheap when nothing changed (one
    /// aggregate query on the primary key).
    pub fn reload(&self, conn: &Connection) -> rusqlite::Result<bool> {
        let marker: (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM revocations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if *loaded == Some(marker) {
            return Ok(false);
        }
        let mut next = Revoked::default();
        let mut stmt = conn.prepare("SELECT kind, value FROM revocations")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (kind, value) = row?;
            if kind == "jti" {
                next.jtis.insert(value);
            } else {
                next.devices.insert(value);
            }
        }
        *self.revoked.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        *loaded = Some(marker);
        self.generation.send_modify(|g| *g += 1);
        Ok(true)
    }

    /// Why a token with this id and device may no longer be used, if it may not; from
    /// memory, as of the last [`reload`](Self::reload).
    pub fn revoked(&self, jti: &str, device: Option<&str>) -> Option<AuthError> {
        let set = self.revoked.read().unwrap_or_else(|p| p.into_inner());
        if set.jtis.contains(jti) {
            Some(AuthError::Revoked {
                jti: jti.to_string(),
            })
        } else {
            device
                .filter(|d| set.devices.contains(*d))
                .map(|d| AuthError::DeviceRevoked {
                    device: d.to_string(),
                })
        }
    }

    /// A receiver that sees a change whenever the list may have grown.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_sees_new_rows_and_moves_the_generation_only_then() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE revocations (kind TEXT NOT NULL, value TEXT NOT NULL,
             revoked_at INTEGER NOT NULL, PRIMARY KEY (kind, value));",
        )
        .unwrap();
        let list = RevocationList::default();
        let mut rx = list.subscribe();
        assert!(list.reload(&conn).unwrap());
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        assert!(!list.reload(&conn).unwrap(), "nothing changed");
        assert!(!rx.has_changed().unwrap());
        assert!(list.revoked("j1", Some("pad-1")).is_none());

        conn.execute("INSERT INTO revocations VALUES ('device', 'pad-1', 0)", [])
            .unwrap();
        assert!(list.reload(&conn).unwrap());
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            list.revoked("j1", Some("pad-1")),
            Some(AuthError::DeviceRevoked {
                device: "pad-1".into()
            })
        );
        assert!(list.revoked("j1", Some("pad-2")).is_none());
        assert!(list.revoked("j1", None).is_none());
        conn.execute("INSERT INTO revocations VALUES ('jti', 'j2', 0)", [])
            .unwrap();
        list.reload(&conn).unwrap();
        assert_eq!(
            list.revoked("j2", None),
            Some(AuthError::Revoked { jti: "j2".into() })
        );
    }
}
