//! dealersync-server: the relay.

pub mod auth;
pub mod registry;
