//! The writer thread: one SQLite connection, one group commit at a time.

use super::*;

pub(super) fn run_writer(
    store: SqliteStore,
    batches: mpsc::Receiver<Batch>,
    events: tmpsc::Sender<Event>,
    compactor: mpsc::Sender<DocumentId>,
) {
    for (token, batch, compact) in batches {
        let changes = batch.audit.len();
        let bytes: usize = batch
            .created
            .iter()
            .chain(&batch.appended)
            .chain(&batch.snapshots)
            .map(|(_, b)| b.len())
            .sum();
        let started = Instant::now();
        let result = store.commit(&batch);
        let elapsed = started.elapsed();
        metrics::histogram!(COMMIT_SECONDS).record(elapsed.as_secs_f64());
        metrics::histogram!(COMMIT_BATCH_CHANGES).record(changes as f64);
        metrics::histogram!(COMMIT_BATCH_BYTES).record(bytes as f64);
        debug!(
            changes,
            bytes,
            ms = elapsed.as_secs_f64() * 1e3,
            ok = result.is_ok(),
            "group commit"
        );
        if result.is_ok() {
            for doc in compact {
                // The compactor may be gone (it logs why); commits go on without it.
                let _ = compactor.send(doc);
            }
        }
        if events
            .blocking_send(Event::Committed { token, result })
            .is_err()
        {
            return;
        }
    }
}
