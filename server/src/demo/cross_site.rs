//! What spans documents in the demo: quarter and week targets in the network document,
//! parts a distribution centre ships to its agents, transfers between regions (one
//! waiting for head office, one approved and on its books at the receiver), a customer
//! registered at three agents (业务重叠), and a distribution centre's adjustment of an
//! agent's forecast.
//!
//! Two-document operations run on copies of both documents, and the copies' changes
//! are merged into the stored ones: a [`DocumentWriter`] edits one document at a time.

use std::collections::BTreeMap;

use automerge::AutoCommit;
use chrono::Datelike as _;
use dealersync_core::access::Role;
use dealersync_core::domain::{self, NewCustomer, NewEvent, NewShipment, NewTransfer};
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::{
    CustomerSource, EventKind, Millis, NetworkDocument, Period, SiteDocument, Target,
    TransferVerdict, VehicleStatus,
};
use dealersync_core::time::{DAY_MS, in_cst};

use crate::registry::{DocumentWriter, Registry, RegistryError};

use super::catalogue::SITES;

/// A copy of a stored document (with its own actor), to edit off the store.
fn load(docs: &dyn DocumentWriter, id: DocumentId) -> Result<AutoCommit, RegistryError> {
    let mut copy = None;
    docs.edit(id, &mut |doc| {
        copy = Some(doc.fork());
        Ok(())
    })?;
    copy.ok_or_else(|| RegistryError::Invalid(format!("document {id} did not load")))
}

/// Stores what was done on a copy: its changes merge into the stored document.
fn store(
    docs: &dyn DocumentWriter,
    id: DocumentId,
    copy: &mut AutoCommit,
) -> Result<(), RegistryError> {
    docs.edit(id, &mut |doc| {
        doc.merge(copy).map_err(|e| RegistryError::Document {
            doc: id,
            reason: e.to_string(),
        })?;
        Ok(())
    })
}

fn domain_err(e: domain::DomainError) -> RegistryError {
    RegistryError::Domain(e)
}

/// The current quarter's and week's keys (CST).
fn quarter_and_week(now: Millis) -> Option<(Period, Period)> {
    let d = in_cst(now)?.date_naive();
    let w = d.iso_week();
    Some((
        Period::Quarter(d.year(), (d.month() - 1) / 3 + 1),
        Period::Week(w.year(), w.week()),
    ))
}

