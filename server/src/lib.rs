//! dealersync-server: the relay that automerge-repo clients sync with.
//!
//! - [`storage`]: SQLite storage of documents, sync states and the audit log.
//! - [`documents`]: the admin path that creates documents.
//! - [`relay`]: the driver that runs the sync engine with group commits.
//! - [`ws`]: one task per WebSocket: limits, keepalive, metrics.
//! - [`server`]: routes, start-up, graceful shutdown.
//! - [`telemetry`]: tracing set-up and the Prometheus metric names.
//! - [`wire`]: what the transport reads from frames (type, ids) and its own `error`s.
//! - [`api`]: the JSON API and the admin operations shared with the CLI.
//! - [`auth`]: token verification, issuing and extraction from requests.
//! - [`demo`]: the demo network `serve --demo` seeds.
//! - [`registry`]: the site registry, token records and revocations.

pub mod api;
pub mod auth;
pub mod demo;
pub mod documents;
pub mod fairness;
pub mod registry;
pub mod relay;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod wire;
pub mod ws;
