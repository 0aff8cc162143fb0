//! The automerge-repo WebSocket protocol, version "1", and a sans-IO sync engine.
//!
//! - [`ids`]: document, peer and storage identifiers as automerge-repo spells them.
//! - [`wire`]: the CBOR messages of one WebSocket frame each.
//! - [`engine`]: the sync engine (relay server side and field client side), with
//!   durable-before-acknowledged group commit, per-document access and persisted
//!   sync states. No I/O: the driver passes frames in and sends frames out.
//! - [`memory`]: an in-memory [`crate::store::Store`], for tests and tools.

pub mod engine;
pub mod ids;
pub mod memory;
pub mod wire;

pub use engine::{
    BatchToken, CloseReason, ConnId, ConnInfo, Engine, EngineConfig, EngineError, EngineStats,
    Output,
};
pub use ids::{DocumentId, PeerId, StorageId};
pub use wire::{Message, MessageKind, PeerMetadata, WireError};
