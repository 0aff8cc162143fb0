//! Bounded site documents: a site's working document holds one period (a month) of
//! history. At the period's end its open work is carried over into a new working
//! document and the old one becomes the period's archive (see docs/growth.md).
//!
//! Every change lives in exactly one document, and [`combine_periods`] puts a site's
//! archives and working document back together into the one [`SiteDocument`] the site
//! would have had without archiving, so reports across periods read the same figures.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{
    AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc as AmReadDoc, ScalarValue, Value,
};

use crate::schema::{
    ComplaintStatus, CustomerStatus, Millis, PartCount, SiteDocument, VehicleStatus,
};

use super::{DomainError, Result, commit_write, map_at, parse_month, root_map};

/// Root key of a working document's period header (absent in documents that were
/// never carried over: those hold the site's whole history from its start).
pub const PERIOD_KEY: &str = "period";

/// Customers written per change at carry-over: a customer with a few dozen events is
/// a few hundred operations, so a change stays far below `SyncLimits::max_change_ops`.
pub const CARRY_CUSTOMERS_PER_CHANGE: usize = 200;

/// Opening of the message of every change [`carry_over`] writes: how
/// `forward_late` finds where the carry-over ended in a working document's history.
pub(super) const CARRY_MESSAGE: &str = "carry over ";

/// What a working document says about its period: the month it starts with and, per
/// carried customer, how many of its events were copied from the archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodHeader {
    /// The first month (`YYYY-MM`, China Standard Time) this document records.
    pub month: String,
    /// Customer id → number of events copied from the previous document at carry-over.
    /// Events past that number were recorded in this document.
    pub carried_events: BTreeMap<String, usize>,
}

/// Whether a customer is still in the funnel: carried into the next period.
pub fn customer_is_open(status: CustomerStatus, merged_into: Option<&str>) -> bool {
    merged_into.is_none() && !matches!(status, CustomerStatus::Delivered | CustomerStatus::Lost)
}

/// Whether a vehicle is still on the site's books: carried into the next period.
pub fn vehicle_is_open(status: VehicleStatus) -> bool {
    !matches!(
        status,
        VehicleStatus::Delivered | VehicleStatus::TransferredOut
    )
}

