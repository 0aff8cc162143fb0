//! A relay advertising itself on the local network (`serve --advertise`): DNS-SD over
//! multicast DNS, service type `_dealersync._tcp`, with the TXT record of
//! [`dealersync_core::discovery::RelayAdvert`] (storage id, subtree root, whether it has
//! an upstream). A roadshow laptop or a distribution centre's relay turns it on so that
//! the field CLI finds it (`dealersync relays`, `dealersync sync --via auto`); a
//! central relay in a data centre leaves it off (the default).
//!
//! The advertisement lists every address of the machine's interfaces (kept up to date
//! when they change); a relay listening on loopback only is not reachable from
//! another device, so `--advertise` with a loopback `--listen` is refused.

use std::net::SocketAddr;

use dealersync_core::discovery::{RelayAdvert, SERVICE_TYPE};
use mdns_sd::{ServiceDaemon, ServiceInfo};

/// `serve --advertise`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AdvertiseArgs {
    /// Advertise this relay on the LAN (mDNS/DNS-SD `_dealersync._tcp`), for devices to
    /// find it without an address. Off by default; listen on a LAN address
    /// (e.g. --listen 0.0.0.0:3030).
    #[arg(long, env = "DEALERSYNC_ADVERTISE")]
    pub advertise: bool,
    /// The instance name shown to devices (default: the host name).
    #[arg(long, env = "DEALERSYNC_ADVERTISE_NAME")]
    pub advertise_name: Option<String>,
}

/// Why the relay cannot advertise itself.
#[derive(Debug, thiserror::Error)]
pub enum AdvertiseError {
    /// Listening on loopback: nobody else could connect.
    #[error(
        "--advertise needs a LAN address to listen on (e.g. --listen 0.0.0.0:{0}); {1} is reachable from this machine only"
    )]
    Loopback(u16, SocketAddr),
    /// The mDNS responder could not start or register.
    #[error("cannot advertise on the LAN: {0}")]
    Mdns(#[from] mdns_sd::Error),
}

/// The registered advertisement; withdrawn when dropped (a goodbye packet, so devices
/// forget the relay at once).
pub struct Advertiser {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Advertiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advertiser")
            .field("fullname", &self.fullname)
            .finish()
    }
}

impl Advertiser {
    /// Advertises the relay listening on `addr` under `name`.
    pub fn start(
        name: &str,
        addr: SocketAddr,
        advert: &RelayAdvert,
    ) -> Result<Advertiser, AdvertiseError> {
        if addr.ip().is_loopback() {
            return Err(AdvertiseError::Loopback(addr.port(), addr));
        }
        let daemon = ServiceDaemon::new()?;
        // A DNS label: letters, digits and dashes.
        let host: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let txt: Vec<(&str, String)> = advert.txt();
        let mut info = ServiceInfo::new(
            SERVICE_TYPE,
            name,
            &format!("{host}.local."),
            if addr.ip().is_unspecified() {
                String::new()
            } else {
                addr.ip().to_string()
            },
            addr.port(),
            &txt[..],
        )?;
        if addr.ip().is_unspecified() {
            info = info.enable_addr_auto();
        }
        let fullname = info.get_fullname().to_string();
        daemon.register(info)?;
        tracing::info!(%fullname, subtree = %advert.subtree, "advertising the relay on the LAN");
        Ok(Advertiser { daemon, fullname })
    }
}

impl Drop for Advertiser {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}

/// The default instance name: the host name, else `dealersync`.
pub fn default_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "dealersync".into())
}

/// The site at the root of the subtree a relay serves: its upstream token's site when
/// it runs downstream (read from the token's claims, which its upstream signed), else
/// the root of its own site tree.
pub fn subtree_root(upstream_token: Option<&str>, tree_root: Option<&str>) -> String {
    use base64::Engine as _;
    upstream_token
        .and_then(|t| t.split('.').nth(1))
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|c| c["site"].as_str().map(String::from))
        .or_else(|| tree_root.map(String::from))
        .unwrap_or_default()
}
