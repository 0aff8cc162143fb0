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

/// A message's fields, with null/undefined already dropped.
struct Fields(BTreeMap<String, Value>);

impl Fields {
    fn get(&self, field: &'static str) -> Option<&Value> {
        self.0.get(field)
    }

    fn opt_text(&self, field: &'static str) -> Result<Option<String>, WireError> {
        let max = if field == "message" {
            MAX_MESSAGE_BYTES
        } else {
            MAX_ID_BYTES
        };
        match self.get(field) {
            None => Ok(None),
            Some(Value::Text(s)) if s.len() > max => Err(WireError::TooLong { field, max }),
            Some(Value::Text(s)) => Ok(Some(s.clone())),
            Some(_) => Err(WireError::WrongType {
                field,
                expected: "a text string",
            }),
        }
    }

    fn req_text(&self, field: &'static str) -> Result<String, WireError> {
        self.opt_text(field)?.ok_or(WireError::MissingField(field))
    }

    fn peer(&self, field: &'static str) -> Result<PeerId, WireError> {
        self.req_text(field).map(PeerId)
    }

    fn req_bytes(&self, field: &'static str) -> Result<Vec<u8>, WireError> {
        match self.get(field) {
            None => Err(WireError::MissingField(field)),
            Some(v) => as_bytes(v).map(<[u8]>::to_vec).ok_or(WireError::WrongType {
                field,
                expected: "a byte string",
            }),
        }
    }

    fn req_uint(&self, field: &'static str) -> Result<u64, WireError> {
        match self.get(field) {
            None => Err(WireError::MissingField(field)),
            Some(v) => as_uint(v).ok_or(WireError::WrongType {
                field,
                expected: "a non-negative whole number",
            }),
        }
    }

    fn opt_text_list(&self, field: &'static str) -> Result<Option<Vec<String>>, WireError> {
        let wrong = WireError::WrongType {
            field,
            expected: "an array of text strings",
        };
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::Text(s) if s.len() > MAX_ID_BYTES => Err(WireError::TooLong {
                        field,
                        max: MAX_ID_BYTES,
                    }),
                    Value::Text(s) => Ok(s.clone()),
                    _ => Err(wrong.clone()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(wrong),
        }
    }

    fn document_id(&self) -> Result<DocumentId, WireError> {
        match self.get("documentId") {
            None => Err(WireError::MissingField("documentId")),
            Some(Value::Text(s)) if s.len() > MAX_DOCUMENT_ID_CHARS => Err(WireError::TooLong {
                field: "documentId",
                max: MAX_DOCUMENT_ID_CHARS,
            }),
            Some(Value::Text(s)) => s
                .parse()
                .map_err(|_| WireError::BadDocumentId(s.chars().take(80).collect())),
            Some(v) => match as_bytes(v) {
                Some(b) => <[u8; 16]>::try_from(b)
                    .map(DocumentId::from_bytes)
                    .map_err(|_| WireError::BadDocumentId(format!("{} raw bytes", b.len()))),
                None => Err(WireError::WrongType {
                    field: "documentId",
                    expected: "a bs58check text string",
                }),
            },
        }
    }

    fn metadata(&self) -> Result<Option<PeerMetadata>, WireError> {
        let Some(v) = self.get("peerMetadata").or_else(|| self.get("metadata")) else {
            return Ok(None);
        };
        let wrong = |field, expected| WireError::WrongType { field, expected };
        let Value::Map(entries) = v else {
            return Err(wrong("peerMetadata", "a map"));
        };
        let mut md = PeerMetadata::default();
        for (k, v) in entries {
            match (k.as_text(), v) {
                (Some("storageId"), Value::Null) => {}
                (Some("storageId"), Value::Text(s)) if s.len() > MAX_ID_BYTES => {
                    return Err(WireError::TooLong {
                        field: "storageId",
                        max: MAX_ID_BYTES,
                    });
                }
                (Some("storageId"), Value::Text(s)) => md.storage_id = Some(StorageId(s.clone())),
                (Some("storageId"), _) => return Err(wrong("storageId", "a text string")),
                (Some("isEphemeral"), Value::Null) => {}
                (Some("isEphemeral"), Value::Bool(b)) => md.is_ephemeral = *b,
                (Some("isEphemeral"), _) => return Err(wrong("isEphemeral", "a boolean")),
                _ => {}
            }
        }
        Ok(Some(md))
    }

