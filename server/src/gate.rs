//! How many TCP connections the relay holds, per client address and in total, and
//! which silent one to let go when a new one needs the room.
//!
//! Every connection costs a file descriptor from accept until it closes (through its
//! HTTP requests and, once upgraded, its WebSocket life). A connection is *pending*
//! until its first request's headers have arrived; pending connections cost the
//! relay the most for the least, so when a limit is reached the oldest pending
//! connection that counts against it is closed to make room. Only when none is
//! pending is the new connection refused. This keeps `/healthz`, `/metrics` and the
//! API answering while silent sockets pile up: each new silent socket pushes out an
//! older one instead of the probe.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The client address holds its share of connections, all of them in use.
    #[error("too many connections from {ip} (at most {limit}); close some and retry")]
    PerAddress {
        /// The client address.
        ip: IpAddr,
        /// The per-address limit.
        limit: usize,
    },
    /// The relay holds as many connections as it can, all of them in use.
    #[error("the relay is at its connection limit ({limit}); retry later")]
    Total {
        /// The total limit.
        limit: usize,
    },
}

impl Refusal {
    /// The metric label of the refusal.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::PerAddress { .. } => "too_many_connections_per_ip",
            Refusal::Total { .. } => "too_many_connections",
        }
    }
}

struct PendingEntry {
    ip: IpAddr,
    evict: Arc<Notify>,
    released: Arc<AtomicBool>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Pending connections by admission order (ids grow), oldest first.
    pending: BTreeMap<u64, PendingEntry>,
    next_id: u64,
    /// Tickets not yet dropped: connections counted in `total` plus those evicted
    /// whose sockets are still closing. This is what the file descriptors follow.
    held: usize,
}

impl Counts {
    fn release(&mut self, ip: IpAddr) {
        self.total -= 1;
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Closes the oldest pending connection (of `ip` if given); false if none.
    fn evict_oldest(&mut self, ip: Option<IpAddr>) -> bool {
        let id = self
            .pending
            .iter()
            .find(|(_, p)| ip.is_none_or(|ip| p.ip == ip))
            .map(|(id, _)| *id);
        let Some(entry) = id.and_then(|id| self.pending.remove(&id)) else {
            return false;
        };
        entry.released.store(true, Ordering::SeqCst);
        self.release(entry.ip);
        entry.evict.notify_one();
        true
    }
}

/// Counts connections against the per-address and total limits.
pub struct Gate {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
    /// Woken when a ticket is dropped (its socket closed).
    room: Notify,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("max_total", &self.max_total)
            .field("max_per_ip", &self.max_per_ip)
            .field("open", &self.open())
            .finish()
    }
}

impl Gate {
    /// A gate for at most `max_total` connections, `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Gate> {
        Arc::new(Gate {
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
            counts: Mutex::default(),
            room: Notify::new(),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections held now.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    /// Resolves once the sockets still open (evicted ones that have not finished
    /// closing included) are within the total limit, so that accepting one more cannot
    /// run the process out of file descriptors. A burst of silent sockets evicts faster
    /// than the evicted tasks close their sockets; the accept loop waits here instead
    /// of meeting EMFILE.
    pub async fn room_to_accept(&self) {
        loop {
            if self.counts().held <= self.max_total {
                return;
            }
            // One waiter (the accept loop): a drop between the check and this await
            // leaves a permit, so no wake-up is lost.
            self.room.notified().await;
        }
    }

    /// Admits a new connection from `ip` as pending, closing the oldest pending
    /// connection that stands in its way, or refuses it. The second value is how many
    /// pending connections were closed to make room.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<(Ticket, usize), Refusal> {
        let mut c = self.counts();
        let mut evicted = 0;
        if c.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            if !c.evict_oldest(Some(ip)) {
                return Err(Refusal::PerAddress {
                    ip,
                    limit: self.max_per_ip,
                });
            }
            evicted += 1;
        }
        if c.total >= self.max_total {
            if !c.evict_oldest(None) {
                return Err(Refusal::Total {
                    limit: self.max_total,
                });
            }
            evicted += 1;
        }
        let id = c.next_id;
        c.next_id += 1;
        c.total += 1;
        c.held += 1;
        *c.per_ip.entry(ip).or_default() += 1;
        let evict = Arc::new(Notify::new());
        let released = Arc::new(AtomicBool::new(false));
        c.pending.insert(
            id,
            PendingEntry {
                ip,
                evict: evict.clone(),
                released: released.clone(),
            },
        );
        Ok((
            Ticket {
                gate: self.clone(),
                id,
                ip,
                evict,
                released,
            },
            evicted,
        ))
    }
}

