//! Bounded memory: unloading idle documents and keeping to a budget.

use super::*;

impl Engine {
    /// Keeps at most `max_docs` documents in memory by unloading those that are
    /// committed, unpinned and without peers, least recently used first. Documents in
    /// use are never unloaded, so the count can stay above the budget. Returns how
    /// many were unloaded.
    pub fn unload_to_budget(&mut self, max_docs: usize) -> usize {
        if self.docs.len() <= max_docs {
            return 0;
        }
        let mut idle: Vec<(i64, DocumentId)> = self
            .docs
            .iter()
            .filter(|(_, d)| d.unloadable())
            .map(|(id, d)| (d.last_active, *id))
            .collect();
        idle.sort_unstable();
        let excess = self.docs.len() - max_docs;
        let mut unloaded = 0;
        for (_, id) in idle.into_iter().take(excess) {
            self.docs.remove(&id);
            self.dirty.remove(&id);
            unloaded += 1;
        }
        unloaded
    }

    /// Drops documents that are committed, unpinned and without peers for `idle_ms`.
    /// Returns how many were unloaded. Loading one again gives the same heads.
    pub fn unload_idle(&mut self, now_ms: i64, idle_ms: i64) -> usize {
        self.now = now_ms;
        let before = self.docs.len();
        self.docs
            .retain(|_, d| !(d.unloadable() && now_ms - d.last_active >= idle_ms));
        let docs = &self.docs;
        self.dirty.retain(|id| docs.contains_key(id));
        before - self.docs.len()
    }

    /// Storage compacted `doc` outside the engine: a snapshot of `snapshot_bytes`
    /// replaced `removed_bytes` of its stored chunks. Keeps the stored size the
    /// document limit is checked against right.
    pub fn compacted(&mut self, doc: &DocumentId, snapshot_bytes: u64, removed_bytes: u64) {
        if let Some(d) = self.docs.get_mut(doc) {
            let stored = d.snapshot_bytes + d.incremental_bytes;
            let kept = stored.saturating_sub(removed_bytes);
            d.snapshot_bytes = snapshot_bytes;
            d.incremental_bytes = kept;
        }
    }

    /// The documents to compact since the last call: with `compact_in_engine` off, the
    /// ones whose incremental chunks outgrew their snapshot (and the compaction
    /// threshold) as batches were taken. The driver compacts them from storage once
    /// the batch that flagged them is committed, then reports [`Engine::compacted`].
    pub fn take_compaction_due(&mut self) -> Vec<DocumentId> {
        self.compaction_due.drain().collect()
    }
}