    fn new_heads(&self) -> Result<BTreeMap<StorageId, RemoteHeads>, WireError> {
        let wrong = |expected| WireError::WrongType {
            field: "newHeads",
            expected,
        };
        let Some(v) = self.get("newHeads") else {
            return Err(WireError::MissingField("newHeads"));
        };
        let Value::Map(entries) = v else {
            return Err(wrong("a map from storage id to heads"));
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let (Some(sid), Value::Map(inner)) = (k.as_text(), v) else {
                return Err(wrong("a map from storage id to {heads, timestamp}"));
            };
            if sid.len() > MAX_ID_BYTES {
                return Err(WireError::TooLong {
                    field: "newHeads",
                    max: MAX_ID_BYTES,
                });
            }
            let mut heads = Vec::new();
            let mut timestamp = 0;
            for (ik, iv) in inner {
                match (ik.as_text(), iv) {
                    (Some("heads"), Value::Array(hs)) => {
                        for h in hs {
                            heads.push(
                                h.as_text()
                                    .ok_or(wrong("heads as text strings"))?
                                    .to_string(),
                            );
                        }
                    }
                    (Some("timestamp"), t) => {
                        timestamp = as_uint(t).ok_or(wrong("a whole-number timestamp"))?
                    }
                    _ => {}
                }
            }
            out.insert(StorageId(sid.to_string()), RemoteHeads { heads, timestamp });
        }
        Ok(out)
    }
}

/// A byte string, possibly inside the typed-array tag 64 that cbor-x may add.
fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Bytes(b) => Some(b),
        Value::Tag(64, inner) => match inner.as_ref() {
            Value::Bytes(b) => Some(b),
            _ => None,
        },
        _ => None,
    }
}

