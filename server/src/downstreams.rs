//! The upstream side of relays in tiers: which downstream relays sync with this one,
//! and when each was last heard from (issue 13's "a downstream relay silent too
//! long").
//!
//! A connection to `/sync` with a relay token (role `relay`) is a downstream relay,
//! known by the token's subject and site. While it is connected, every frame it sends
//! (pings included) is contact. Contact is kept in the table `downstream_relays` of
//! the registry's SQLite file: written when the relay connects, every
//! [`FLUSH_EVERY`] while it is connected, and when it goes away. So a relay silent
//! for two days still shows as silent after this relay restarts: the table, not the
//! process, remembers it.
//!
//! Exposed as `GET /api/downstreams` (head office and admin tokens) and the gauges
//! `dealersync_downstream_connected{relay,site}` and
//! `dealersync_downstream_last_contact_timestamp_seconds{relay,site}`, which the alert
//! `DealersyncDownstreamSilent` (docs/monitoring/alerts.yml) reads. A relay whose site
//! was deactivated (a closed distribution centre) is no longer listed or exported
//! (after this relay's next restart for the gauges, which Prometheus keeps once set).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dealersync_core::access::{Claims, Role};
use dealersync_core::time::{Millis, now_ms};
use rusqlite::params;
use serde::Serialize;
use tracing::warn;

use crate::registry::Registry;
use crate::telemetry::{DOWNSTREAM_CONNECTED, DOWNSTREAM_LAST_CONTACT};

/// How often the contact of connected relays is written: a head office killed
/// outright loses at most this much of it (graceful ends are written at once).
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How often the gauges are set.
const EXPORT_EVERY: Duration = Duration::from_secs(1);

/// Why the table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DownstreamError {
    /// SQLite failed.
    #[error("the downstream relays table: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// One downstream relay as `GET /api/downstreams` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownstreamRelay {
    /// The relay token's subject.
    pub relay: String,
    /// The relay token's site: the top of the subtree it syncs.
    pub site: String,
    /// Whether it has a sync connection open here now.
    pub connected: bool,
    /// When it first connected, UTC ms.
    pub first_seen: Millis,
    /// When it last opened a connection, UTC ms.
    pub last_connected: Millis,
    /// When a frame last came from it, UTC ms.
    pub last_contact: Millis,
    /// Seconds since [`DownstreamRelay::last_contact`] (0 while connected: a
    /// connected relay pings every 20 s).
    pub silent_secs: u64,
    /// Connections it has opened, over every restart of this relay.
    pub connects: u64,
}

/// What is known of one relay: its row, its open connections and the shared clock
/// of its last frame.
struct Entry {
    row: DownstreamRelay,
    open: u32,
    heard: Arc<AtomicI64>,
    /// The last contact written to the table.
    stored: Millis,
}

type Key = (String, String);

/// Every downstream relay that ever connected, in memory and in the table.
pub struct Downstreams {
    registry: Arc<Registry>,
    entries: Mutex<BTreeMap<Key, Entry>>,
}

impl std::fmt::Debug for Downstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstreams").finish_non_exhaustive()
    }
}

