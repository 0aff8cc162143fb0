//! dealersync-server: the relay that automerge-repo clients sync with.
//!
//! - [`storage`]: SQLite storage of documents, sync states and the audit log.
//! - [`documents`]: the admin path that creates documents.
//! - [`relay`]: the driver that runs the sync engine with group commits.
//! - [`ws`]: one task per WebSocket: limits, keepalive, metrics.
//! - [`server`]: routes, start-up, graceful shutdown.
//! - [`extensions`]: what plugs into the sync endpoint (authorizer, checks, routes).
//! - [`listener`]: the accept loop: header timeout, connection limits, fd budget.
//! - [`gate`]: connection counts per client address and in total.
//! - [`telemetry`]: tracing set-up and the Prometheus metric names.
//! - [`wire`]: what the transport reads from frames (type, ids) and its own `error`s.
//! - [`admission`]: who may open a WebSocket and stay connected (token, site, peer
//!   ids, revocation).
//! - [`api`]: the JSON API and the admin operations shared with the CLI.
//! - [`auth`]: token verification, issuing and extraction from requests.
//! - [`demo`]: the demo network `serve --demo` seeds.
//! - [`registry`]: the site registry, token records and revocations.
//! - [`peer_binding`]: peer and storage ids bound to users and devices.
//! - [`site_rules`]: what site ids and names may be.
//! - [`revocation`]: revocations as open connections see them (in memory, notified).
//! - [`signin`], [`signin_routes`]: one-time sign-in codes exchanged for a browser
//!   session or a device token.
//! - [`web`]: the board and console pages, embedded in the binary.
//! - [`web_app`]: the field app (clients/web) served at `/app/`, embedded in the binary.

pub mod admission;
pub mod api;
pub mod archive;
pub mod auth;
pub mod backup;
pub mod config_file;
pub mod demo;
pub mod discovery;
pub mod documents;
pub mod downstreams;
pub mod extensions;
pub mod fairness;
pub mod gate;
pub mod late_forward;
pub mod listener;
pub mod peer_binding;
pub mod registry;
pub mod relay;
pub mod reports_api;
pub mod revocation;
pub mod server;
pub mod signin;
pub mod signin_routes;
pub mod site_rules;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod trust;
pub mod trust_routes;
pub mod upstream;
pub mod web;
pub mod web_app;
pub mod wire;
pub mod ws;
