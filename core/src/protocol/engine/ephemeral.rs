//! Ephemeral messages: relayed to a document's other peers, never stored, de-duplicated.

use super::*;

impl Engine {
    pub(super) fn on_ephemeral(&mut self, out: &mut Vec<Output>, conn: ConnId, msg: Message) {
        let Message::Ephemeral {
            sender_id: claimed_sender,
            document_id: doc_id,
            session_id,
            count,
            data,
            ..
        } = msg
        else {
            return;
        };
        let c = &self.conns[&conn];
        // A server we connected to relays other peers' messages. A peer connected to
        // us speaks for itself only: automerge-repo clients forward every ephemeral
        // message they receive to their other peers, i.e. back to us, with the
        // original sender. In a star we have seen those already, and accepting
        // messages in another peer's name would let a client spoof its presence.
        if !c.outgoing && c.peer_id.as_ref() != Some(&claimed_sender) {
            self.stats.ephemeral_duplicates += 1;
            return;
        }
        let sender = claimed_sender;
        if !(c.info.access)(&doc_id).can_read() {
            // Silently dropped: answering would reveal whether the document exists.
            return;
        }
        let key = (sender.clone(), session_id.clone());
        if self
            .ephemeral_seen
            .get(&key)
            .is_some_and(|seen| *seen >= count)
        {
            self.stats.ephemeral_duplicates += 1;
            return;
        }
        if self.ephemeral_seen.insert(key.clone(), count).is_none() {
            self.ephemeral_order.push_back(key);
            while self.ephemeral_order.len() > self.config.ephemeral_sessions {
                if let Some(old) = self.ephemeral_order.pop_front() {
                    self.ephemeral_seen.remove(&old);
                }
            }
        }
        let targets: Vec<(ConnId, PeerId)> = self
            .docs
            .get(&doc_id)
            .map(|d| {
                d.peers
                    .keys()
                    .filter(|t| **t != conn)
                    .filter_map(|t| {
                        let tc = self.conns.get(t)?;
                        if tc.phase != Phase::Ready || !(tc.info.access)(&doc_id).can_read() {
                            return None;
                        }
                        Some((*t, tc.peer_id.clone()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (t, target_id) in targets {
            let m = Message::Ephemeral {
                sender_id: sender.clone(),
                target_id,
                document_id: doc_id,
                session_id: session_id.clone(),
                count,
                data: data.clone(),
            };
            self.stats.ephemeral_relayed += 1;
            self.send(out, t, &m);
        }
        out.push(Output::Ephemeral {
            doc: doc_id,
            sender,
            data,
        });
    }

    /// Sends an ephemeral message about a document to all its peers.
    pub fn broadcast_ephemeral(&mut self, doc_id: DocumentId, data: Vec<u8>) -> Vec<Output> {
        let mut out = Vec::new();
        self.ephemeral_count += 1;
        let targets: Vec<(ConnId, PeerId)> = self
            .docs
            .get(&doc_id)
            .map(|d| {
                d.peers
                    .keys()
                    .filter_map(|t| Some((*t, self.conns.get(t)?.peer_id.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        for (t, target_id) in targets {
            let m = Message::Ephemeral {
                sender_id: self.local.clone(),
                target_id,
                document_id: doc_id,
                session_id: self.session_id.clone(),
                count: self.ephemeral_count,
                data: data.clone(),
            };
            self.send(&mut out, t, &m);
        }
        out
    }
}