/// The working document for the period starting with `month`, carried over from the
/// site's current document `old`: the site header, open customers (with their events,
/// so a consultant still sees the history), vehicles on the books, part counts,
/// forecasts for `month` and later, all targets, transfers not yet dispatched, parts
/// shipments not yet received and complaints not resolved. Closed customers, delivered
/// and transferred vehicles, walk-ins and older forecasts stay in `old`, which becomes
/// the archive.
///
/// Written by a fresh actor in a few changes (the header and records, then the
/// customers [`CARRY_CUSTOMERS_PER_CHANGE`] at a time), so the new document's history
/// starts at a handful of changes however long the site has run.
pub fn carry_over(old: &AutoCommit, month: &str, now: Millis) -> Result<AutoCommit> {
    let month = parse_month(month)?;
    if let Some(h) = period_header(old)?
        && h.month >= month
    {
        return Err(DomainError::Invalid {
            field: "period month".into(),
            reason: format!(
                "the document already records from {}; a new period must start later",
                h.month
            ),
        });
    }
    let site = SiteDocument::read(old)?;
    let mut next = SiteDocument::new(site.site.clone());
    let mut carried_events = BTreeMap::new();
    for (id, c) in &site.customers {
        if customer_is_open(c.status, c.merged_into.as_deref()) {
            carried_events.insert(id.clone(), c.events.len());
            next.customers.insert(id.clone(), c.clone());
        }
    }
    next.vehicles = site
        .vehicles
        .into_iter()
        .filter(|(_, v)| vehicle_is_open(v.status))
        .collect();
    // Written as fresh counters holding the count (a counter read back from a
    // document would write only its increment since, which is none).
    next.parts = site
        .parts
        .iter()
        .map(|(k, p)| (k.clone(), PartCount::new(p.value())))
        .collect();
    next.forecasts = site
        .forecasts
        .into_iter()
        .filter(|(m, _)| m.as_str() >= month.as_str())
        .collect();
    next.targets = site.targets;
    next.transfers = site
        .transfers
        .into_iter()
        .filter(|(_, t)| t.dispatched_at.is_none())
        .collect();
    next.parts_shipments = site
        .parts_shipments
        .into_iter()
        .filter(|(_, s)| s.received_at.is_none())
        .collect();
    next.complaints = site
        .complaints
        .into_iter()
        .filter(|(_, c)| c.status != ComplaintStatus::Resolved)
        .collect();

    let mut doc = AutoCommit::new();
    let header = PeriodHeader {
        month: month.clone(),
        carried_events,
    };
    // The customers go in changes of their own, a bounded number each, so that no
    // change is larger than what a relay accepts from a device (`SyncLimits`).
    let customers = std::mem::take(&mut next.customers);
    let site_id = next.site.id.clone();
    commit_write(
        &mut doc,
        format!("{CARRY_MESSAGE}site {site_id} into {month}"),
        now,
        |doc| {
            autosurgeon::reconcile(doc, &next)?;
            write_period_header(doc, &header)
        },
    )?;
    let list: Vec<_> = customers.into_iter().collect();
    for chunk in list.chunks(CARRY_CUSTOMERS_PER_CHANGE) {
        let obj = root_map(&doc, "site", "customers")?;
        commit_write(
            &mut doc,
            format!("{CARRY_MESSAGE}{} customers of site {site_id}", chunk.len()),
            now,
            |doc| {
                for (id, c) in chunk {
                    autosurgeon::reconcile_prop(doc, &obj, id.as_str(), c)?;
                }
                Ok(())
            },
        )?;
    }
    Ok(doc)
}

fn write_period_header(doc: &mut AutoCommit, h: &PeriodHeader) -> Result<()> {
    let p = doc.put_object(ROOT, PERIOD_KEY, ObjType::Map)?;
    doc.put(&p, "month", h.month.as_str())?;
    let carried = doc.put_object(&p, "carriedEvents", ObjType::Map)?;
    for (id, n) in &h.carried_events {
        doc.put(&carried, id.as_str(), *n as u64)?;
    }
    Ok(())
}

/// The period header of a working document; `None` for a document that holds the
/// site's history from its start (never carried over).
pub fn period_header<D: AmReadDoc>(doc: &D) -> Result<Option<PeriodHeader>> {
    let bad = |reason: &str| DomainError::NotADocument {
        kind: "site",
        reason: format!("`{PERIOD_KEY}` {reason}"),
    };
    let Some((Value::Object(ObjType::Map), p)) = doc.get(ROOT, PERIOD_KEY)? else {
        return Ok(None);
    };
    let month = read_str(doc, &p, "month")?.ok_or_else(|| bad("has no month as a string"))?;
    let mut carried_events = BTreeMap::new();
    if let Some((Value::Object(ObjType::Map), c)) = doc.get(&p, "carriedEvents")? {
        for id in doc.keys(&c).collect::<Vec<_>>() {
            let n = match doc.get(&c, id.as_str())? {
                Some((Value::Scalar(s), _)) => match s.as_ref() {
                    ScalarValue::Uint(n) => usize::try_from(*n).ok(),
                    ScalarValue::Int(n) => usize::try_from(*n).ok(),
                    _ => None,
                },
                _ => None,
            }
            .ok_or_else(|| bad("carriedEvents holds a count that is not a number"))?;
            carried_events.insert(id, n);
        }
    }
    Ok(Some(PeriodHeader {
        month,
        carried_events,
    }))
}

/// One document of a site's chain, read: its contents and its period header.
#[derive(Debug, Clone)]
pub struct PeriodDocument {
    /// The document's contents.
    pub site: SiteDocument,
    /// Its period header (`None` for the first document of the chain).
    pub period: Option<PeriodHeader>,
}