/// Seeds the cross-document records; returns the customer and vehicle records it added
/// (a customer registered again at another site, a transfer received at the receiver).
pub(super) fn seed_cross_site(
    registry: &Registry,
    docs: &dyn DocumentWriter,
    network_id: DocumentId,
    now: Millis,
) -> Result<(usize, usize), RegistryError> {
    let hq = "zhou.min";
    let mut net_doc = load(docs, network_id)?;
    // Quarter and week targets for every selling site: three months' and a quarter
    // month's worth of its monthly units.
    if let Some((quarter, week)) = quarter_and_week(now) {
        let net =
            NetworkDocument::read(&net_doc).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        let month = dealersync_core::schema::month_key(now);
        for s in SITES.iter().filter(|s| s.customers > 0) {
            let Some(monthly) = net.targets.get(s.id).and_then(|t| t.get(&month)) else {
                continue;
            };
            for (period, factor, div) in [(quarter, 3, 1), (week, 1, 4)] {
                let t = Target {
                    units: (monthly.units * factor / div).max(1),
                    revenue: monthly.revenue * factor / div,
                    visits: monthly.visits.map(|v| v * factor / div),
                    calls: monthly.calls.map(|v| v * factor / div),
                    test_drives: monthly.test_drives.map(|v| v * factor / div),
                };
                domain::set_site_target(&mut net_doc, s.id, &period.to_string(), &t, hq, now)
                    .map_err(domain_err)?;
            }
        }
    }
    let ids: BTreeMap<&str, DocumentId> = SITES
        .iter()
        .map(|s| Ok((s.id, registry.site(s.id)?.document_id)))
        .collect::<Result<_, RegistryError>>()?;
    let mut copies: BTreeMap<&str, AutoCommit> = BTreeMap::new();
    for id in ["dc-north", "agent-n1", "agent-n2", "dc-south", "agent-s1"] {
        copies.insert(id, load(docs, ids[id])?);
    }
    let net = NetworkDocument::read(&net_doc).map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let mut take = |id: &str| copies.remove(id).expect("loaded above");

    // Parts: each centre stocks filters, wipers and mats, and ships to its agents; the
    // first shipment of each agent has arrived, the second is on the way. Over the last
    // 12 days, or less early in a month, so that this month's parts report shows them.
    let month_start = dealersync_core::schema::month_key(now)
        .parse::<Period>()
        .map_or(now, |p| p.range_millis().0);
    let span = (12 * DAY_MS).min((now - month_start) * 12 / 13);
    let mut received = BTreeMap::new();
    for (dc_id, agents) in [
        ("dc-north", &["agent-n1", "agent-n2"][..]),
        ("dc-south", &["agent-s1"][..]),
    ] {
        let mut dc = take(dc_id);
        for (part, n) in [("OIL-FILTER-A", 200), ("WIPER-B", 80), ("MAT-SET-C", 40)] {
            domain::adjust_part(&mut dc, part, n, "ma.li", now - 20 * DAY_MS)
                .map_err(domain_err)?;
        }
        for (i, agent_id) in agents.iter().enumerate() {
            let mut agent = take(agent_id);
            for (k, lines) in [
                [("OIL-FILTER-A", 30), ("WIPER-B", 10)],
                [("OIL-FILTER-A", 20), ("MAT-SET-C", 6)],
            ]
            .iter()
            .enumerate()
            {
                let at = now - span * (12 - 6 * k as i64 + i as i64) / 12;
                let new = NewShipment {
                    id: format!("ps-{agent_id}-{k}"),
                    lines: lines.iter().map(|(p, q)| (p.to_string(), *q)).collect(),
                    note: Some(format!("运单 SF{:06}", 1000 + i * 10 + k)),
                };
                domain::ship_parts(&mut dc, &mut agent, &net, &new, "ma.li", at)
                    .map_err(domain_err)?;
                if k == 0 {
                    let clerk = SITES
                        .iter()
                        .find(|s| s.id == *agent_id)
                        .map_or("admin", |s| s.consultants[0].0);
                    domain::receive_parts(&mut agent, &new.id, clerk, at + span / 6)
                        .map_err(domain_err)?;
                }
            }
            received.insert(*agent_id, agent);
        }
        received.insert(dc_id, dc);
    }

    // Transfers between regions: the oldest car in stock at agent-n1 asked for by
    // agent-s1 (pending), and one from agent-s1 to agent-n1 approved, sent and taken in.
    let oldest = |doc: &AutoCommit| -> Result<String, RegistryError> {
        let site = SiteDocument::read(doc).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        site.vehicles
            .values()
            .filter(|v| v.status == VehicleStatus::InStock)
            .min_by_key(|v| (v.arrived_at, v.vin.clone()))
            .map(|v| v.vin.clone())
            .ok_or_else(|| RegistryError::Invalid(format!("no car in stock at {}", site.site.id)))
    };
    let mut north = received.remove("agent-n1").expect("shipped to");
    let mut south = received.remove("agent-s1").expect("shipped to");
    let pending = NewTransfer {
        id: "tr-pending-n1-s1".into(),
        vin: oldest(&north)?,
        to: "agent-s1".into(),
        note: Some("南区客户指定此车，北区库存超 90 天".into()),
    };
    domain::request_transfer(&mut north, &net, &pending, "sun.hao", now - 2 * DAY_MS)
        .map_err(domain_err)?;
    let done = NewTransfer {
        id: "tr-done-s1-n1".into(),
        vin: oldest(&south)?,
        to: "agent-n1".into(),
        note: Some("北区缺货".into()),
    };
    domain::request_transfer(&mut south, &net, &done, "hu.jun", now - 9 * DAY_MS)
        .map_err(domain_err)?;
    let sender = SiteDocument::read(&south).map_err(|e| RegistryError::Invalid(e.to_string()))?;
    domain::decide_transfer(
        &mut net_doc,
        &sender,
        &done.id,
        TransferVerdict::Approved,
        Some("同意，运费由北区承担"),
        hq,
        Role::HeadOffice,
        now - 8 * DAY_MS,
    )
    .map_err(domain_err)?;
    let net = NetworkDocument::read(&net_doc).map_err(|e| RegistryError::Invalid(e.to_string()))?;
    domain::dispatch_transfer(&mut south, &net, &done.id, "hu.jun", now - 7 * DAY_MS)
        .map_err(domain_err)?;
    domain::receive_transfer(
        &mut north,
        &net,
        &done.id,
        Some(now - 4 * DAY_MS),
        "sun.hao",
        now - 7 * DAY_MS,
    )
    .map_err(domain_err)?;
    domain::move_vehicle(
        &mut north,
        &done.vin,
        &domain::VehicleAction::Arrive,
        "he.yong",
        now - 4 * DAY_MS,
    )
    .map_err(domain_err)?;
    received.insert("agent-n1", north);
    received.insert("agent-s1", south);
    let customers = seed_overlaps(&mut received, &net, now)?;
    adjust_a_forecast(&mut received, now)?;

    store(docs, network_id, &mut net_doc)?;
    for (id, copy) in &mut received {
        store(docs, ids[id], copy)?;
    }
    Ok((customers, 1))
}

