//! automerge's `receive_sync_message` without its walk over the whole history when
//! that walk cannot change anything.
//!
//! On every sync message, automerge 0.12 trims the hashes it has sent the peer
//! (`State::sent_hashes`) to those the peer's heads do not yet include, by walking
//! *every* ancestor of those heads (`filter_changes` → `ChangeGraph::remove_ancestors`).
//! The walk never stops early, so each message costs time in proportion to the
//! document's history — about 90 % of the relay's CPU per change on a month-old site
//! document (docs/growth.md) — even when there is nothing to trim.
//!
//! [`receive_sync_message`] gives automerge the message with its heads replaced by
//! one the document cannot have ([`ABSENT_HEAD`]): automerge applies the changes,
//! advances the shared heads and records everything else about the peer as usual, and
//! its walk starts from no known change, so it visits nothing. Then the four things
//! the real heads decide are set as automerge would have set them:
//! - `sent_hashes`: the trim. Nothing to do when it is empty (every message from a
//!   peer that was sent nothing it has not acknowledged, such as a phone that writes);
//!   emptied when every hash in it is found within [`NEARBY`] changes of the heads
//!   (a peer acknowledging what was just forwarded to it); otherwise automerge's own
//!   walk runs, on a scratch state holding only `sent_hashes` and a message without
//!   changes, so the result is automerge's and nothing else is touched;
//! - `last_sent_heads` when the message carries no changes and its heads equal ours;
//! - `shared_heads`: the heads themselves when we know them all, else the shared heads
//!   plus those we know; and the "peer lost its data" reset when the heads are empty;
//! - `their_heads`.
//!
//! What it relies on in automerge 0.12's `receive_sync_message` (reading it is the
//! only way to know): heads are used only for these four, the walk starts from the
//! heads the document has, and heads unknown to the document are skipped. A new
//! automerge release may change any of that: `core/tests/sync_receive.rs` runs random
//! peers editing and syncing (lost, duplicated and reordered messages, resets, peers
//! that lost their data) through both paths and requires every field of the state and
//! the document's heads to be equal after every message. [`ReceivePath::Stock`] is
//! the switch back (`EngineConfig::receive_path`).

use std::collections::{BTreeSet, HashSet, VecDeque};

use automerge::sync::{ChunkList, Message, MessageVersion, State, SyncDoc};
use automerge::{Automerge, AutomergeError, ChangeHash};

/// Which way a received sync message goes into automerge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReceivePath {
    /// Skip automerge's ancestor walk when it cannot trim anything (the default).
    #[default]
    Fast,
    /// automerge's `receive_sync_message` untouched: for measuring the difference,
    /// and a way back if an automerge release broke the fast path's assumptions.
    Stock,
}

/// How `sent_hashes` was trimmed for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// Nothing was sent to the peer that it had not acknowledged, or the peer's heads
    /// name no change we know: no walk.
    Nothing,
    /// Every hash sent was found among the changes nearest the peer's heads: emptied
    /// without walking the rest of the history.
    Nearby,
    /// automerge walked every ancestor of the peer's heads (also every message of
    /// [`ReceivePath::Stock`]).
    Walked,
}

/// The head handed to automerge in place of the message's heads: no change hashes to
/// 32 zero bytes (it would take a SHA-256 preimage), so automerge skips it. Checked
/// anyway: a document that held it would take the stock path.
pub const ABSENT_HEAD: ChangeHash = ChangeHash([0; 32]);

/// How many changes back from the peer's heads the fast path looks for the hashes
/// it sent before letting automerge walk the whole history. A peer acknowledging a
/// forwarded change names it among its heads or one or two changes above it.
pub const NEARBY: usize = 64;

