//! The automerge-repo WebSocket wire messages, protocol version "1".
//!
//! Every WebSocket binary frame carries one CBOR map with a `type` field. This module
//! turns frames into [`Message`]s and back, with no I/O.
//!
//! Decoding is strict about what the protocol needs (a missing `senderId` or a `data`
//! that is not a byte string is a [`WireError`] naming the field) and lenient about
//! what real clients send:
//! - integers (`count`, `timestamp`) encoded by cbor-x as float64 are accepted when
//!   they hold a whole, non-negative number;
//! - `storageId` may be absent, `null` or `undefined`; `peerMetadata` itself may be
//!   absent or `undefined`, and the older key `metadata` is read as well;
//! - `data` is a CBOR byte string; a byte string wrapped in the typed-array tag 64
//!   (cbor-x with `tagUint8Array`) is accepted too;
//! - `documentId` is the bs58check string, or its 16 raw bytes;
//! - `supportedProtocolVersions` may be absent (the JS server then assumes "1");
//! - unknown keys are ignored, so newer clients can add fields.
//!
//! Encoding always writes the canonical form that `@automerge/automerge-repo` writes:
//! plain byte strings, unsigned integers, and the key `peerMetadata`.

use std::collections::BTreeMap;

use ciborium::Value;

use super::cbor_shape::{self, ShapeError};
use super::ids::{DocumentId, PeerId, StorageId};
use super::limits::{MAX_DOCUMENT_ID_CHARS, MAX_ID_BYTES};

/// Longest `error` message text accepted from a peer, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The only protocol version this implementation speaks.
pub const PROTOCOL_VERSION: &str = "1";

/// The largest integer a JavaScript number holds exactly; larger floats are rejected.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// What a peer says about its storage in `join` and `peer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    /// The id of the peer's durable storage, if it has one. Sync state is persisted
    /// per storage id.
    pub storage_id: Option<StorageId>,
    /// Whether the peer will not come back with this storage id (nothing to persist).
    pub is_ephemeral: bool,
}

/// The heads a storage id was last seen at, in `remote-heads-changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHeads {
    /// Change hashes, as the sender spells them.
    pub heads: Vec<String>,
    /// The originating node's clock, milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// First message of the initiating peer (the client).
    Join {
        /// The client's peer id.
        sender_id: PeerId,
        /// Versions the client speaks; `None` when the field was absent.
        supported_protocol_versions: Option<Vec<String>>,
        /// Storage metadata, if sent.
        metadata: Option<PeerMetadata>,
    },
    /// The receiving peer's (the server's) answer to `join`.
    Peer {
        /// The server's peer id.
        sender_id: PeerId,
        /// The client's peer id.
        target_id: PeerId,
        /// The version chosen, always "1" here.
        selected_protocol_version: String,
        /// Storage metadata, if sent.
        metadata: Option<PeerMetadata>,
    },
    /// Asks for a document; answered `doc-unavailable` if the target does not have it.
    Request {
        /// The sender's peer id.
        sender_id: PeerId,
        /// The recipient's peer id.
        target_id: PeerId,
        /// The document.
        document_id: DocumentId,
        /// An automerge sync message.
        data: Vec<u8>,
    },
    /// An automerge sync message for a document.
    Sync {
        /// The sender's peer id.
        sender_id: PeerId,
        /// The recipient's peer id.
        target_id: PeerId,
        /// The document.
        document_id: DocumentId,
        /// An automerge sync message.
        data: Vec<u8>,
    },
    /// The sender does not have (or will not reveal) the document.
    DocUnavailable {
        /// The sender's peer id.
        sender_id: PeerId,
        /// The recipient's peer id.
        target_id: PeerId,
        /// The document.
        document_id: DocumentId,
    },
    /// Application data about a document that is relayed but never stored (presence,
    /// cursors).
    Ephemeral {
        /// The peer that created the message (kept when relayed).
        sender_id: PeerId,
        /// The recipient's peer id.
        target_id: PeerId,
        /// The document it is about.
        document_id: DocumentId,
        /// The sender's session, for de-duplication.
        session_id: String,
        /// Increases with every message of a session.
        count: u64,
        /// Opaque payload (CBOR in practice).
        data: Vec<u8>,
    },
    /// A protocol error; the sender closes the connection after it.
    Error {
        /// What went wrong, for humans.
        message: String,
        /// The sender's peer id, when known.
        sender_id: Option<PeerId>,
        /// The recipient's peer id, when known.
        target_id: Option<PeerId>,
    },
    /// The sender is about to disconnect.
    Leave {
        /// The sender's peer id.
        sender_id: PeerId,
    },
    /// Changes which storage ids the sender wants heads gossip about (tolerated).
    RemoteSubscriptionChange {
        /// The sender's peer id.
        sender_id: PeerId,
        /// The recipient's peer id.
        target_id: PeerId,
        /// Storage ids to add.
        add: Vec<StorageId>,
        /// Storage ids to remove.
        remove: Vec<StorageId>,
    },
    /// Heads gossip about other storage ids (tolerated).
    RemoteHeadsChanged {
        /// The sender's peer id.
        sender_id: PeerId,
        /// The recipient's peer id.
        target_id: PeerId,
        /// The document.
        document_id: DocumentId,
        /// Heads per storage id.
        new_heads: BTreeMap<StorageId, RemoteHeads>,
    },
}