impl PeriodDocument {
    /// Reads a site document of the chain.
    pub fn read<D: AmReadDoc + autosurgeon::ReadDoc>(doc: &D) -> Result<Self> {
        Ok(PeriodDocument {
            site: SiteDocument::read(doc)?,
            period: period_header(doc)?,
        })
    }
}

/// A site's archives and working document (oldest first) put back together: the site
/// document as it would be without archiving. Records are keyed by id across the
/// chain and a later document's copy wins; a carried customer's events are its
/// archive's events (including any recorded there late, by a device that had not yet
/// followed the carry-over) followed by those recorded after the carry-over.
///
/// Takes references, so a caller that keeps its archives hydrated (the relay's read
/// model) combines them with a new working document without copying them first.
pub fn combine_periods<'a>(
    chain: impl IntoIterator<Item = &'a PeriodDocument>,
) -> Result<SiteDocument> {
    let mut chain = chain.into_iter();
    let Some(first) = chain.next() else {
        return Err(DomainError::Invalid {
            field: "site documents".into(),
            reason: "no document to combine".into(),
        });
    };
    let mut all = first.site.clone();
    for d in chain {
        if d.site.site.id != all.site.id {
            return Err(DomainError::Invalid {
                field: "site documents".into(),
                reason: format!(
                    "documents of two sites ({} and {}) cannot be combined",
                    all.site.id, d.site.site.id
                ),
            });
        }
        let carried = d.period.as_ref().map(|p| &p.carried_events);
        for (id, c) in &d.site.customers {
            let mut c = c.clone();
            let copied = carried.and_then(|m| m.get(id)).copied();
            if let (Some(n), Some(before)) = (copied, all.customers.get(id)) {
                let mut events = before.events.clone();
                events.extend(c.events.iter().skip(n).cloned());
                c.events = events;
            }
            all.customers.insert(id.clone(), c);
        }
        all.site = d.site.site.clone();
        all.schema_version = d.site.schema_version;
        all.vehicles.extend(d.site.vehicles.clone());
        // Part counts are carried as their value: the latest document has the count.
        all.parts = d.site.parts.clone();
        for (month, models) in &d.site.forecasts {
            all.forecasts.insert(month.clone(), models.clone());
        }
        all.targets.extend(d.site.targets.clone());
        all.walk_ins.extend(d.site.walk_ins.clone());
        all.transfers.extend(d.site.transfers.clone());
        all.parts_shipments.extend(d.site.parts_shipments.clone());
        all.complaints.extend(d.site.complaints.clone());
    }
    Ok(all)
}

/// A string at `obj[key]`, scalar or text (what a JavaScript writer may leave); `None`
/// when absent, null or not a string.
fn read_str<D: AmReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Result<Option<String>> {
    read_str_at(doc, obj, key, None)
}

/// [`read_str`] as the document was at `heads` (`None`: now).
pub(super) fn read_str_at<D: AmReadDoc>(
    doc: &D,
    obj: &ObjId,
    key: &str,
    heads: Option<&[ChangeHash]>,
) -> Result<Option<String>> {
    let got = match heads {
        Some(h) => doc.get_at(obj, key, h)?,
        None => doc.get(obj, key)?,
    };
    Ok(match got {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(v) => Some(v.to_string()),
            _ => None,
        },
        Some((Value::Object(ObjType::Text), t)) => Some(match heads {
            Some(h) => doc.text_at(&t, h)?,
            None => doc.text(&t)?,
        }),
        _ => None,
    })
}

/// Key of a site's current working document in its header in the network document's
/// `sites` (absent until the site's first carry-over: the registry's document is then
/// the only one).
pub const CURRENT_DOCUMENT_KEY: &str = "document";

/// Key of a site's chain of documents in its header in the network document's `sites`.
pub const PERIODS_KEY: &str = "periods";

