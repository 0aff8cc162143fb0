//! The compaction thread: documents whose appended chunks outgrow their snapshot are
//! compacted from storage on a connection of its own, never on the engine thread
//! (a whole-document save of a 12 MiB document held every peer back for seconds).
//! One thread serves every engine shard.

use std::collections::BTreeSet;

use super::*;

/// Compacts the documents the writer names after each commit (those the engine found
/// grown past their snapshot), one at a time, and tells the engine the new stored
/// sizes (the document's shard). Ends when the writer is gone.
pub(super) fn run_compactor(
    store: SqliteStore,
    written: mpsc::Receiver<DocumentId>,
    shards: Arc<Shards>,
) {
    while let Ok(first) = written.recv() {
        // Everything named meanwhile, once each.
        let mut due: BTreeSet<DocumentId> = std::iter::once(first).collect();
        due.extend(written.try_iter());
        for doc in due {
            // Flagged again before the last compaction's sizes reached the engine: the
            // store's own sizes say whether there is still anything to do.
            match store.compaction_due(&doc, 0) {
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
                    // A stopped shard (its failure stops the relay) no longer listens.
                    shards.send_blocking(shard_of(&doc, shards.len()), event);
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