/// The message kinds, named as on the wire; used for metrics and routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// `join`
    Join,
    /// `peer`
    Peer,
    /// `request`
    Request,
    /// `sync`
    Sync,
    /// `doc-unavailable`
    DocUnavailable,
    /// `ephemeral`
    Ephemeral,
    /// `error`
    Error,
    /// `leave`
    Leave,
    /// `remote-subscription-change`
    RemoteSubscriptionChange,
    /// `remote-heads-changed`
    RemoteHeadsChanged,
}

impl MessageKind {
    /// All kinds, for metrics tables.
    pub const ALL: [MessageKind; 10] = [
        MessageKind::Join,
        MessageKind::Peer,
        MessageKind::Request,
        MessageKind::Sync,
        MessageKind::DocUnavailable,
        MessageKind::Ephemeral,
        MessageKind::Error,
        MessageKind::Leave,
        MessageKind::RemoteSubscriptionChange,
        MessageKind::RemoteHeadsChanged,
    ];

    /// The `type` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Join => "join",
            MessageKind::Peer => "peer",
            MessageKind::Request => "request",
            MessageKind::Sync => "sync",
            MessageKind::DocUnavailable => "doc-unavailable",
            MessageKind::Ephemeral => "ephemeral",
            MessageKind::Error => "error",
            MessageKind::Leave => "leave",
            MessageKind::RemoteSubscriptionChange => "remote-subscription-change",
            MessageKind::RemoteHeadsChanged => "remote-heads-changed",
        }
    }

    fn from_wire(s: &str) -> Option<Self> {
        MessageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Why a frame is not a protocol message. Each variant names what was wrong, so the
/// `error` sent back tells the peer's developer what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes are not one well-formed CBOR item.
    #[error("frame is not valid CBOR: {0}")]
    Cbor(String),
    /// Bytes follow the CBOR item.
    #[error("frame has {0} trailing bytes after the CBOR message")]
    TrailingBytes(usize),
    /// The CBOR item is not a map with text keys.
    #[error("message is not a CBOR map with text keys")]
    NotAMap,
    /// The same key appears twice.
    #[error("field `{0}` appears more than once")]
    DuplicateField(String),
    /// A required field is absent (or null/undefined).
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    /// A field has the wrong CBOR type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `documentId` is not a bs58check document id.
    #[error("field `documentId` is not a document id: {0}")]
    BadDocumentId(String),
    /// The frame's CBOR has more items or deeper nesting than any message has.
    #[error("frame is not a protocol message: {0}")]
    Shape(#[from] ShapeError),
    /// A text field is longer than the protocol allows (ids are short).
    #[error("field `{field}` is longer than {max} bytes")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its maximum length in bytes.
        max: usize,
    },
    /// `type` names no message this protocol knows. The engine ignores these, so a
    /// newer client's additions do not cost it the connection.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
}