/// One document of a site's chain, as the network document lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeriodLink {
    /// The first month it records (`YYYY-MM`); `None` for the site's first document,
    /// which records from the site's start.
    pub month: Option<String>,
    /// Its document id (bs58check, as everywhere in the API).
    pub document: String,
}

/// Records a site's chain of documents (oldest first; the last is the current working
/// document) in its header in the network document: `sites[site].periods` and
/// `sites[site].document`, so that every client finds the current document from the
/// network document it already syncs. The header's other fields are left as they are.
pub fn put_site_chain(
    net_doc: &mut AutoCommit,
    site: &str,
    chain: &[PeriodLink],
    by: &str,
    now: Millis,
) -> Result<()> {
    let Some(current) = chain.last() else {
        return Err(DomainError::Invalid {
            field: "site documents".into(),
            reason: "a chain has at least one document".into(),
        });
    };
    let sites = root_map(net_doc, "network", "sites")?;
    let header = map_at(net_doc, &sites, site)?
        .ok_or_else(|| DomainError::UnknownSite { id: site.into() })?;
    if site_chain(net_doc, site)? == chain {
        return Ok(());
    }
    commit_write(
        net_doc,
        format!("{by}: site {site} works in {}", current.document),
        now,
        |doc| {
            doc.put(&header, CURRENT_DOCUMENT_KEY, current.document.as_str())?;
            let list = doc.put_object(&header, PERIODS_KEY, ObjType::List)?;
            for (i, link) in chain.iter().enumerate() {
                let entry = doc.insert_object(&list, i, ObjType::Map)?;
                match &link.month {
                    Some(m) => doc.put(&entry, "month", m.as_str())?,
                    None => doc.put(&entry, "month", ScalarValue::Null)?,
                }
                doc.put(&entry, "document", link.document.as_str())?;
            }
            Ok(())
        },
    )
}

/// A site's chain of documents as the network document lists it, oldest first; empty
/// when the site was never carried over (its one document is the registry's).
pub fn site_chain<D: AmReadDoc>(net_doc: &D, site: &str) -> Result<Vec<PeriodLink>> {
    let Some(sites) = map_at(net_doc, &ROOT, "sites")? else {
        return Ok(Vec::new());
    };
    let Some(header) = map_at(net_doc, &sites, site)? else {
        return Ok(Vec::new());
    };
    let Some((Value::Object(ObjType::List), list)) = net_doc.get(&header, PERIODS_KEY)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for i in 0..net_doc.length(&list) {
        let Some((Value::Object(ObjType::Map), entry)) = net_doc.get(&list, i)? else {
            continue;
        };
        if let Some(document) = read_str(net_doc, &entry, "document")? {
            let month = read_str(net_doc, &entry, "month")?;
            out.push(PeriodLink { month, document });
        }
    }
    Ok(out)
}

/// A site's current working document as its header in the network document names it;
/// `None` when the site was never carried over.
pub fn current_site_document<D: AmReadDoc>(net_doc: &D, site: &str) -> Result<Option<String>> {
    let Some(sites) = map_at(net_doc, &ROOT, "sites")? else {
        return Ok(None);
    };
    match map_at(net_doc, &sites, site)? {
        Some(header) => read_str(net_doc, &header, CURRENT_DOCUMENT_KEY),
        None => Ok(None),
    }
}

/// The instant (UTC milliseconds) until which a period's archive accepts late changes
/// from devices: [`ARCHIVE_GRACE_DAYS`] into the month `next` that follows it, from
/// midnight China Standard Time.
pub fn archive_writable_until(next: &str) -> Result<Millis> {
    let month = parse_month(next)?;
    let (start, _) = month
        .parse::<crate::schema::Period>()
        .map_err(|_| DomainError::MalformedMonth { input: month })?
        .range_millis();
    Ok(start + ARCHIVE_GRACE_DAYS * crate::time::DAY_MS)
}

/// How many days into the new month an archive still accepts devices' late changes.
pub const ARCHIVE_GRACE_DAYS: i64 = 7;
