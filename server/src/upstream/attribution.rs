//! Audit through hops: head office sees which user and device made a change at the
//! leaf, and through which relays it came.
//!
//! A change a downstream relay uploads is audited upstream under the relay token's
//! user (the connection it came on). The downstream then forwards, for the changes in
//! its own audit table that a local connection delivered, who made them
//! (`POST /api/upstream/attribution` with its relay token); the upstream rewrites
//! only rows that this relay itself delivered (audited under its user, or already
//! attributed with it as the last hop), in a document its token may write, and
//! records the hops in `via`, leaf side first. A relay that is itself downstream
//! re-queues the rewritten rows, so attribution climbs a chain of any depth.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use dealersync_core::access::Role;
use dealersync_core::protocol::DocumentId;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::Upstream;
use crate::api::error::ApiError;
use crate::api::extract::{Caller, blocking};
use crate::api::state::ApiState;
use crate::registry::{Registry, RegistryError};

/// Most changes one request may attribute.
pub const MAX_ATTRIBUTIONS: usize = 2000;
/// Longest user, device or hop name accepted, in bytes (the peer-id bound).
const MAX_NAME: usize = 128;
/// Most hops a `via` may list.
const MAX_HOPS: usize = 8;

/// The body of `POST /api/upstream/attribution`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributionBatch {
    /// The document the changes belong to.
    pub document_id: String,
    /// Who made each change.
    pub changes: Vec<Attribution>,
}

/// Who made one change, as the forwarding relay's audit says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribution {
    /// The automerge change hash, hex.
    pub change_hash: String,
    /// The user (`sub`) who made it.
    pub user: Option<String>,
    /// Their device.
    pub device: Option<String>,
    /// The relays it came through before the forwarding one, leaf side first.
    pub via: Option<String>,
}

/// The answer: which of the changes the upstream holds (attributed now or before).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributionAnswer {
    /// Change hashes present in the upstream's audit table.
    pub present: Vec<String>,
    /// Rows rewritten with the leaf's user and device.
    pub updated: u64,
}

/// `POST /api/upstream/attribution`, on every relay (any relay may be someone's
/// upstream).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/upstream/attribution", post(record))
        .with_state(state)
}

async fn record(
    State(state): State<ApiState>,
    caller: Caller,
    Json(batch): Json<AttributionBatch>,
) -> Result<Json<AttributionAnswer>, ApiError> {
    if caller.0.role != Role::Relay {
        return Err(ApiError::forbidden(
            "only a relay token forwards the attribution of changes",
        ));
    }
    if batch.changes.len() > MAX_ATTRIBUTIONS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_ATTRIBUTIONS} changes per request"
        )));
    }
    for c in &batch.changes {
        check(c)?;
    }
    let doc: DocumentId = batch
        .document_id
        .parse()
        .map_err(|_| ApiError::no_document(&batch.document_id))?;
    let registry = state.registry.clone();
    let answer = blocking(move || {
        if !registry.access(&caller.principal(), &doc).can_write() {
            return Err(ApiError::no_document(&batch.document_id));
        }
        record_attribution(&registry, doc, &caller.0.sub, &batch.changes)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    })
    .await?;
    Ok(Json(answer))
}

fn check(c: &Attribution) -> Result<(), ApiError> {
    let hex = c.change_hash.len() == 64 && c.change_hash.bytes().all(|b| b.is_ascii_hexdigit());
    let names_ok = [&c.user, &c.device]
        .iter()
        .all(|n| n.as_ref().is_none_or(|n| n.len() <= MAX_NAME));
    let via_ok = c.via.as_ref().is_none_or(|v| {
        let hops: Vec<&str> = v.split(" > ").collect();
        hops.len() < MAX_HOPS && hops.iter().all(|h| !h.is_empty() && h.len() <= MAX_NAME)
    });
    if hex && names_ok && via_ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "each change needs a 64-digit hex changeHash, user and device of at most 128 \
             bytes, and at most 7 hops in via",
        ))
    }
}