impl Message {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Join { .. } => MessageKind::Join,
            Message::Peer { .. } => MessageKind::Peer,
            Message::Request { .. } => MessageKind::Request,
            Message::Sync { .. } => MessageKind::Sync,
            Message::DocUnavailable { .. } => MessageKind::DocUnavailable,
            Message::Ephemeral { .. } => MessageKind::Ephemeral,
            Message::Error { .. } => MessageKind::Error,
            Message::Leave { .. } => MessageKind::Leave,
            Message::RemoteSubscriptionChange { .. } => MessageKind::RemoteSubscriptionChange,
            Message::RemoteHeadsChanged { .. } => MessageKind::RemoteHeadsChanged,
        }
    }

    /// The document the message is about, if any.
    pub fn document_id(&self) -> Option<&DocumentId> {
        match self {
            Message::Request { document_id, .. }
            | Message::Sync { document_id, .. }
            | Message::DocUnavailable { document_id, .. }
            | Message::Ephemeral { document_id, .. }
            | Message::RemoteHeadsChanged { document_id, .. } => Some(document_id),
            _ => None,
        }
    }

    /// The CBOR frame for this message.
    pub fn encode(&self) -> Vec<u8> {
        let mut m: Vec<(Value, Value)> = Vec::with_capacity(7);
        let mut put = |k: &str, v: Value| m.push((Value::Text(k.to_string()), v));
        put("type", text(self.kind().as_str()));
        match self {
            Message::Join {
                sender_id,
                supported_protocol_versions,
                metadata,
            } => {
                put("senderId", text(&sender_id.0));
                let versions = supported_protocol_versions
                    .clone()
                    .unwrap_or_else(|| vec![PROTOCOL_VERSION.to_string()]);
                put(
                    "supportedProtocolVersions",
                    Value::Array(versions.into_iter().map(Value::Text).collect()),
                );
                if let Some(md) = metadata {
                    put("peerMetadata", encode_metadata(md));
                }
            }
            Message::Peer {
                sender_id,
                target_id,
                selected_protocol_version,
                metadata,
            } => {
                put("senderId", text(&sender_id.0));
                put("targetId", text(&target_id.0));
                put("selectedProtocolVersion", text(selected_protocol_version));
                if let Some(md) = metadata {
                    put("peerMetadata", encode_metadata(md));
                }
            }
            Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
            | Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            } => {
                put("senderId", text(&sender_id.0));
                put("targetId", text(&target_id.0));
                put("documentId", Value::Text(document_id.to_string()));
                put("data", Value::Bytes(data.clone()));
            }
            Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            } => {
                put("senderId", text(&sender_id.0));
                put("targetId", text(&target_id.0));
                put("documentId", Value::Text(document_id.to_string()));
            }
            Message::Ephemeral {
                sender_id,
                target_id,
                document_id,
                session_id,
                count,
                data,
            } => {
                put("senderId", text(&sender_id.0));
                put("targetId", text(&target_id.0));
                put("documentId", Value::Text(document_id.to_string()));
                put("sessionId", text(session_id));
                put("count", Value::Integer((*count).into()));
                put("data", Value::Bytes(data.clone()));
            }
            Message::Error {
                message,
                sender_id,
                target_id,
            } => {
                put("message", text(message));
                if let Some(s) = sender_id {
                    put("senderId", text(&s.0));
                }
                if let Some(t) = target_id {
                    put("targetId", text(&t.0));
                }
            }
            Message::Leave { sender_id } => put("senderId", text(&sender_id.0)),
            Message::RemoteSubscriptionChange {
                sender_id,
                target_id,
                add,
                remove,
            } => {
                put("senderId", text(&sender_id.0));
                put("targetId", text(&target_id.0));
                put(
                    "add",
                    Value::Array(add.iter().map(|s| text(&s.0)).collect()),
                );
                put(
                    "remove",
                    Value::Array(remove.iter().map(|s| text(&s.0)).collect()),
                );
            }
            Message::RemoteHeadsChanged {
                sender_id,
                target_id,
                document_id,
                new_heads,
            } => {
                put("senderId", text(&sender_id.0));
                put("targetId", text(&target_id.0));
                put("documentId", Value::Text(document_id.to_string()));
                let heads = new_heads
                    .iter()
                    .map(|(sid, h)| {
                        (
                            text(&sid.0),
                            Value::Map(vec![
                                (
                                    text("heads"),
                                    Value::Array(h.heads.iter().map(|x| text(x)).collect()),
                                ),
                                (text("timestamp"), Value::Integer(h.timestamp.into())),
                            ]),
                        )
                    })
                    .collect();
                put("newHeads", Value::Map(heads));
            }
        }
        let mut out = Vec::new();
        ciborium::ser::into_writer(&Value::Map(m), &mut out)
            .expect("writing CBOR into a Vec cannot fail");
        out
    }

    /// Reads one frame. See the module docs for what is accepted.
    pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
        // Bounded before anything is allocated: see `cbor_shape`.
        cbor_shape::check(frame)?;
        let mut rest = frame;
        let value: Value =
            ciborium::de::from_reader(&mut rest).map_err(|e| WireError::Cbor(e.to_string()))?;
        if !rest.is_empty() {
            return Err(WireError::TrailingBytes(rest.len()));
        }
        let Value::Map(entries) = value else {
            return Err(WireError::NotAMap);
        };
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (k, v) in entries {
            let Value::Text(k) = k else {
                return Err(WireError::NotAMap);
            };
            // A key given twice is refused even when one of them is null: a reader
            // that keeps the first and one that keeps the last would disagree on who
            // sent the message.
            if !seen.insert(k.clone()) {
                return Err(WireError::DuplicateField(k.chars().take(40).collect()));
            }
            // null and undefined mean "not given", as in JavaScript.
            if !matches!(v, Value::Null) {
                fields.insert(k, v);
            }
        }
        let f = Fields(fields);
        let kind_str = f.req_text("type")?;
        let kind = MessageKind::from_wire(&kind_str).ok_or(WireError::UnknownType(kind_str))?;
        Ok(match kind {
            MessageKind::Join => Message::Join {
                sender_id: f.peer("senderId")?,
                supported_protocol_versions: f.opt_text_list("supportedProtocolVersions")?,
                metadata: f.metadata()?,
            },
            MessageKind::Peer => Message::Peer {
                sender_id: f.peer("senderId")?,
                target_id: f.peer("targetId")?,
                selected_protocol_version: f.req_text("selectedProtocolVersion")?,
                metadata: f.metadata()?,
            },
            MessageKind::Request => Message::Request {
                sender_id: f.peer("senderId")?,
                target_id: f.peer("targetId")?,
                document_id: f.document_id()?,
                data: f.req_bytes("data")?,
            },
            MessageKind::Sync => Message::Sync {
                sender_id: f.peer("senderId")?,
                target_id: f.peer("targetId")?,
                document_id: f.document_id()?,
                data: f.req_bytes("data")?,
            },
            MessageKind::DocUnavailable => Message::DocUnavailable {
                sender_id: f.peer("senderId")?,
                target_id: f.peer("targetId")?,
                document_id: f.document_id()?,
            },
            MessageKind::Ephemeral => Message::Ephemeral {
                sender_id: f.peer("senderId")?,
                target_id: f.peer("targetId")?,
                document_id: f.document_id()?,
                session_id: f.req_text("sessionId")?,
                count: f.req_uint("count")?,
                data: f.req_bytes("data")?,
            },
            MessageKind::Error => Message::Error {
                message: f.req_text("message")?,
                sender_id: f.opt_text("senderId")?.map(PeerId),
                target_id: f.opt_text("targetId")?.map(PeerId),
            },
            MessageKind::Leave => Message::Leave {
                sender_id: f.peer("senderId")?,
            },
            MessageKind::RemoteSubscriptionChange => Message::RemoteSubscriptionChange {
                sender_id: f.peer("senderId")?,
                target_id: f.peer("targetId")?,
                add: storage_ids(f.opt_text_list("add")?),
                remove: storage_ids(f.opt_text_list("remove")?),
            },
            MessageKind::RemoteHeadsChanged => Message::RemoteHeadsChanged {
                sender_id: f.peer("senderId")?,
                target_id: f.peer("targetId")?,
                document_id: f.document_id()?,
                new_heads: f.new_heads()?,
            },
        })
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn storage_ids(list: Option<Vec<String>>) -> Vec<StorageId> {
    list.unwrap_or_default()
        .into_iter()
        .map(StorageId)
        .collect()
}

fn encode_metadata(md: &PeerMetadata) -> Value {
    let mut m = Vec::with_capacity(2);
    if let Some(sid) = &md.storage_id {
        m.push((text("storageId"), text(&sid.0)));
    }
    m.push((text("isEphemeral"), Value::Bool(md.is_ephemeral)));
    Value::Map(m)
}

mod fields;
#[cfg(test)]
mod tests;

use fields::Fields;
