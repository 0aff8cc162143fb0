//! The engine's shards: one engine thread per group of documents.
//!
//! A document always lives on one shard, chosen by a stable hash of its id
//! ([`shard_of`]), so all of a document's work (applying changes, answering sync
//! messages, its commits' bookkeeping) is done by one thread, and a document that is
//! expensive to sync holds back only the documents on its own shard.
//!
//! A connection is known to every shard: its `connect` and `disconnect` go to all,
//! and so do its connection-level messages (`join`, `leave`, `error`), which every
//! shard's engine needs to move the connection through the handshake. Exactly one
//! shard answers those (the quietest when the message arrives; the others' outputs
//! for it are dropped), so the peer gets one `peer` reply. Its document messages go
//! to the document's shard only. Each shard's queue is FIFO and a connection hands
//! over its frames in order, so a shard always sees a connection's `join` before its
//! document messages.

use std::sync::atomic::AtomicUsize;

use super::*;

/// The shard that owns `doc` among `shards`: FNV-1a over the id's 16 bytes, so the
/// mapping never changes between runs, builds or Rust versions (a document's
/// connections must all reach the same engine).
pub fn shard_of(doc: &DocumentId, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in doc.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % shards.max(1) as u64) as usize
}

/// How many engine shards a relay runs by default: one per core the process may use,
/// at least two (so one heavy document never holds back every other one).
pub fn default_shards() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// A handled event that ran longer than this marks its shard as busy: connection-level
/// messages are then answered by another shard.
const BUSY: Duration = Duration::from_millis(2);

/// One shard as the other threads see it.
pub(super) struct ShardLink {
    /// The shard's event queue.
    pub(super) events: tmpsc::Sender<Event>,
    /// When the shard started the event it is handling, in microseconds since
    /// [`Shards::base`] plus one; 0 while it waits for events.
    busy_since: AtomicU64,
    /// Documents the shard holds in memory.
    loaded: AtomicUsize,
}

/// Every shard's queue and load, shared by the handle, the writer, the compactor,
/// the tick thread and the shards themselves.
pub(super) struct Shards {
    links: Vec<ShardLink>,
    base: Instant,
}

/// Where a frame goes.
pub(super) enum Route {
    /// A document's message: its shard.
    Document(usize),
    /// A connection-level message: every shard, answered by one.
    All,
    /// A frame no engine state depends on (undecodable, unknown type): one shard.
    One,
}

impl Shards {
    pub(super) fn new(events: Vec<tmpsc::Sender<Event>>) -> Shards {
        Shards {
            links: events
                .into_iter()
                .map(|events| ShardLink {
                    events,
                    busy_since: AtomicU64::new(0),
                    loaded: AtomicUsize::new(0),
                })
                .collect(),
            base: Instant::now(),
        }
    }

    /// How many shards there are.
    pub(super) fn len(&self) -> usize {
        self.links.len()
    }

    /// Every shard, in order.
    pub(super) fn links(&self) -> &[ShardLink] {
        &self.links
    }

    /// The shard owning `doc`.
    pub(super) fn of(&self, doc: &DocumentId) -> &ShardLink {
        &self.links[shard_of(doc, self.links.len())]
    }

    /// Where a decoded frame goes.
    pub(super) fn route(&self, decoded: &Result<Inbound, InboundError>) -> Route {
        match decoded {
            Ok(inbound) => match inbound.message.document_id() {
                Some(doc) => Route::Document(shard_of(doc, self.links.len())),
                None => Route::All,
            },
            Err(InboundError::Sync { doc, .. }) => Route::Document(shard_of(doc, self.links.len())),
            Err(InboundError::Wire(_)) => Route::One,
        }
    }

    /// The running shard likely to answer soonest: not in the middle of a long event,
    /// then with the fewest events queued.
    pub(super) fn quietest(&self) -> usize {
        let now = self.micros();
        self.links
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.events.is_closed())
            .min_by_key(|(_, l)| {
                let since = l.busy_since.load(Ordering::Relaxed);
                let stuck = since != 0 && now.saturating_sub(since) > BUSY.as_micros() as u64;
                let queued = l.events.max_capacity() - l.events.capacity();
                (stuck, queued)
            })
            .map(|(i, _)| i)
            .unwrap_or(0)
    }

    /// Shard `i` starts handling an event.
    pub(super) fn busy(&self, i: usize) {
        self.links[i]
            .busy_since
            .store(self.micros().max(1), Ordering::Relaxed);
    }

    /// Shard `i` waits for events.
    pub(super) fn idle(&self, i: usize) {
        self.links[i].busy_since.store(0, Ordering::Relaxed);
    }

    /// Records that shard `i` holds `n` documents; returns how many all shards hold.
    pub(super) fn set_loaded(&self, i: usize, n: usize) -> usize {
        self.links[i].loaded.store(n, Ordering::Relaxed);
        self.links
            .iter()
            .map(|l| l.loaded.load(Ordering::Relaxed))
            .sum()
    }

    /// Documents held by the shards other than `i`.
    pub(super) fn loaded_elsewhere(&self, i: usize) -> usize {
        self.links
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, l)| l.loaded.load(Ordering::Relaxed))
            .sum()
    }

    /// Sends from a plain thread to shard `i`; `false` if that shard has stopped.
    pub(super) fn send_blocking(&self, i: usize, event: Event) -> bool {
        self.links[i].events.blocking_send(event).is_ok()
    }

    fn micros(&self) -> u64 {
        self.base.elapsed().as_micros() as u64 + 1
    }
}

/// The tick thread: wakes every shard every [`TICK`] (a shard with queued events is
/// awake anyway). Ends once every shard has stopped.
pub(super) fn run_ticks(shards: Arc<Shards>) {
    loop {
        let mut running = false;
        for link in shards.links() {
            match link.events.try_send(Event::Tick) {
                Ok(()) | Err(tmpsc::error::TrySendError::Full(_)) => running = true,
                Err(tmpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        if !running {
            return;
        }
        std::thread::sleep(TICK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_stays_on_its_shard_and_documents_spread() {
        let doc = DocumentId::from_bytes([7; 16]);
        // Stable across runs, builds and Rust versions (FNV-1a of sixteen 7s).
        assert_eq!(shard_of(&doc, 4), 1);
        assert_eq!(shard_of(&doc, 1000), 461);
        assert_eq!(shard_of(&doc, 1), 0);
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[shard_of(&DocumentId::random(), 4)] += 1;
        }
        assert!(
            counts.iter().all(|c| (800..1200).contains(c)),
            "uneven spread over 4 shards: {counts:?}"
        );
    }
}
