//! dealersync-server: the relay that automerge-repo clients sync with.
//!
//! - [`storage`]: SQLite storage of documents, sync states and the audit log.
//! - [`api`]: the JSON API and the admin operations shared with the CLI.
//! - [`auth`]: token verification, issuing and extraction from requests.
//! - [`registry`]: the site registry, token records and revocations.

pub mod api;
pub mod auth;
pub mod registry;
pub mod storage;