/// An unsigned integer, or a float64 holding one exactly (cbor-x sends those).
fn as_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(i) => u64::try_from(*i).ok(),
        Value::Float(f) if f.is_finite() && *f >= 0.0 && f.fract() == 0.0 => {
            (*f <= MAX_SAFE_INTEGER).then_some(*f as u64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(&v, &mut out).unwrap();
        out
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
    }

    #[test]
    fn every_kind_round_trips() {
        let doc = DocumentId::random();
        let p = PeerId::from("peer-a");
        let q = PeerId::from("peer-b");
        let mut new_heads = BTreeMap::new();
        new_heads.insert(
            StorageId("s1".into()),
            RemoteHeads {
                heads: vec!["abc".into()],
                timestamp: 1_700_000_000_000,
            },
        );
        let msgs = vec![
            Message::Join {
                sender_id: p.clone(),
                supported_protocol_versions: Some(vec!["1".into()]),
                metadata: Some(PeerMetadata {
                    storage_id: Some(StorageId("store".into())),
                    is_ephemeral: false,
                }),
            },
            Message::Peer {
                sender_id: q.clone(),
                target_id: p.clone(),
                selected_protocol_version: "1".into(),
                metadata: Some(PeerMetadata::default()),
            },
            Message::Request {
                sender_id: p.clone(),
                target_id: q.clone(),
                document_id: doc,
                data: vec![0x42, 1, 2],
            },
            Message::Sync {
                sender_id: p.clone(),
                target_id: q.clone(),
                document_id: doc,
                data: vec![0x42],
            },
            Message::DocUnavailable {
                sender_id: q.clone(),
                target_id: p.clone(),
                document_id: doc,
            },
            Message::Ephemeral {
                sender_id: p.clone(),
                target_id: q.clone(),
                document_id: doc,
                session_id: "sess".into(),
                count: 7,
                data: vec![0xa0],
            },
            Message::Error {
                message: "bad".into(),
                sender_id: Some(q.clone()),
                target_id: None,
            },
            Message::Leave {
                sender_id: p.clone(),
            },
            Message::RemoteSubscriptionChange {
                sender_id: p.clone(),
                target_id: q.clone(),
                add: vec![StorageId("x".into())],
                remove: vec![],
            },
            Message::RemoteHeadsChanged {
                sender_id: p.clone(),
                target_id: q.clone(),
                document_id: doc,
                new_heads,
            },
        ];
        let bare = Message::Join {
            sender_id: p.clone(),
            supported_protocol_versions: Some(vec!["1".into()]),
            metadata: None,
        };
        for m in msgs.into_iter().chain([bare]) {
            let bytes = m.encode();
            assert_eq!(Message::decode(&bytes).unwrap(), m, "{:?}", m.kind());
        }
    }

    #[test]
    fn accepts_float_integers_undefined_storage_id_and_tagged_bytes() {
        let doc = DocumentId::random();
        // cbor-x writes `count` as a float64 and may tag Uint8Arrays with tag 64.
        let frame = cbor(map(vec![
            ("type", text("ephemeral")),
            ("senderId", text("js")),
            ("targetId", text("server")),
            ("documentId", text(&doc.to_string())),
            ("sessionId", text("s")),
            ("count", Value::Float(12.0)),
            ("data", Value::Tag(64, Box::new(Value::Bytes(vec![1, 2])))),
        ]));
        match Message::decode(&frame).unwrap() {
            Message::Ephemeral { count, data, .. } => {
                assert_eq!(count, 12);
                assert_eq!(data, vec![1, 2]);
            }
            other => panic!("{other:?}"),
        }

        // storageId: undefined (CBOR simple 23), isEphemeral missing, no versions.
        let mut frame = cbor(map(vec![
            ("type", text("join")),
            ("senderId", text("js")),
            (
                "peerMetadata",
                map(vec![
                    ("storageId", Value::Null),
                    ("isEphemeral", Value::Bool(true)),
                ]),
            ),
        ]));
        let null_at = frame.iter().rposition(|b| *b == 0xf6).unwrap();
        frame[null_at] = 0xf7; // undefined
        match Message::decode(&frame).unwrap() {
            Message::Join {
                supported_protocol_versions,
                metadata,
                ..
            } => {
                assert_eq!(supported_protocol_versions, None);
                assert_eq!(
                    metadata,
                    Some(PeerMetadata {
                        storage_id: None,
                        is_ephemeral: true
                    })
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_with_errors_that_name_the_field() {
        let doc = DocumentId::random().to_string();
        let sync = |data: Value| {
            cbor(map(vec![
                ("type", text("sync")),
                ("senderId", text("a")),
                ("targetId", text("b")),
                ("documentId", text(&doc)),
                ("data", data),
            ]))
        };
        assert_eq!(
            Message::decode(&sync(text("not bytes"))),
            Err(WireError::WrongType {
                field: "data",
                expected: "a byte string"
            })
        );
        assert_eq!(
            Message::decode(&sync(Value::Null)),
            Err(WireError::MissingField("data"))
        );
        let fractional = cbor(map(vec![
            ("type", text("ephemeral")),
            ("senderId", text("a")),
            ("targetId", text("b")),
            ("documentId", text(&doc)),
            ("sessionId", text("s")),
            ("count", Value::Float(1.5)),
            ("data", Value::Bytes(vec![])),
        ]));
        assert!(matches!(
            Message::decode(&fractional),
            Err(WireError::WrongType { field: "count", .. })
        ));
        let bad_doc = cbor(map(vec![
            ("type", text("request")),
            ("senderId", text("a")),
            ("targetId", text("b")),
            ("documentId", text("nope")),
            ("data", Value::Bytes(vec![0x42])),
        ]));
        assert!(matches!(
            Message::decode(&bad_doc),
            Err(WireError::BadDocumentId(_))
        ));
        assert!(matches!(
            Message::decode(&cbor(Value::Array(vec![]))),
            Err(WireError::NotAMap)
        ));
        assert!(matches!(
            Message::decode(&cbor(map(vec![("type", text("gossip"))]))),
            Err(WireError::UnknownType(_))
        ));
        let good = sync(Value::Bytes(vec![0x42]));
        assert!(matches!(
            Message::decode(&good[..good.len() - 3]),
            Err(WireError::Shape(ShapeError::Truncated))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Message::decode(&trailing), Err(WireError::TrailingBytes(1)));
        assert!(Message::decode(&[]).is_err());
    }
}
