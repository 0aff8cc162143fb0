//! The relay's storage: the shared SQLite store (crate `dealersync-sqlite-store`, also
//! used by the field client), in `<data-dir>/dealersync.db`.

pub use dealersync_sqlite_store::*;