/// One admitted connection; dropping it gives its place back.
pub struct Ticket {
    gate: Arc<Gate>,
    id: u64,
    ip: IpAddr,
    evict: Arc<Notify>,
    released: Arc<AtomicBool>,
}

impl Ticket {
    /// The connection sent a request: it is no longer pending, and is never closed to
    /// make room for another.
    pub fn activate(&self) {
        self.gate.counts().pending.remove(&self.id);
    }

    /// Resolves when the gate closes this pending connection to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut c = self.gate.counts();
        c.pending.remove(&self.id);
        if !self.released.swap(true, Ordering::SeqCst) {
            c.release(self.ip);
        }
        c.held -= 1;
        drop(c);
        self.gate.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_full_address_pushes_out_its_oldest_silent_connection_or_is_refused() {
        let gate = Gate::new(10, 2);
        let (a1, _) = gate.admit(A).unwrap();
        let (a2, _) = gate.admit(A).unwrap();
        let (a3, evicted) = gate.admit(A).unwrap();
        assert_eq!(evicted, 1);
        assert_eq!(gate.open(), 2);
        // a1 was the oldest pending one and is told to close.
        assert!(futures_util::FutureExt::now_or_never(a1.evicted()).is_some());
        drop(a1);
        assert_eq!(gate.open(), 2, "an evicted ticket is not counted twice");
        a2.activate();
        a3.activate();
        assert_eq!(
            gate.admit(A).err(),
            Some(Refusal::PerAddress { ip: A, limit: 2 })
        );
        let (_b, evicted) = gate.admit(B).unwrap();
        assert_eq!(evicted, 0);
        drop(a2);
        assert!(gate.admit(A).is_ok());
    }

    #[test]
    fn the_total_limit_pushes_out_the_oldest_silent_connection_of_anyone() {
        let gate = Gate::new(2, 5);
        let (a, _) = gate.admit(A).unwrap();
        let (b, _) = gate.admit(B).unwrap();
        a.activate();
        let (c, evicted) = gate.admit(A).unwrap();
        assert_eq!(evicted, 1, "b, the only pending one, made room");
        c.activate();
        drop(b);
        assert_eq!(gate.open(), 2);
        assert_eq!(gate.admit(B).err(), Some(Refusal::Total { limit: 2 }));
        drop(a);
        assert_eq!(gate.open(), 1);
    }

    #[test]
    fn the_accept_loop_waits_while_evicted_sockets_are_still_closing() {
        use futures_util::FutureExt;
        let gate = Gate::new(2, 5);
        let (a, _) = gate.admit(A).unwrap();
        let (_b, _) = gate.admit(B).unwrap();
        assert!(
            gate.room_to_accept().now_or_never().is_some(),
            "at the limit"
        );
        let (_c, evicted) = gate.admit(A).unwrap();
        assert_eq!(evicted, 1);
        assert_eq!(gate.open(), 2, "a is no longer counted against the limits");
        assert!(
            gate.room_to_accept().now_or_never().is_none(),
            "but its socket is still open: three held, two allowed"
        );
        drop(a);
        assert!(gate.room_to_accept().now_or_never().is_some());
    }
}
