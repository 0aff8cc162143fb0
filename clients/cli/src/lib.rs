//! dealersync-cli: the field client's library, used by the `dealersync` binary.
//!
//! Consultants and managers run `dealersync` on laptops at roadshows and in
//! distribution centres. Everything but `login` and `sync` works from the documents
//! stored on the device, with no network; `sync` exchanges changes with the relay when
//! there is one.
//!
//! - [`cli`]: the command tree.
//! - [`home`]: the home directory: login (`config.json`) and where the store lives.
//! - [`store`]: the SQLite store behind `core`'s `Store` trait, and sync bookkeeping.
//! - [`workspace`]: loading documents and changing them durably.
//! - [`ctx`]: what every command shares (options, finding a record, printing).
//! - [`commands`], [`edit`], [`care`], [`manage`], [`conflicts`], [`report`]: what each command does.
//! - [`sync`]: `login`, `sync`, `sync --watch` and `status`; [`periods`]: following a
//!   site's new monthly working document.
//! - [`output`]: tables, JSON, CSV, money and dates.

pub mod care;
pub mod cli;
pub mod commands;
pub mod conflicts;
pub mod ctx;
pub mod edit;
pub mod home;
pub mod manage;
pub mod output;
pub mod periods;
pub mod relays;
pub mod report;
pub mod store;
pub mod sync;
pub mod transport;
pub mod workspace;
