//! Helpers shared by the cross-crate tests: the real relay as a child process
//! ([`ServerProcess`]) and real JavaScript automerge-repo clients ([`JsClient`]).
//!
//! Everything here drives real components: the `dealersync-server` binary that
//! `cargo test --workspace` builds, and `@automerge/automerge-repo` 2.5 from npm, run
//! with node through the scripted client in `tests/js/client.mjs`. Every wait has a
//! deadline and fails with what was last seen, never a bare timeout. [`browser`]
//! drives Debian's headless Chromium through the board and console.
//!
//! Layout: [`error`](HarnessError) why a step failed; `npm` the npm packages, installed
//! once; `server_process` the relay binary as a child ([`ServerProcess`], admin
//! commands, free ports); `js_client` the node client; `ref_server` automerge-repo's
//! own sync server; `rust_client` a sync engine on a WebSocket ([`RustClient`]);
//! `fault_proxy` a TCP proxy with link profiles and cuts; `tiers` relays in a chain;
//! `field` the field CLI; `browser` Chromium.

pub mod browser;
pub mod fault_proxy;
pub mod field;
pub mod tiers;

mod error;
mod js_client;
mod npm;
mod ref_server;
mod rust_client;
mod server_process;

pub use error::*;
pub use js_client::*;
pub use npm::*;
pub use ref_server::*;
pub use rust_client::*;
pub use server_process::*;
