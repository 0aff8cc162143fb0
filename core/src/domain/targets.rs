//! Targets: a site's (in the network document) and a consultant's (in the site
//! document).

use automerge::{AutoCommit, ObjId};

use crate::schema::{Millis, Period, Target};

use super::{
    DomainError, Result, commit_write, key_like, map_at, not_negative, root_map, writable_map,
};

/// Sets a site's target for a period (`2026`, `2026-Q1`, `2026-03`, `2026-W09`).
pub fn set_site_target(
    net_doc: &mut AutoCommit,
    site: &str,
    period: &str,
    target: &Target,
    by: &str,
    now: Millis,
) -> Result<()> {
    let period = period.parse::<Period>()?.to_string();
    validate_target(&format!("target {site}/{period}"), target)?;
    let sites = root_map(net_doc, "network", "sites")?;
    if map_at(net_doc, &sites, site)?.is_none() {
        return Err(DomainError::UnknownSite { id: site.into() });
    }
    let targets = root_map(net_doc, "network", "targets")?;
    commit_write(
        net_doc,
        format!("{by}: set target of site {site} for {period}"),
        now,
        |doc| put_target(doc, &targets, site, &period, target),
    )
}

/// Sets a consultant's target for a period at this site.
pub fn set_consultant_target(
    doc: &mut AutoCommit,
    consultant: &str,
    period: &str,
    target: &Target,
    by: &str,
    now: Millis,
) -> Result<()> {
    let consultant = key_like("consultant", consultant)?;
    let period = period.parse::<Period>()?.to_string();
    validate_target(&format!("target {consultant}/{period}"), target)?;
    let targets = root_map(doc, "site", "targets")?;
    commit_write(
        doc,
        format!("{by}: set target of {consultant} for {period}"),
        now,
        |doc| put_target(doc, &targets, &consultant, &period, target),
    )
}

fn validate_target(field: &str, t: &Target) -> Result<()> {
    not_negative(format!("{field} units"), t.units)?;
    not_negative(format!("{field} revenue"), t.revenue)?;
    for (name, v) in [
        ("visits", t.visits),
        ("calls", t.calls),
        ("testDrives", t.test_drives),
    ] {
        if let Some(v) = v {
            not_negative(format!("{field} {name}"), v)?;
        }
    }
    Ok(())
}

fn put_target(
    doc: &mut AutoCommit,
    targets: &ObjId,
    owner: &str,
    period: &str,
    t: &Target,
) -> Result<()> {
    let owner_map = writable_map::<Target>(doc, targets, owner)?;
    autosurgeon::reconcile_prop(doc, &owner_map, period, t)?;
    Ok(())
}