/// 业务重叠: agent-n1's first customer registered again at agent-n2 (one region:
/// dc-north's manager settles it) and at agent-s1 (two regions: head office settles
/// it). Returns the customer records added.
fn seed_overlaps(
    docs: &mut BTreeMap<&str, AutoCommit>,
    net: &NetworkDocument,
    now: Millis,
) -> Result<usize, RegistryError> {
    let read = |doc: &AutoCommit| {
        SiteDocument::read(doc).map_err(|e| RegistryError::Invalid(e.to_string()))
    };
    let first = read(&docs["agent-n1"])?
        .customers
        .into_values()
        .filter(|c| c.merged_into.is_none())
        .min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
        .ok_or_else(|| RegistryError::Invalid("no customer at agent-n1".into()))?;
    let again = [("agent-n2", 5), ("agent-s1", 3)];
    for (site_id, days_ago) in again {
        let consultant = SITES
            .iter()
            .find(|s| s.id == site_id)
            .map_or("admin", |s| s.consultants[0].0);
        let new = NewCustomer {
            id: format!("overlap-{site_id}"),
            name: first.name.clone(),
            phone: first.phone.clone(),
            source: CustomerSource::WalkIn,
            model_of_interest: first.model_of_interest.clone(),
            consultant: Some(consultant.into()),
        };
        let doc = docs.get_mut(site_id).expect("loaded by seed_cross_site");
        let at = now - days_ago * DAY_MS;
        domain::add_customer(doc, net, &new, consultant, at).map_err(domain_err)?;
        let visit = NewEvent::new(EventKind::Visit, at);
        domain::record_event(doc, &new.id, &visit, consultant, at).map_err(domain_err)?;
    }
    Ok(again.len())
}

/// dc-north's manager corrects agent-n1's latest forecast for one model (three units
/// more); agent-n1's own figure stays beside it.
fn adjust_a_forecast(
    docs: &mut BTreeMap<&str, AutoCommit>,
    now: Millis,
) -> Result<(), RegistryError> {
    let doc = docs.get_mut("agent-n1").expect("loaded by seed_cross_site");
    let site = SiteDocument::read(doc).map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let Some((month, cells)) = site.forecasts.iter().next_back() else {
        return Ok(());
    };
    let Some((model, cell)) = cells.iter().next() else {
        return Ok(());
    };
    domain::adjust_forecast(doc, month, model, cell.quantity + 3, "sun.hao", now)
        .map_err(domain_err)
}
