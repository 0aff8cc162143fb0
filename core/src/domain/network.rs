//! The network document, written by head office: the site tree, the model catalogue
//! and discount limits.

use automerge::AutoCommit;
use automerge::transaction::Transactable;

use crate::schema::{
    Fen, Millis, NetworkDocument, SiteChannel, SiteHeader, SiteKind, VehicleModel,
};

use super::{
    DomainError, Result, commit_write, key_like, map_at, non_empty, not_negative, root_map,
    validate_header,
};

/// Adds a site to the network's site tree, or updates it. Its parent must already be in
/// the tree, which keeps the tree rooted at head office. A header without a channel
/// keeps the channel the site already has (the registry, which renames and moves
/// sites, does not know channels; [`set_site_channel`] changes them).
pub fn put_site(
    net_doc: &mut AutoCommit,
    header: &SiteHeader,
    by: &str,
    now: Millis,
) -> Result<()> {
    validate_header(header)?;
    let sites = root_map(net_doc, "network", "sites")?;
    if let Some(parent) = &header.parent
        && map_at(net_doc, &sites, parent)?.is_none()
    {
        return Err(DomainError::UnknownSite { id: parent.clone() });
    }
    let mut header = header.clone();
    if header.channel.is_none() && map_at(net_doc, &sites, &header.id)?.is_some() {
        let old: Option<SiteHeader> =
            autosurgeon::hydrate_prop(net_doc, &sites, header.id.as_str()).ok();
        header.channel = old.and_then(|h| h.channel);
    }
    check_channel(&header)?;
    let header = &header;
    commit_write(
        net_doc,
        format!("{by}: put site {}", header.id),
        now,
        |doc| {
            autosurgeon::reconcile_prop(doc, &sites, header.id.as_str(), header)?;
            Ok(())
        },
    )
}

/// An agent sells between the store and the customer, so it cannot be the direct
/// channel (直销 is the store's own sales).
fn check_channel(header: &SiteHeader) -> Result<()> {
    if header.kind == SiteKind::Agent && header.channel == Some(SiteChannel::Direct) {
        return Err(DomainError::Invalid {
            field: "channel".into(),
            reason: format!(
                "{} is an agent: its channel is general_agent, franchise_agent or brand_store, not direct",
                header.id
            ),
        });
    }
    Ok(())
}

/// Sets (or with `None` clears) a site's sales channel in the network document, so
/// reports can label sites 直销 / 总代理 / 特许代理 / 品牌专卖. The site must be in the
/// tree; an agent cannot be `direct`.
pub fn set_site_channel(
    net_doc: &mut AutoCommit,
    site: &str,
    channel: Option<SiteChannel>,
    by: &str,
    now: Millis,
) -> Result<()> {
    let sites = root_map(net_doc, "network", "sites")?;
    let Some(obj) = map_at(net_doc, &sites, site)? else {
        return Err(DomainError::UnknownSite { id: site.into() });
    };
    let mut header: SiteHeader =
        autosurgeon::hydrate_prop(net_doc, &sites, site).map_err(|e| DomainError::Read {
            what: format!("site {site}"),
            source: Box::new(e),
        })?;
    header.channel = channel;
    check_channel(&header)?;
    let label = channel.map_or("none", SiteChannel::as_str);
    commit_write(
        net_doc,
        format!("{by}: channel of {site} = {label}"),
        now,
        |doc| {
            match channel {
                Some(c) => doc.put(&obj, "channel", c.as_str())?,
                None => doc.delete(&obj, "channel")?,
            }
            Ok(())
        },
    )
}

/// Sets the day of the month (CST) by the end of which sites submit next month's
/// forecast. 1 to 28, so that every month has that day.
pub fn set_forecast_deadline(
    net_doc: &mut AutoCommit,
    day: i64,
    by: &str,
    now: Millis,
) -> Result<()> {
    if !(1..=28).contains(&day) {
        return Err(DomainError::Invalid {
            field: "forecast deadline day".into(),
            reason: format!("{day} is not a day every month has: give 1 to 28"),
        });
    }
    commit_write(
        net_doc,
        format!("{by}: forecast deadline on day {day}"),
        now,
        |doc| {
            doc.put(automerge::ROOT, "forecastDeadlineDay", day)?;
            Ok(())
        },
    )
}

/// Adds a model to the catalogue, or updates it.
pub fn put_model(
    net_doc: &mut AutoCommit,
    model: &VehicleModel,
    by: &str,
    now: Millis,
) -> Result<()> {
    key_like("model code", &model.code)?;
    non_empty(format!("model {} name", model.code), &model.name)?;
    not_negative(format!("model {} cost", model.code), model.cost)?;
    not_negative(format!("model {} listPrice", model.code), model.list_price)?;
    let models = root_map(net_doc, "network", "models")?;
    commit_write(
        net_doc,
        format!("{by}: put model {}", model.code),
        now,
        |doc| {
            autosurgeon::reconcile_prop(doc, &models, model.code.as_str(), model)?;
            Ok(())
        },
    )
}

/// The roles a discount limit can be set for (those of the access tokens).
pub const DISCOUNT_ROLES: [&str; 4] = ["consultant", "manager", "head_office", "admin"];

/// Sets the largest discount per vehicle that `role` may grant without approval.
pub fn set_discount_limit(
    net_doc: &mut AutoCommit,
    role: &str,
    limit: Fen,
    by: &str,
    now: Millis,
) -> Result<()> {
    if !DISCOUNT_ROLES.contains(&role) {
        return Err(DomainError::Invalid {
            field: "discount limit role".into(),
            reason: format!("{role:?} is not one of {}", DISCOUNT_ROLES.join(", ")),
        });
    }
    not_negative(format!("discount limit of {role}"), limit)?;
    let limits = root_map(net_doc, "network", "discountLimits")?;
    commit_write(
        net_doc,
        format!("{by}: discount limit of {role} = {limit}"),
        now,
        |doc| {
            doc.put(&limits, role, limit)?;
            Ok(())
        },
    )
}

/// The region a site belongs to: the distribution centre at or above it in the
/// network's tree; head office (and a site hanging directly under it) is the region of
/// the tree's root. `None` for a site the network does not list.
pub fn region_of(net: &NetworkDocument, site: &str) -> Option<String> {
    let mut at = net.sites.get(site)?;
    // A loop in a corrupt tree ends the walk after as many steps as there are sites.
    for _ in 0..=net.sites.len() {
        if at.kind == SiteKind::DistributionCentre {
            return Some(at.id.clone());
        }
        match at.parent.as_deref().and_then(|p| net.sites.get(p)) {
            Some(parent) => at = parent,
            None => return Some(at.id.clone()),
        }
    }
    Some(at.id.clone())
}

/// Both regions, or the error naming the site the network does not list.
pub(super) fn regions(net: &NetworkDocument, from: &str, to: &str) -> Result<(String, String)> {
    let region =
        |s: &str| region_of(net, s).ok_or_else(|| DomainError::UnknownSite { id: s.to_string() });
    Ok((region(from)?, region(to)?))
}