/// Rewrites the rows of `doc` that `relay` delivered with the leaf's attribution;
/// returns which changes are present. Rewritten rows move to the end of the table,
/// so a relay that forwards upstream itself sends them on.
pub fn record_attribution(
    registry: &Registry,
    doc: DocumentId,
    relay: &str,
    changes: &[Attribution],
) -> Result<AttributionAnswer, RegistryError> {
    let mut conn = registry.conn();
    let tx = conn.transaction()?;
    let doc = doc.to_string();
    let mut present = Vec::new();
    let mut updated = 0;
    for c in changes {
        let via = match &c.via {
            Some(v) => format!("{v} > {relay}"),
            None => relay.to_string(),
        };
        let delivered: Option<i64> = tx
            .query_row(
                "SELECT id FROM audit WHERE doc_id = ?1 AND change_hash = ?2
                   AND ((via IS NULL AND user = ?3) OR via = ?3
                        OR substr(via, -length(?3) - 3) = ' > ' || ?3)",
                params![doc, c.change_hash, relay],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = delivered {
            tx.execute(
                "INSERT INTO audit (doc_id, change_hash, actor, user, device, received_at, via)
                 SELECT doc_id, change_hash, actor, ?2, ?3, received_at, ?4 FROM audit WHERE id = ?1",
                params![id, c.user, c.device, via],
            )?;
            tx.execute("DELETE FROM audit WHERE id = ?1", [id])?;
            updated += 1;
            present.push(c.change_hash.clone());
            continue;
        }
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM audit WHERE doc_id = ?1 AND change_hash = ?2)",
            params![doc, c.change_hash],
            |r| r.get(0),
        )?;
        if known {
            present.push(c.change_hash.clone());
        }
    }
    tx.commit()?;
    Ok(AttributionAnswer { present, updated })
}

/// How often the downstream forwards attribution while connected.
const FORWARD_EVERY: Duration = Duration::from_secs(2);

/// Downstream side: forwards the attribution of locally delivered changes, in audit
/// order, as the upstream comes to hold them. Runs while the link is up.
pub(super) async fn forward(up: Upstream, registry: Arc<Registry>, http: reqwest::Client) {
    let mut every = tokio::time::interval(FORWARD_EVERY);
    loop {
        every.tick().await;
        for doc in up.ledger.snapshot().into_keys() {
            if let Err(e) = forward_doc(&up, &registry, &http, doc).await {
                warn!(doc = %doc, error = %e, "cannot forward who made the changes; retrying");
                break;
            }
        }
    }
}

async fn forward_doc(
    up: &Upstream,
    registry: &Arc<Registry>,
    http: &reqwest::Client,
    doc: DocumentId,
) -> Result<(), super::UpstreamError> {
    loop {
        let reg = registry.clone();
        let rows = tokio::task::spawn_blocking(move || pending(&reg, doc))
            .await
            .map_err(|e| super::UpstreamError::Config(e.to_string()))??;
        if rows.is_empty() {
            return Ok(());
        }
        let batch = AttributionBatch {
            document_id: doc.to_string(),
            changes: rows.iter().map(|(_, a)| a.clone()).collect(),
        };
        let answer: AttributionAnswer =
            super::transport::post_json(http, &up.config, "/api/upstream/attribution", &batch)
                .await?;
        let present: HashSet<&str> = answer.present.iter().map(String::as_str).collect();
        // The mark moves over the rows the upstream holds, in order; a row it does
        // not hold yet (still uploading) waits for the next round.
        let done = rows
            .iter()
            .take_while(|(_, a)| present.contains(a.change_hash.as_str()))
            .last()
            .map(|(id, _)| *id);
        let Some(mark) = done else {
            return Ok(());
        };
        let reg = registry.clone();
        tokio::task::spawn_blocking(move || set_mark(&reg, doc, mark))
            .await
            .map_err(|e| super::UpstreamError::Config(e.to_string()))??;
        if rows.last().map(|(id, _)| *id) != Some(mark) {
            return Ok(());
        }
    }
}

fn mark_key(doc: DocumentId) -> String {
    format!("attributed:{doc}")
}

/// Audit rows of `doc` that a local connection delivered (a user is known) and were
/// not forwarded yet, oldest first.
fn pending(registry: &Registry, doc: DocumentId) -> Result<Vec<(i64, Attribution)>, RegistryError> {
    let conn = registry.conn();
    let mark: i64 = conn
        .query_row(
            "SELECT value FROM registry_settings WHERE key = ?1",
            [mark_key(doc)],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut stmt = conn.prepare(
        "SELECT id, change_hash, user, device, via FROM audit
         WHERE doc_id = ?1 AND id > ?2 AND user IS NOT NULL ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![doc.to_string(), mark, MAX_ATTRIBUTIONS as i64],
        |r| {
            Ok((
                r.get(0)?,
                Attribution {
                    change_hash: r.get(1)?,
                    user: r.get(2)?,
                    device: r.get(3)?,
                    via: r.get(4)?,
                },
            ))
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn set_mark(registry: &Registry, doc: DocumentId, mark: i64) -> Result<(), RegistryError> {
    registry.conn().execute(
        "INSERT INTO registry_settings (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![mark_key(doc), mark.to_string()],
    )?;
    Ok(())
}
