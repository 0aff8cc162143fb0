//! The revocation feed between tiers: downstream relays learn revocations from their
//! upstream (`GET /api/revocations?after=<seq>`, [`Registry::revocations_after`]) and
//! write them into their own table ([`Registry::apply_revocations`]), so that they cut
//! open connections exactly as for a local revocation, and pass them on to relays
//! further down. The sequence number is the row's rowid: revocations are only ever
//! inserted (never deleted, and an ignored duplicate takes no rowid), so the rowids are
//! 1..n in insertion order and survive `VACUUM INTO` backups unchanged.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{Registry, RegistryError};

/// Most revocations one page of the feed carries.
pub const FEED_PAGE: usize = 1000;

/// One revocation as the feed carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationEntry {
    /// Its position in the relay's feed (increasing).
    pub seq: i64,
    /// `jti` (one token) or `device` (every token of a device).
    pub kind: String,
    /// The token id or device.
    pub value: String,
    /// When it was revoked where it was first revoked, UTC milliseconds.
    pub revoked_at: i64,
}

/// One page of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationPage {
    /// Revocations after the requested `seq`, oldest first.
    pub revocations: Vec<RevocationEntry>,
    /// The `after` for the next request: the last entry's `seq`, or the feed's end
    /// when the page is empty. Smaller than the `after` asked for when the feed is
    /// shorter than the caller thought (the relay was restored from an older backup):
    /// the caller then starts over from 0 (applying a revocation twice is harmless).
    pub last: i64,
    /// Whether more entries follow.
    pub more: bool,
}

impl Registry {
    /// The revocations after `after` in the feed, at most [`FEED_PAGE`].
    pub fn revocations_after(&self, after: i64) -> Result<RevocationPage, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT rowid, kind, value, revoked_at FROM revocations
             WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        )?;
        let mut revocations = stmt
            .query_map(params![after, FEED_PAGE as i64 + 1], |r| {
                Ok(RevocationEntry {
                    seq: r.get(0)?,
                    kind: r.get(1)?,
                    value: r.get(2)?,
                    revoked_at: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let more = revocations.len() > FEED_PAGE;
        revocations.truncate(FEED_PAGE);
        let last = match revocations.last() {
            Some(e) => e.seq,
            None => conn.query_row("SELECT COALESCE(MAX(rowid), 0) FROM revocations", [], |r| {
                r.get(0)
            })?,
        };
        Ok(RevocationPage {
            revocations,
            last,
            more,
        })
    }

    /// Records revocations learnt from an upstream relay (in one transaction, keeping
    /// their original time) and cuts the open connections they concern; returns how
    /// many were new here. An entry of an unknown kind or with an empty value is an
    /// error and nothing is written.
    pub fn apply_revocations(&self, entries: &[RevocationEntry]) -> Result<usize, RegistryError> {
        if let Some(bad) = entries
            .iter()
            .find(|e| !matches!(e.kind.as_str(), "jti" | "device") || e.value.trim().is_empty())
        {
            return Err(RegistryError::Invalid(format!(
                "upstream revocation {} is not a token id or device ({:?})",
                bad.seq,
                crate::telemetry::clip(&bad.kind)
            )));
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut added = 0;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO revocations (kind, value, revoked_at) VALUES (?1, ?2, ?3)",
            )?;
            for e in entries {
                added += insert.execute(params![e.kind, e.value, e.revoked_at])?;
            }
        }
        tx.commit()?;
        if added > 0 {
            // Open connections of these tokens and devices see it before we return.
            self.revocations.reload(&conn)?;
            tracing::info!(added, "applied revocations from upstream");
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_pages_in_order_and_applying_it_twice_adds_nothing() {
        let up = tempfile::tempdir().unwrap();
        let upstream = Registry::open_in(up.path()).unwrap();
        for i in 0..(FEED_PAGE + 5) {
            upstream
                .revoke(&crate::registry::Revocation::Token(format!("j{i}")))
                .unwrap();
        }
        upstream
            .revoke(&crate::registry::Revocation::Device("pad".into()))
            .unwrap();
        let first = upstream.revocations_after(0).unwrap();
        assert_eq!(first.revocations.len(), FEED_PAGE);
        assert!(first.more);
        assert_eq!(first.revocations[0].value, "j0");
        let second = upstream.revocations_after(first.last).unwrap();
        assert!(!second.more);
        assert_eq!(second.revocations.len(), 6);
        assert_eq!(second.revocations.last().unwrap().kind, "device");
        let end = upstream.revocations_after(second.last).unwrap();
        assert!(end.revocations.is_empty());
        assert_eq!(
            end.last, second.last,
            "an empty page says where the feed ends"
        );
        assert!(upstream.revocations_after(second.last + 50).unwrap().last < second.last + 50);

        let down = tempfile::tempdir().unwrap();
        let downstream = Registry::open_in(down.path()).unwrap();
        let mut rx = downstream.revocation_changes();
        rx.mark_unchanged();
        assert_eq!(
            downstream.apply_revocations(&first.revocations).unwrap(),
            FEED_PAGE
        );
        assert!(rx.has_changed().unwrap(), "open connections are told");
        assert_eq!(downstream.apply_revocations(&first.revocations).unwrap(), 0);
        downstream.apply_revocations(&second.revocations).unwrap();
        assert!(downstream.revoked("j3", None).is_some());
        assert!(downstream.revoked("x", Some("pad")).is_some());
        let bad = RevocationEntry {
            seq: 1,
            kind: "site".into(),
            value: "hq".into(),
            revoked_at: 0,
        };
        assert!(downstream.apply_revocations(&[bad]).is_err());
    }
}
