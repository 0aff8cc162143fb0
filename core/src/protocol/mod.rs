//! The automerge-repo WebSocket protocol, version "1", and a sans-IO sync engine.
//!
//! - [`ids`]: document, peer and storage identifiers as automerge-repo spells them.

pub mod ids;

pub use ids::{DocumentId, PeerId, StorageId};
