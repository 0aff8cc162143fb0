//! Connections: a peer joining us, us joining a server, and leaving.

use super::*;

impl Engine {
    /// A peer connected to us (we are the receiving side): it must send `join` first.
    pub fn connect(&mut self, conn: ConnId, info: ConnInfo) {
        self.conns.insert(
            conn,
            Conn {
                info,
                outgoing: false,
                phase: Phase::AwaitingJoin,
                peer_id: None,
                storage_id: None,
                docs: HashSet::new(),
            },
        );
    }

    /// We connected to a server: returns the `join` to send. Documents opened locally
    /// start syncing once the server answers `peer`.
    pub fn connect_to_server(&mut self, conn: ConnId, info: ConnInfo) -> Vec<Output> {
        self.conns.insert(
            conn,
            Conn {
                info,
                outgoing: true,
                phase: Phase::AwaitingPeer,
                peer_id: None,
                storage_id: None,
                docs: HashSet::new(),
            },
        );
        let mut out = Vec::new();
        let join = Message::Join {
            sender_id: self.local.clone(),
            supported_protocol_versions: Some(vec![PROTOCOL_VERSION.to_string()]),
            metadata: Some(self.metadata()),
        };
        self.send(&mut out, conn, &join);
        out
    }

    /// The connection is gone. Its sync states are saved with the next batch; its
    /// changes already applied are still committed (just not acknowledged to it).
    pub fn disconnect(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(pid) = &c.peer_id
            && self.by_peer.get(pid) == Some(&conn)
        {
            self.by_peer.remove(pid);
        }
        for doc_id in c.docs {
            let Some(d) = self.docs.get_mut(&doc_id) else {
                continue;
            };
            d.last_active = self.now;
            d.queue.retain(|(q, _)| *q != conn);
            if let Some(p) = d.peers.remove(&conn)
                && let Some(sid) = &c.storage_id
                && p.sync.shared_heads != p.saved_shared_heads
            {
                self.pending_states
                    .push((doc_id, sid.clone(), p.sync.encode()));
            }
        }
    }
}
