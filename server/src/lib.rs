//! dealersync-server: the relay.