/// automerge's `receive_sync_message(state, message)` on `doc`, through `path`. The
/// document and `state` end exactly as automerge leaves them, also on error.
pub fn receive_sync_message(
    doc: &mut Automerge,
    state: &mut State,
    mut message: Message,
    path: ReceivePath,
) -> Result<Trim, AutomergeError> {
    if path == ReceivePath::Stock || has_change(doc, &ABSENT_HEAD) {
        doc.receive_sync_message(state, message)?;
        return Ok(Trim::Walked);
    }
    let before = doc.get_heads();
    let carried_changes = !message.changes.is_empty();
    let heads = std::mem::replace(&mut message.heads, vec![ABSENT_HEAD]);
    doc.receive_sync_message(state, message)?;

    let known: Vec<ChangeHash> = heads
        .iter()
        .filter(|h| has_change(doc, h))
        .copied()
        .collect();
    let trim = trim_sent(doc, state, &heads, &known);
    if !carried_changes && heads == before {
        state.last_sent_heads.clone_from(&heads);
    }
    if known.len() == heads.len() {
        state.shared_heads.clone_from(&heads);
        if heads.is_empty() {
            // The peer lost all its data: start over.
            state.last_sent_heads = Vec::new();
            state.sent_hashes = BTreeSet::new();
        }
    } else {
        let shared: BTreeSet<ChangeHash> =
            state.shared_heads.iter().chain(&known).copied().collect();
        state.shared_heads = shared.into_iter().collect();
    }
    state.their_heads = Some(heads);
    Ok(trim)
}

/// Removes from `state.sent_hashes` every ancestor of the `known` heads, as automerge's
/// walk would, walking only when the answer is not found nearby.
fn trim_sent(
    doc: &mut Automerge,
    state: &mut State,
    heads: &[ChangeHash],
    known: &[ChangeHash],
) -> Trim {
    if state.sent_hashes.is_empty() || known.is_empty() {
        return Trim::Nothing;
    }
    if all_near(doc, known, &state.sent_hashes) {
        state.sent_hashes.clear();
        return Trim::Nearby;
    }
    // automerge's own walk: a message with the real heads and no changes, on a state
    // that holds nothing but the hashes to trim (with no changes, automerge does not
    // touch the document).
    let mut scratch = State::new();
    scratch.sent_hashes = std::mem::take(&mut state.sent_hashes);
    let probe = Message {
        heads: heads.to_vec(),
        need: Vec::new(),
        have: Vec::new(),
        changes: ChunkList::empty(),
        flags: None,
        version: MessageVersion::V1,
    };
    // Cannot fail: with no changes to apply, automerge only reads the document.
    let walked = doc.receive_sync_message(&mut scratch, probe);
    debug_assert!(
        walked.is_ok(),
        "a message without changes is always accepted"
    );
    state.sent_hashes = scratch.sent_hashes;
    Trim::Walked
}

/// Whether every hash in `sent` is one of `heads` or an ancestor of them within the
/// [`NEARBY`] changes closest to them (breadth first).
fn all_near(doc: &Automerge, heads: &[ChangeHash], sent: &BTreeSet<ChangeHash>) -> bool {
    if sent.len() > NEARBY {
        return false;
    }
    let mut missing: HashSet<ChangeHash> = sent.iter().copied().collect();
    let mut seen: HashSet<ChangeHash> = HashSet::new();
    let mut queue: VecDeque<ChangeHash> = heads.iter().copied().collect();
    while let Some(hash) = queue.pop_front() {
        if !seen.insert(hash) {
            continue;
        }
        missing.remove(&hash);
        if missing.is_empty() {
            return true;
        }
        if seen.len() >= NEARBY {
            return false;
        }
        if let Some(meta) = doc.get_change_meta_by_hash(&hash) {
            queue.extend(meta.deps);
        }
    }
    false
}

/// Whether the document has applied the change (automerge keeps its own
/// `has_change` crate-private).
pub(crate) fn has_change(doc: &Automerge, hash: &ChangeHash) -> bool {
    doc.get_change_meta_by_hash(hash).is_some()
}
