//! Following a site's monthly working documents (docs/growth.md): after the relay's
//! carry-over, the network document names each site's new working document; `sync`
//! moves the device onto it and keeps syncing the one it left (now an archive) until
//! the server has every change this device made there. Reports read each site's
//! chain back as one site ([`held_sites`]).

use anyhow::{Context, Result, anyhow};
use dealersync_core::domain::{self, PeriodDocument};
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{Millis, Period, SiteDocument};

use crate::home::DocRef;
use crate::workspace::Workspace;

/// Moves each site of the login onto the working document the network document on
/// this device names, and saves the login. Returns whether any site moved.
pub fn follow(ws: &mut Workspace) -> Result<bool> {
    let Some(network) = ws.load(&ws.config.network)? else {
        return Ok(false);
    };
    let moved = ws
        .config
        .follow(&network)
        .context("the network document names a site's document wrongly")?;
    if moved.is_empty() {
        return Ok(false);
    }
    ws.home.save_config(&ws.config)?;
    tracing::info!(sites = ?moved, "following the sites' new working documents");
    Ok(true)
}

/// Stops syncing the archives the server has every local change of; an archive that
/// still holds changes the server has not taken (refused after its grace week, or not
/// reached yet) stays, and `status` shows them.
pub fn drop_handed_in_archives(ws: &mut Workspace) -> Result<()> {
    let mut changed = false;
    let mut sites = std::mem::take(&mut ws.config.sites);
    for site in &mut sites {
        let mut keep = Vec::new();
        for id in &site.archives {
            let pending = match ws.load(id)? {
                Some(mut am) => {
                    let rec = ws.state.record(id)?;
                    crate::store::unacked(am.document(), &rec.server_heads)
                }
                None => 0,
            };
            if pending > 0 {
                keep.push(*id);
            }
        }
        changed |= keep.len() != site.archives.len();
        site.archives = keep;
    }
    ws.config.sites = sites;
    if changed {
        ws.home.save_config(&ws.config)?;
    }
    Ok(())
}

/// An archive of a site's chain (named in the network document) that is not on this
/// device: a device that logged in after the carry-over never held it. The months it
/// records are not available in this device's reports, never counted as zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingArchive {
    /// The site.
    pub site: String,
    /// The archive.
    pub document: DocumentId,
    /// The first month it records; `None` for the site's first document (from the
    /// site's start).
    pub from: Option<String>,
    /// The month its successor starts: it records the months before.
    pub until: String,
}

impl MissingArchive {
    /// Whether the months it records overlap `period`. A month key that does not parse
    /// counts as overlapping (unknown: not available rather than short).
    pub fn covers(&self, period: Period) -> bool {
        let start = |m: &str| m.parse::<Period>().ok().map(|p| p.range_millis().0);
        let (p_start, p_end) = period.range_millis();
        let (Some(until), from) = (start(&self.until), self.from.as_deref().map(start)) else {
            return true;
        };
        let from = match from {
            None => Millis::MIN,
            Some(Some(f)) => f,
            Some(None) => return true,
        };
        p_start < until && p_end > from
    }

    /// Which months it records, for people.
    pub fn months(&self) -> String {
        match &self.from {
            Some(from) => format!("{from} to the month before {}", self.until),
            None => format!("the months before {}", self.until),
        }
    }
}

/// What [`held_sites`] finds on this device.
pub struct HeldSites {
    /// Each site held, its chain combined.
    pub sites: Vec<(DocRef, SiteDocument)>,
    /// The archives of those chains this device does not hold.
    pub missing: Vec<MissingArchive>,
}

/// Every site document this device may read and holds, each read as its chain
/// combined (`domain::combine_periods`: the archives on this device, oldest first, then
/// the working document) so that reports over months before a carry-over keep what
/// stayed in the archives; and the archives of those chains this device does not hold.
/// The chain is the one the network document on this device names.
pub fn held_sites(ws: &Workspace) -> Result<HeldSites> {
    let network = ws.load(&ws.config.network)?;
    let mut held = Vec::new();
    let mut missing = Vec::new();
    for d in ws.config.documents() {
        let Some(entry) = d.site.as_ref().filter(|_| d.access.can_read()) else {
            continue;
        };
        let Some(am) = ws.load(&d.id)? else {
            continue;
        };
        let unreadable = || format!("the document of site {} is unreadable", d.label);
        let working = PeriodDocument::read(&am).with_context(unreadable)?;
        let chain = match &network {
            Some(net) => domain::site_chain(net, &entry.id)
                .context("the network document names a site's documents wrongly")?,
            None => Vec::new(),
        };
        let current = d.id.to_string();
        let Some(at) = chain.iter().position(|l| l.document == current) else {
            // Never carried over (or the network document here is older than the
            // site's document): the working document is the whole site.
            held.push((d, working.site));
            continue;
        };
        let mut docs = Vec::with_capacity(at + 1);
        for (link, next) in chain[..at].iter().zip(&chain[1..=at]) {
            let id: DocumentId = link
                .document
                .parse()
                .map_err(|e| anyhow!("site {}'s archive id: {e}", entry.id))?;
            match ws.load(&id)? {
                Some(a) => docs.push(PeriodDocument::read(&a).with_context(|| {
                    format!("the archive {id} of site {} is unreadable", entry.id)
                })?),
                None => missing.push(MissingArchive {
                    site: entry.id.clone(),
                    document: id,
                    from: link.month.clone(),
                    until: next.month.clone().unwrap_or_default(),
                }),
            }
        }
        docs.push(working);
        let site = domain::combine_periods(&docs).with_context(unreadable)?;
        held.push((d, site));
    }
    Ok(HeldSites {
        sites: held,
        missing,
    })
}
