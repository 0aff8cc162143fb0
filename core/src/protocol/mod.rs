//! The automerge-repo WebSocket protocol, version "1", and a sans-IO sync engine.
//!
//! - [`ids`]: document, peer and storage identifiers as automerge-repo spells them.
//! - [`wire`]: the CBOR messages of one WebSocket frame each.

pub mod ids;
pub mod wire;

pub use ids::{DocumentId, PeerId, StorageId};
pub use wire::{Message, MessageKind, PeerMetadata, WireError};