impl Downstreams {
    /// Reads the relays known from earlier runs.
    pub fn load(registry: Arc<Registry>) -> Result<Arc<Self>, DownstreamError> {
        let rows = {
            let conn = registry.conn();
            let mut stmt = conn.prepare(
                "SELECT relay, site, first_seen, last_connected, last_contact, connects
                 FROM downstream_relays",
            )?;
            stmt.query_map([], |r| {
                Ok(DownstreamRelay {
                    relay: r.get(0)?,
                    site: r.get(1)?,
                    connected: false,
                    first_seen: r.get(2)?,
                    last_connected: r.get(3)?,
                    last_contact: r.get(4)?,
                    silent_secs: 0,
                    connects: r.get::<_, i64>(5)?.max(0) as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        let entries = rows
            .into_iter()
            .map(|row| {
                let key = (row.relay.clone(), row.site.clone());
                let entry = Entry {
                    heard: Arc::new(AtomicI64::new(row.last_contact)),
                    stored: row.last_contact,
                    open: 0,
                    row,
                };
                (key, entry)
            })
            .collect();
        Ok(Arc::new(Downstreams {
            registry,
            entries: Mutex::new(entries),
        }))
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A sync connection was admitted with `claims`: for a relay token, records the
    /// connection (written before it returns; call off the async workers) and returns
    /// the guard its connection task holds; `None` for every other role.
    pub fn connected(
        self: &Arc<Self>,
        claims: &Claims,
    ) -> Result<Option<Contact>, DownstreamError> {
        if claims.role != Role::Relay {
            return Ok(None);
        }
        let now = now_ms();
        let key = (claims.sub.clone(), claims.site.clone());
        self.registry.conn().execute(
            "INSERT INTO downstream_relays
                 (relay, site, first_seen, last_connected, last_contact, connects)
             VALUES (?1, ?2, ?3, ?3, ?3, 1)
             ON CONFLICT (relay, site) DO UPDATE SET
                 last_connected = ?3, last_contact = MAX(last_contact, ?3),
                 connects = connects + 1",
            params![key.0, key.1, now],
        )?;
        let mut entries = self.entries();
        let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
            row: DownstreamRelay {
                relay: key.0.clone(),
                site: key.1.clone(),
                connected: true,
                first_seen: now,
                last_connected: now,
                last_contact: now,
                silent_secs: 0,
                connects: 0,
            },
            open: 0,
            heard: Arc::new(AtomicI64::new(now)),
            stored: now,
        });
        entry.open += 1;
        entry.row.connects += 1;
        entry.row.last_connected = now;
        entry.heard.fetch_max(now, Ordering::AcqRel);
        entry.stored = entry.stored.max(now);
        Ok(Some(Contact {
            owner: self.clone(),
            heard: entry.heard.clone(),
            key: Some(key),
        }))
    }

    /// Every relay of an active site, as of now.
    pub fn list(&self) -> Vec<DownstreamRelay> {
        let tree = self.registry.tree();
        let now = now_ms();
        self.entries()
            .values()
            .filter(|e| tree.site(&e.row.site).is_none_or(|s| s.active))
            .map(|e| {
                let last_contact = e.heard.load(Ordering::Acquire);
                DownstreamRelay {
                    connected: e.open > 0,
                    last_contact,
                    silent_secs: if e.open > 0 {
                        0
                    } else {
                        (now - last_contact).max(0) as u64 / 1000
                    },
                    ..e.row.clone()
                }
            })
            .collect()
    }

    /// Writes the contact not yet in the table; returns how many relays it wrote.
    pub fn flush(&self) -> Result<usize, DownstreamError> {
        let due: Vec<(Key, Millis)> = self
            .entries()
            .iter()
            .filter_map(|(k, e)| {
                let heard = e.heard.load(Ordering::Acquire);
                (heard > e.stored).then(|| (k.clone(), heard))
            })
            .collect();
        for (key, heard) in &due {
            self.store_contact(key, *heard)?;
        }
        Ok(due.len())
    }

    fn store_contact(&self, key: &Key, heard: Millis) -> Result<(), DownstreamError> {
        self.registry.conn().execute(
            "UPDATE downstream_relays SET last_contact = MAX(last_contact, ?3)
             WHERE relay = ?1 AND site = ?2",
            params![key.0, key.1, heard],
        )?;
        if let Some(e) = self.entries().get_mut(key) {
            e.stored = e.stored.max(heard);
        }
        Ok(())
    }

    /// A connection ended: its last contact is written, then it stops counting as
    /// open (so an API answer that says "not connected" is already on disk).
    fn disconnected(&self, key: &Key, heard: Millis) {
        if let Err(e) = self.store_contact(key, heard) {
            warn!(relay = %key.0, error = %e, "cannot record the downstream relay's last contact");
        }
        if let Some(e) = self.entries().get_mut(key) {
            e.open = e.open.saturating_sub(1);
        }
    }

    /// Sets the gauges for every listed relay.
    fn export_metrics(&self) {
        for r in self.list() {
            let labels = [("relay", r.relay.clone()), ("site", r.site.clone())];
            metrics::gauge!(DOWNSTREAM_CONNECTED, &labels).set(if r.connected { 1.0 } else { 0.0 });
            metrics::gauge!(DOWNSTREAM_LAST_CONTACT, &labels).set(r.last_contact as f64 / 1000.0);
        }
    }

    /// Starts writing contact every [`FLUSH_EVERY`] and setting the gauges; call
    /// inside the runtime.
    pub fn spawn_upkeep(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut export = tokio::time::interval(EXPORT_EVERY);
            let mut flush = tokio::time::interval(FLUSH_EVERY);
            flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = export.tick() => me.export_metrics(),
                    _ = flush.tick() => {
                        let m = me.clone();
                        match tokio::task::spawn_blocking(move || m.flush()).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => warn!(error = %e, "cannot record downstream relays' contact"),
                            Err(e) => warn!(error = %e, "recording downstream relays' contact failed"),
                        }
                    }
                }
            }
        });
    }
}

/// Held by a downstream relay's connection task: [`Contact::heard`] on each frame;
/// dropped when the connection ends.
pub struct Contact {
    owner: Arc<Downstreams>,
    heard: Arc<AtomicI64>,
    key: Option<Key>,
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contact").field("relay", &self.key).finish()
    }
}

impl Contact {
    /// A frame came from the relay.
    pub fn heard(&self) {
        self.heard.fetch_max(now_ms(), Ordering::AcqRel);
    }
}

impl Drop for Contact {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let (owner, heard) = (self.owner.clone(), self.heard.load(Ordering::Acquire));
        // A write with `synchronous=FULL` waits for the disk: not on an async worker.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || owner.disconnected(&key, heard));
            }
            Err(_) => owner.disconnected(&key, heard),
        }
    }
}
