//! Commands of managers and head office that span sites: transfers between regions,
//! parts shipments from a distribution centre to its agents, the network's settings.
//!
//! Each step writes one document the user may write: the sender's (request,
//! dispatch), the network document (head office's decision), the receiver's
//! (receive). Access is checked before anything is loaded for writing.

use dealersync_core::time::now_ms;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use dealersync_core::domain::{self, NewShipment, NewTransfer};
use dealersync_core::schema::{SiteChannel, SiteDocument, TransferRequest, TransferVerdict};

use crate::cli::{NetworkCommand, PartsCommand, TransferCommand};
use crate::ctx::done;
use crate::ctx::network_ref;
use crate::ctx::{Ctx, unique_id};
use crate::output::parse_date;
use crate::workspace::Workspace;

/// The request `prefix` names, and the document of the site that asked, among the
/// site documents on this device.
fn find_request(ws: &Workspace, prefix: &str) -> Result<(SiteDocument, TransferRequest)> {
    let mut hits = Vec::new();
    for (_, site) in ws.all_sites()? {
        let found: Vec<TransferRequest> = site
            .transfers
            .values()
            .filter(|r| r.id.starts_with(prefix))
            .cloned()
            .collect();
        for r in found {
            hits.push((site.clone(), r));
        }
    }
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => bail!(
            "no transfer request {prefix:?} in the site documents on this device; `dealersync report transfers` lists them"
        ),
        n => bail!("{prefix:?} matches {n} transfer requests; type more of the id"),
    }
}

/// The full id of a decided or requested transfer `prefix` names: in the network
/// document's decisions (what a receiving site sees) or the requests on this device.
fn transfer_id(ws: &Workspace, prefix: &str) -> Result<String> {
    let net = ws.network()?;
    let mut ids: Vec<String> = net
        .transfer_decisions
        .keys()
        .filter(|id| id.starts_with(prefix))
        .cloned()
        .collect();
    for (_, site) in ws.all_sites()? {
        ids.extend(
            site.transfers
                .keys()
                .filter(|id| id.starts_with(prefix))
                .cloned(),
        );
    }
    ids.sort();
    ids.dedup();
    unique_id(&ids, prefix, "transfer", "dealersync report transfers")
}

/// `transfer request|approve|refuse|dispatch|receive`.
pub fn transfer(ws: &Workspace, ctx: &Ctx, cmd: TransferCommand) -> Result<ExitCode> {
    let by = ws.config.claims.sub.clone();
    match cmd {
        TransferCommand::Request { vin, to, note } => {
            let doc = ws.pick_site(ctx.site.as_deref())?;
            ws.require_write(&doc)?;
            let net = ws.network()?;
            let new = NewTransfer {
                id: uuid::Uuid::new_v4().to_string(),
                vin,
                to,
                note,
            };
            let r = ws.edit_site(&doc, |am| {
                Ok(domain::request_transfer(am, &net, &new, &by, now_ms())?)
            })?;
            done(
                ctx,
                &r,
                format!(
                    "asked head office to move {} from {} to {} (request {}); it stays until approved",
                    r.vin, r.from, r.to, r.id
                ),
            )
        }
        TransferCommand::Approve { id, note } => {
            decide(ws, ctx, &id, TransferVerdict::Approved, note)
        }
        TransferCommand::Refuse { id, note } => {
            decide(ws, ctx, &id, TransferVerdict::Refused, Some(note))
        }
        TransferCommand::Dispatch { id } => {
            let doc = ws.pick_site(ctx.site.as_deref())?;
            ws.require_write(&doc)?;
            let id = transfer_id(ws, &id)?;
            let net = ws.network()?;
            ws.edit_site(&doc, |am| {
                Ok(domain::dispatch_transfer(am, &net, &id, &by, now_ms())?)
            })?;
            let site = ws.site_doc(&doc)?.1;
            let r = site
                .transfers
                .get(&id)
                .cloned()
                .ok_or_else(|| anyhow!("transfer {id} vanished from site {}", doc.label))?;
            done(
                ctx,
                &r,
                format!("{} left {} for {} (transfer {id})", r.vin, r.from, r.to),
            )
        }
        TransferCommand::Receive { id, eta } => {
            let doc = ws.pick_site(ctx.site.as_deref())?;
            ws.require_write(&doc)?;
            let id = transfer_id(ws, &id)?;
            let net = ws.network()?;
            let eta = eta.as_deref().map(parse_date).transpose()?;
            let v = ws.edit_site(&doc, |am| {
                Ok(domain::receive_transfer(am, &net, &id, eta, &by, now_ms())?)
            })?;
            done(
                ctx,
                &v,
                format!(
                    "{} is on its way to {} from {}; `dealersync vehicle arrive {}` when it is here",
                    v.vin,
                    doc.label,
                    v.transfer_from.clone().unwrap_or_default(),
                    v.vin
                ),
            )
        }
    }
}

