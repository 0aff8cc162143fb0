//! dealersync-server: the relay that automerge-repo clients sync with.
//!
//! - [`storage`]: SQLite storage of documents, sync states and the audit log.

pub mod storage;
