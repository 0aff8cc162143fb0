//! dealersync-server: the relay that automerge-repo clients sync with.
//!
//! - [`storage`]: SQLite storage of documents, sync states and the audit log.
//! - [`documents`]: the admin path that creates documents.
//! - [`telemetry`]: tracing set-up and the Prometheus metric names.
//! - [`wire`]: what the transport reads from frames (type, ids) and its own `error`s.

pub mod documents;
pub mod storage;
pub mod telemetry;
pub mod wire;
