//! The compaction thread: documents whose appended chunks outgrow their snapshot are
//! compacted from storage on a connection of its own, never on the engine thread
//! (a whole-document save of a 12 MiB document held every peer back for seconds).

use std::collections::BTreeSet;

use super::*;

/// Compaction starts once a document's increments outweigh both its snapshot and this.
pub(super) const COMPACT_MIN_BYTES: u64 = 64 * 1024;

/// Compacts the documents the writer names after each commit, one at a time, and tells
/// the engine the new stored sizes. Ends when the writer is gone.
pub(super) fn run_compactor(
    store: SqliteStore,
    written: mpsc::Receiver<DocumentId>,
    events: tmpsc::Sender<Event>,
) {
    while let Ok(first) = written.recv() {
        // Everything named meanwhile, once each.
        let mut due: BTreeSet<DocumentId> = std::iter::once(first).collect();
        due.extend(written.try_iter());
        for doc in due {
            match store.compaction_due(&doc, COMPACT_MIN_BYTES) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    warn!(doc = %doc, error = %e, "cannot size a document for compaction");
                    continue;
                }
            }
            let started = Instant::now();
            match store.compact(&doc) {
                Ok(Some(done)) => {
                    debug!(
                        doc = %doc,
                        snapshot = done.snapshot_bytes,
                        removed = done.removed_bytes,
                        ms = started.elapsed().as_secs_f64() * 1e3,
                        "compacted"
                    );
                    let event = Event::Compacted {
                        doc,
                        snapshot_bytes: done.snapshot_bytes,
                        removed_bytes: done.removed_bytes,
                    };
                    if events.blocking_send(event).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    // Nothing is lost: the chunks stay as they were and the next
                    // commit of the document tries again.
                    telemetry::count_error("compaction");
                    warn!(doc = %doc, error = %e, "compaction failed");
                }
            }
        }
    }
}
