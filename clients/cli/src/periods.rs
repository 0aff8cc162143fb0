//! Following a site's monthly working documents (docs/growth.md): after the relay's
//! carry-over, the network document names each site's new working document; `sync`
//! moves the device onto it and keeps syncing the one it left (now an archive) until
//! the server has every change this device made there.

use anyhow::{Context, Result};

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
