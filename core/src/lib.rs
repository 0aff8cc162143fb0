//! dealersync-core: everything dealersync knows that does no I/O.
//!
//! The server (`dealersync-server`) and the field client (`dealersync`) are thin shells
//! around this crate. It depends on no runtime, no database and no network, so every
//! rule here can be tested with plain function calls.
//!
//! Layout, one concept per module:
//! - [`access`]: who may read and write which document, from role and site tree.
//! - [`schema`]: the site and network documents as they live in automerge: plain
//!   JSON-like values that a JavaScript client can read and write.
//! - [`domain`]: validated operations on a site document (customers, vehicles, parts,
//!   forecasts, targets). A rejected operation leaves the document unchanged.
//! - [`conflicts`]: business rules a CRDT merge can break (a VIN sold twice, a
//!   customer entered twice, ...), listed deterministically on every replica.
//! - [`reports`]: consolidation for head office: stock, forecast roll-up, order plan,
//!   KPIs against targets. Pure functions over documents.
//! - [`protocol`]: the automerge-repo WebSocket wire protocol (CBOR messages) and a
//!   sans-IO sync engine used by the relay and by the field client.
//! - [`spreadsheet`]: CSV cells made safe to open in a spreadsheet (no formulas).
//! - [`store`]: the storage trait that the server's and the client's SQLite stores
//!   implement.
//! - [`time`]: China Standard Time (fixed UTC+8), month keys, CST days, and `now_ms`,
//!   the one read of the wall clock (everything else here takes `now` as an argument).

pub mod access;
pub mod conflicts;
pub mod discovery;
pub mod domain;
pub mod protocol;
pub mod reports;
pub mod schema;
pub mod spreadsheet;
pub mod store;
pub mod time;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
