//! Finding a relay on the local network (`dealersync relays`, `dealersync sync --via
//! auto`): a DNS-SD browse for `_dealersync._tcp` over multicast DNS, the TXT record
//! read by `dealersync_core::discovery`, and the relay of the device's subtree chosen
//! (the closest to its site). The login stays the same: the local relay verifies the
//! token head office issued.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dealersync_core::discovery::{FoundRelay, RelayAdvert, SERVICE_TYPE, choose_relay};
use mdns_sd::{ServiceDaemon, ServiceEvent};

use crate::workspace::Workspace;

/// How long `relays` and `sync --via auto` listen for answers by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);

/// The relays that answer within `wait`, sorted by instance name.
pub fn browse(wait: Duration) -> Result<Vec<FoundRelay>> {
    let daemon = ServiceDaemon::new().context("cannot start multicast DNS on this device")?;
    let events = daemon
        .browse(SERVICE_TYPE)
        .context("cannot browse the local network")?;
    let until = Instant::now() + wait;
    let mut found: Vec<FoundRelay> = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        let Ok(event) = events.recv_timeout(left) else {
            break;
        };
        let ServiceEvent::ServiceResolved(info) = event else {
            continue;
        };
        let instance = info
            .get_fullname()
            .strip_suffix(&format!(".{SERVICE_TYPE}"))
            .unwrap_or(info.get_fullname())
            .to_string();
        let advert = match RelayAdvert::from_txt(
            info.get_properties()
                .iter()
                .map(|p| (p.key().to_string(), p.val_str().to_string())),
        ) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(%instance, error = %e, "not a dealersync relay's record");
                continue;
            }
        };
        // An IPv4 address other devices can reach, loopback last.
        let mut addrs: Vec<IpAddr> = info.get_addresses().iter().copied().collect();
        addrs.sort_by_key(|a| (a.is_loopback(), a.is_ipv6(), *a));
        let Some(addr) = addrs.first() else { continue };
        let host = match addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let scheme = if advert.tls { "https" } else { "http" };
        let relay = FoundRelay {
            instance,
            url: format!("{scheme}://{host}:{}", info.get_port()),
            advert,
        };
        found.retain(|r| r.instance != relay.instance);
        found.push(relay);
    }
    let _ = daemon.shutdown();
    found.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(found)
}

/// The device's site, then its parent, up to head office, from the network document
/// (just the site itself before the first sync).
pub fn lineage(ws: &Workspace) -> Result<Vec<String>> {
    let network = ws.network()?;
    let mut out = vec![ws.config.claims.site.clone()];
    while let Some(parent) = network
        .sites
        .get(out.last().expect("not empty"))
        .and_then(|s| s.parent.clone())
    {
        if out.contains(&parent) || out.len() > 64 {
            break; // a cycle in a damaged document must not hang the CLI
        }
        out.push(parent);
    }
    Ok(out)
}

/// The URL `sync --via` syncs through: `auto` browses the LAN for the closest relay of
/// the device's subtree; anything else is taken as the relay's URL.
pub fn resolve_via(ws: &Workspace, via: &str, wait: Duration) -> Result<String> {
    if via != "auto" {
        return Ok(via.to_string());
    }
    let found = browse(wait)?;
    let lineage = lineage(ws)?;
    match choose_relay(&found, &lineage) {
        Some(r) => {
            eprintln!(
                "syncing through {} at {} (subtree {})",
                r.instance, r.url, r.advert.subtree
            );
            Ok(r.url.clone())
        }
        None if found.is_empty() => bail!(
            "no dealersync relay answered on this network within {}s; sync directly with \
             `dealersync sync`",
            wait.as_secs()
        ),
        None => bail!(
            "{} relay(s) found, none serving site {} (see `dealersync relays`); sync directly \
             with `dealersync sync`",
            found.len(),
            ws.config.claims.site
        ),
    }
}
