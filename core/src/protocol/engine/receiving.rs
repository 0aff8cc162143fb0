//! Receiving a frame: dispatch by message and handshake phase, `join` and `peer`.

use super::*;

impl Engine {
    /// Handles one frame from a connection. `now_ms` is the wall clock (audit times,
    /// idle tracking); `store` is read for documents and sync states not in memory.
    /// Frames for a connection the engine does not know (never connected, or already
    /// closed) are ignored.
    pub fn receive(
        &mut self,
        conn: ConnId,
        frame: &[u8],
        now_ms: i64,
        store: &dyn Store,
    ) -> Vec<Output> {
        let decoded = decode_frame(frame, &self.config.limits);
        self.receive_decoded(conn, decoded, frame.len(), now_ms, store)
    }

    /// [`Engine::receive`] for a frame the driver already decoded with
    /// [`decode_frame`] (off the engine's thread, with the engine's limits).
    pub fn receive_decoded(
        &mut self,
        conn: ConnId,
        decoded: Result<Inbound, InboundError>,
        frame_len: usize,
        now_ms: i64,
        store: &dyn Store,
    ) -> Vec<Output> {
        self.now = now_ms;
        self.stats.bytes_in += frame_len as u64;
        let mut out = Vec::new();
        let Some(phase) = self.conns.get(&conn).map(|c| c.phase) else {
            return out;
        };
        let (msg, mut valid) = match decoded {
            Ok(inbound) => (inbound.message, inbound.sync),
            Err(InboundError::Wire(WireError::UnknownType(t))) => {
                self.stats.unknown_types_ignored += 1;
                let t: String = t.chars().take(40).collect();
                tracing::debug!(%conn, r#type = %t, "ignoring unknown message type");
                return out;
            }
            Err(InboundError::Wire(e)) => {
                self.stats.frames_rejected += 1;
                self.fail(&mut out, conn, CloseReason::BadFrame(e.to_string()));
                return out;
            }
            Err(e @ InboundError::Sync { .. }) => {
                self.stats.frames_rejected += 1;
                let reason = match &e {
                    InboundError::Sync { rejected, .. } if rejected.is_limit() => {
                        CloseReason::TooLarge(e.to_string())
                    }
                    _ => CloseReason::Protocol(e.to_string()),
                };
                self.fail(&mut out, conn, reason);
                return out;
            }
        };
        *self.stats.messages_in.entry(msg.kind()).or_default() += 1;

        match (phase, msg) {
            (_, Message::Error { message, .. }) => {
                out.push(Output::Close {
                    conn,
                    reason: CloseReason::PeerError(message),
                });
                self.disconnect(conn);
            }
            (
                Phase::AwaitingJoin,
                Message::Join {
                    sender_id,
                    supported_protocol_versions,
                    metadata,
                },
            ) => self.on_join(
                &mut out,
                conn,
                sender_id,
                supported_protocol_versions,
                metadata,
            ),
            (Phase::AwaitingJoin, other) => self.fail(
                &mut out,
                conn,
                CloseReason::Protocol(format!(
                    "expected `join` first, got `{}`",
                    other.kind().as_str()
                )),
            ),
            (
                Phase::AwaitingPeer,
                Message::Peer {
                    sender_id,
                    selected_protocol_version,
                    metadata,
                    ..
                },
            ) => self.on_peer(
                &mut out,
                conn,
                sender_id,
                selected_protocol_version,
                metadata,
                store,
            ),
            (Phase::AwaitingPeer, other) => self.fail(
                &mut out,
                conn,
                CloseReason::Protocol(format!(
                    "expected `peer` first, got `{}`",
                    other.kind().as_str()
                )),
            ),
            (Phase::Ready, Message::Join { sender_id, .. }) => {
                let same = self.conns[&conn].peer_id.as_ref() == Some(&sender_id);
                if same {
                    // A repeated join (a client retrying) is answered again.
                    let peer = self.peer_message(sender_id);
                    self.send(&mut out, conn, &peer);
                } else {
                    self.fail(
                        &mut out,
                        conn,
                        CloseReason::Protocol("`join` with a different peer id".into()),
                    );
                }
            }
            (Phase::Ready, Message::Peer { .. }) => {}
            (Phase::Ready, Message::Request { document_id, .. })
            | (Phase::Ready, Message::Sync { document_id, .. }) => match valid.take() {
                Some(v) => self.on_sync(&mut out, conn, document_id, v, store),
                // A caller-built `Inbound` without its validated message.
                None => self.fail(
                    &mut out,
                    conn,
                    CloseReason::Protocol("sync message was not validated".into()),
                ),
            },
            (Phase::Ready, Message::DocUnavailable { document_id, .. }) => {
                if let Some(p) = self
                    .docs
                    .get_mut(&document_id)
                    .and_then(|d| d.peers.get_mut(&conn))
                {
                    p.unavailable = true;
                }
                out.push(Output::DocumentUnavailable {
                    conn,
                    doc: document_id,
                });
            }
            (Phase::Ready, m @ Message::Ephemeral { .. }) => self.on_ephemeral(&mut out, conn, m),
            (Phase::Ready, Message::Leave { .. }) => {
                out.push(Output::Close {
                    conn,
                    reason: CloseReason::PeerLeft,
                });
                self.disconnect(conn);
            }
            // Heads gossip is tolerated and ignored: the relay offers no subscriptions.
            (Phase::Ready, Message::RemoteSubscriptionChange { .. })
            | (Phase::Ready, Message::RemoteHeadsChanged { .. }) => {}
        }
        out
    }

    pub(super) fn metadata(&self) -> PeerMetadata {
        PeerMetadata {
            storage_id: self.config.storage_id.clone(),
            is_ephemeral: self.config.storage_id.is_none(),
        }
    }

    pub(super) fn peer_message(&self, target: PeerId) -> Message {
        Message::Peer {
            sender_id: self.local.clone(),
            target_id: target,
            selected_protocol_version: PROTOCOL_VERSION.to_string(),
            metadata: Some(self.metadata()),
        }
    }

    pub(super) fn on_join(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        sender: PeerId,
        versions: Option<Vec<String>>,
        metadata: Option<PeerMetadata>,
    ) {
        // The JS server treats an absent list as version "1"; so do we.
        let speaks_v1 = versions.is_none_or(|v| v.iter().any(|v| v == PROTOCOL_VERSION));
        if !speaks_v1 {
            self.fail(
                out,
                conn,
                CloseReason::Protocol(format!(
                    "unsupported protocol version: this server speaks \"{PROTOCOL_VERSION}\""
                )),
            );
            return;
        }
        if let Some(old) = self.by_peer.get(&sender).copied()
            && old != conn
        {
            out.push(Output::Close {
                conn: old,
                reason: CloseReason::Replaced,
            });
            self.disconnect(old);
        }
        let c = self.conns.get_mut(&conn).expect("checked by receive");
        c.phase = Phase::Ready;
        c.peer_id = Some(sender.clone());
        c.storage_id = persistable(metadata);
        self.by_peer.insert(sender.clone(), conn);
        let peer = self.peer_message(sender.clone());
        self.send(out, conn, &peer);
        out.push(Output::PeerReady {
            conn,
            peer_id: sender,
        });
    }

    pub(super) fn on_peer(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        sender: PeerId,
        version: String,
        metadata: Option<PeerMetadata>,
        store: &dyn Store,
    ) {
        if version != PROTOCOL_VERSION {
            self.fail(
                out,
                conn,
                CloseReason::Protocol(format!(
                    "server selected protocol version {version:?}; we speak \"{PROTOCOL_VERSION}\""
                )),
            );
            return;
        }
        let c = self.conns.get_mut(&conn).expect("checked by receive");
        c.phase = Phase::Ready;
        c.peer_id = Some(sender.clone());
        c.storage_id = persistable(metadata);
        self.by_peer.insert(sender.clone(), conn);
        out.push(Output::PeerReady {
            conn,
            peer_id: sender,
        });
        let pinned: Vec<DocumentId> = self
            .docs
            .iter()
            .filter(|(_, d)| d.pinned)
            .map(|(id, _)| *id)
            .collect();
        for doc_id in pinned {
            self.start_sync(out, conn, doc_id, store);
        }
    }
}