fn decide(
    ws: &Workspace,
    ctx: &Ctx,
    prefix: &str,
    verdict: TransferVerdict,
    note: Option<String>,
) -> Result<ExitCode> {
    let net_ref = network_ref(ws)?;
    ws.require_write(&net_ref)?;
    let (sender, request) = find_request(ws, prefix)?;
    let (by, role) = (ws.config.claims.sub.clone(), ws.config.claims.role);
    let d = ws.edit_site(&net_ref, |am| {
        Ok(domain::decide_transfer(
            am,
            &sender,
            &request.id,
            verdict,
            note.as_deref(),
            &by,
            role,
            now_ms(),
        )?)
    })?;
    done(
        ctx,
        &d,
        format!(
            "transfer {} of {} from {} to {}: {}",
            d.id, d.vin, d.from, d.to, d.verdict
        ),
    )
}

/// `PART=QUANTITY` lines of a shipment.
fn shipment_lines(lines: &[String]) -> Result<std::collections::BTreeMap<String, i64>> {
    let mut out = std::collections::BTreeMap::new();
    for line in lines {
        let (part, qty) = line
            .split_once('=')
            .ok_or_else(|| anyhow!("{line:?}: give each line as PART=QUANTITY, e.g. OIL-F=20"))?;
        let qty: i64 = qty
            .trim()
            .parse()
            .map_err(|_| anyhow!("{line:?}: the quantity is not a whole number"))?;
        if out.insert(part.trim().to_string(), qty).is_some() {
            bail!("part {} is named twice", part.trim());
        }
    }
    Ok(out)
}

/// `parts ship|receive`.
pub fn parts(ws: &Workspace, ctx: &Ctx, cmd: PartsCommand) -> Result<ExitCode> {
    let by = ws.config.claims.sub.clone();
    let doc = ws.pick_site(ctx.site.as_deref())?;
    match cmd {
        PartsCommand::Ship { to, lines, note } => {
            if to == doc.label {
                bail!(
                    "parts ship: {to} would ship to itself; a distribution centre ships to an \
                     agent below it (--to AGENT), and ships from the site given by --site \
                     (default: your own, {})",
                    ws.config.claims.site
                );
            }
            let target = ws.pick_site(Some(&to))?;
            let new = NewShipment {
                id: uuid::Uuid::new_v4().to_string(),
                lines: shipment_lines(&lines)?,
                note,
            };
            let net = ws.network()?;
            let s = ws.edit_two(&doc, &target, |dc, agent| {
                Ok(domain::ship_parts(dc, agent, &net, &new, &by, now_ms())?)
            })?;
            let units: i64 = s.lines.values().sum();
            done(
                ctx,
                &s,
                format!(
                    "shipped {units} parts from {} to {} (shipment {}); they count at {} once received",
                    s.from, s.to, s.id, s.to
                ),
            )
        }
        PartsCommand::Receive { id } => {
            ws.require_write(&doc)?;
            let site = ws.site_doc(&doc)?.1;
            let id = unique_id(
                site.parts_shipments.keys(),
                &id,
                "parts shipment",
                "dealersync report parts",
            )?;
            let s = ws.edit_site(&doc, |am| {
                Ok(domain::receive_parts(am, &id, &by, now_ms())?)
            })?;
            done(
                ctx,
                &s,
                format!(
                    "received shipment {id} from {}: {} lines added to {}",
                    s.from,
                    s.lines.len(),
                    doc.label
                ),
            )
        }
        PartsCommand::Adjust { .. } | PartsCommand::List => {
            unreachable!("handled in commands.rs and edit.rs")
        }
    }
}

/// `network deadline` and `network channel`.
pub fn network(ws: &Workspace, ctx: &Ctx, cmd: NetworkCommand) -> Result<ExitCode> {
    let by = ws.config.claims.sub.clone();
    let net_ref = network_ref(ws)?;
    match cmd {
        NetworkCommand::Deadline { day } => {
            ws.require_write(&net_ref)?;
            ws.edit_site(&net_ref, |am| {
                Ok(domain::set_forecast_deadline(am, day, &by, now_ms())?)
            })?;
            done(
                ctx,
                &serde_json::json!({ "forecastDeadlineDay": day }),
                format!(
                    "forecasts are due by the end of day {day} of the month before (CST); `dealersync sync` to tell every site"
                ),
            )
        }
        NetworkCommand::Channel { site, channel } => {
            let channel = parse_channel(&channel)?;
            ws.require_write(&net_ref)?;
            ws.edit_site(&net_ref, |am| {
                Ok(domain::set_site_channel(am, &site, channel, &by, now_ms())?)
            })?;
            let label = channel.map_or("none", SiteChannel::label_zh);
            done(
                ctx,
                &serde_json::json!({ "site": site, "channel": channel }),
                format!("{site}: channel {label}; `dealersync sync` to tell every site"),
            )
        }
    }
}

/// A channel given by its name (`franchise_agent`) or its Chinese label (特许代理);
/// `none` clears it.
fn parse_channel(s: &str) -> Result<Option<SiteChannel>> {
    let s = s.trim();
    if s == "none" {
        return Ok(None);
    }
    if let Some(c) = SiteChannel::ALL.iter().find(|c| c.label_zh() == s) {
        return Ok(Some(*c));
    }
    Ok(Some(s.parse::<SiteChannel>().map_err(|e| {
        anyhow!("{e} (or the Chinese label: 直销, 总代理, 特许代理, 品牌专卖; none clears it)")
    })?))
}
