//! The writer thread: one SQLite connection, one group commit at a time, for every
//! engine shard.

use super::*;

/// Commits the batches the shards hand over. The batches waiting when a commit starts
/// (at most one per shard: a shard waits for its commit before the next) are written
/// in one transaction, so the shards share each fsync. Ends when every shard is gone.
pub(super) fn run_writer(
    store: SqliteStore,
    batches: mpsc::Receiver<Batch>,
    shards: Arc<Shards>,
    compactor: mpsc::Sender<DocumentId>,
) {
    while let Ok(first) = batches.recv() {
        let mut group = vec![first];
        group.extend(batches.try_iter());
        let mut batch = WriteBatch::default();
        let mut compact = Vec::new();
        let mut owners = Vec::with_capacity(group.len());
        for (shard, token, part, due) in group {
            // Shards own disjoint documents: their writes never overlap.
            batch.created.extend(part.created);
            batch.appended.extend(part.appended);
            batch.snapshots.extend(part.snapshots);
            batch.sync_states.extend(part.sync_states);
            batch.audit.extend(part.audit);
            compact.extend(due);
            owners.push((shard, token));
        }
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
            shards = owners.len(),
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
        for (shard, token) in owners {
            let result = result.clone();
            // A shard that stopped (its failure stops the relay) no longer listens.
            shards.send_blocking(shard, Event::Committed { token, result });
        }
    }
}
