//! The automerge-repo WebSocket protocol, version "1", and a sans-IO sync engine.
//!
//! - [`ids`]: document, peer and storage identifiers as automerge-repo spells them.
//! - [`wire`]: the CBOR messages of one WebSocket frame each; [`cbor_shape`] bounds a
//!   frame's structure before it is decoded.
//! - [`limits`]: every bound on what a peer may send; [`validate`] checks a sync
//!   message against them before automerge sees it.
//! - [`engine`]: the sync engine (relay server side and field client side), with
//!   durable-before-acknowledged group commit, per-document access and persisted
//!   sync states. No I/O: the driver passes frames in and sends frames out.
//! - [`receive`]: automerge's `receive_sync_message` without its walk over the whole
//!   history when the walk cannot change anything (the engine's default path).
//! - [`memory`]: an in-memory [`crate::store::Store`], for tests and tools.

pub mod cbor_shape;
pub mod engine;
pub mod ids;
pub mod inbound;
pub mod limits;
pub mod memory;
pub mod receive;
pub mod validate;
pub mod wire;

pub use engine::{
    BatchToken, CloseReason, ConnId, ConnInfo, Engine, EngineConfig, EngineError, EngineStats,
    Output,
};
pub use ids::{DocumentId, PeerId, StorageId};
pub use inbound::{Inbound, InboundError, decode_frame};
pub use limits::SyncLimits;
pub use receive::{ReceivePath, Trim};
pub use validate::{SyncRejected, ValidSync, validate_sync};
pub use wire::{Message, MessageKind, PeerMetadata, WireError};
