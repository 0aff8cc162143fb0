//! `conflicts list|resolve`: business conflicts that merging offline edits produced,
//! found by `core::conflicts` on the documents this device holds.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use automerge::AutoCommit;
use dealersync_core::conflicts::{self, Conflict, ConflictKind};
use dealersync_core::schema::TransferVerdict;

use crate::cli::ConflictsCommand;
use crate::commands::{Ctx, now};
use crate::home::DocRef;
use crate::output::{Table, print_json};
use crate::workspace::Workspace;

/// Every conflict in the documents on this device: the site documents, and the
/// network document's (head office's transfer decisions).
pub fn detect_all(ws: &Workspace) -> Result<Vec<Conflict>> {
    let mut held: Vec<(String, AutoCommit)> = Vec::new();
    let mut found = Vec::new();
    for d in ws.config.documents() {
        if !d.access.can_read() {
            continue;
        }
        match (ws.load(&d.id)?, d.site.is_some()) {
            (Some(am), true) => held.push((d.label.clone(), am)),
            (Some(am), false) => found.extend(conflicts::detect_network(&am)),
            (None, _) => {}
        }
    }
    let refs: Vec<(&str, &AutoCommit)> = held.iter().map(|(s, d)| (s.as_str(), d)).collect();
    let mut all = conflicts::detect(&refs);
    all.extend(found);
    Ok(all)
}

/// How many of `conflicts` involve the document `doc`.
pub fn count_for(conflicts: &[Conflict], doc: &DocRef) -> usize {
    conflicts
        .iter()
        .filter(|c| c.values.iter().any(|v| v.site == doc.label))
        .count()
}

/// The part after `prefix ` of the first record that starts with it.
fn record<'a>(c: &'a Conflict, prefix: &str) -> Option<&'a str> {
    c.records
        .iter()
        .find_map(|r| r.strip_prefix(prefix)?.strip_prefix(' '))
}

/// Matches `keep` against the choices, exactly or as a unique prefix.
fn choose<'a>(keep: &str, choices: &[&'a str], what: &str) -> Result<&'a str> {
    if let Some(c) = choices.iter().find(|c| **c == keep) {
        return Ok(c);
    }
    let hits: Vec<&&str> = choices.iter().filter(|c| c.starts_with(keep)).collect();
    match hits.as_slice() {
        [one] => Ok(one),
        _ => bail!(
            "--keep {keep:?} is not one of the {what}: {}",
            choices.join(", ")
        ),
    }
}

/// Runs a `conflicts` command.
pub fn run(ws: &Workspace, ctx: &Ctx, cmd: ConflictsCommand) -> Result<ExitCode> {
    let all = detect_all(ws)?;
    match cmd {
        ConflictsCommand::List => {
            if ctx.json {
                print_json(&all)?;
            } else {
                let mut t = Table::new(&["id", "kind", "summary"]);
                for c in &all {
                    t.row(vec![
                        c.id.clone(),
                        c.kind.as_str().into(),
                        c.summary.clone(),
                    ]);
                }
                print!("{}", t.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        ConflictsCommand::Resolve { id, keep } => {
            let hits: Vec<&Conflict> = all.iter().filter(|c| c.id.starts_with(&id)).collect();
            let c = match hits.as_slice() {
                [one] => *one,
                [] => bail!(
                    "no open conflict {id:?} on this device; `dealersync conflicts list` shows them \
                     (it may have been resolved already)"
                ),
                _ => bail!(
                    "{id:?} matches {} conflicts; give more of the id",
                    hits.len()
                ),
            };
            resolve(ws, c, &keep)?;
            let after = detect_all(ws)?;
            let cleared = !after.iter().any(|x| x.id == c.id);
            if ctx.json {
                print_json(&serde_json::json!({
                    "resolved": c.id,
                    "kind": c.kind,
                    "keep": keep,
                    "remaining": after.len(),
                }))?;
            } else {
                println!(
                    "resolved {} ({}); {} conflict(s) remain on this device{}",
                    c.id,
                    c.kind.as_str(),
                    after.len(),
                    if cleared {
                        ""
                    } else {
                        " (including a new one from this resolution)"
                    }
                );
                println!("run `dealersync sync` to clear it on the other devices");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn site_doc(ws: &Workspace, site: &str) -> Result<DocRef> {
    ws.pick_site(Some(site))
}

fn resolve(ws: &Workspace, c: &Conflict, keep: &str) -> Result<()> {
    let by = ws.config.claims.sub.clone();
    let site_of_values = c
        .values
        .first()
        .map(|v| v.site.clone())
        .ok_or_else(|| anyhow!("conflict {} lists no values", c.id))?;
    match c.kind {
        ConflictKind::DoubleBooking => {
            let vin = record(c, "vehicle").context("a double booking names its vehicle")?;
            let customers: Vec<&str> = c
                .records
                .iter()
                .filter_map(|r| r.strip_prefix("customer "))
                .collect();
            let customer = choose(keep, &customers, "competing customers")?;
            let doc = site_doc(ws, &site_of_values)?;
            ws.edit_site(&doc, |am| {
                Ok(conflicts::resolve_double_booking(
                    am,
                    vin,
                    customer,
                    &by,
                    now(),
                )?)
            })
        }
        ConflictKind::StockAtTwoSites => {
            let vin = record(c, "vehicle").context("a stock conflict names its vehicle")?;
            let sites: Vec<&str> = c.values.iter().map(|v| v.site.as_str()).collect();
            let kept = choose(keep, &sites, "sites holding the vehicle")?;
            // Check every write first, so a refused one changes nothing.
            let give_up: Vec<DocRef> = sites
                .iter()
                .filter(|s| **s != kept)
                .map(|s| {
                    let d = site_doc(ws, s)?;
                    ws.require_write(&d)?;
                    Ok(d)
                })
                .collect::<Result<_>>()?;
            for doc in give_up {
                ws.edit_site(&doc, |am| {
                    Ok(conflicts::resolve_stock_elsewhere(
                        am,
                        vin,
                        kept,
                        &by,
                        now(),
                    )?)
                })?;
            }
            Ok(())
        }
        ConflictKind::DuplicateCustomer => {
            let customers: Vec<&str> = c
                .records
                .iter()
                .filter_map(|r| r.strip_prefix("customer "))
                .collect();
            let kept = choose(keep, &customers, "duplicate customers")?;
            let doc = site_doc(ws, &site_of_values)?;
            ws.edit_site(&doc, |am| {
                let t = now();
                for dup in customers.iter().filter(|x| **x != kept) {
                    conflicts::resolve_duplicate_customer(am, dup, kept, &by, t)?;
                }
                Ok(())
            })
        }
        ConflictKind::PartCountCollision => {
            let part = record(c, "part").context("a part collision names its part")?;
            let count: i64 = keep.trim().parse().map_err(|_| {
                anyhow!("--keep for a part count collision is the count on hand, e.g. --keep 12")
            })?;
            let doc = site_doc(ws, &site_of_values)?;
            ws.edit_site(&doc, |am| {
                Ok(conflicts::resolve_part_count(am, part, count, &by, now())?)
            })
        }
        ConflictKind::TransferDecision => {
            let id = record(c, "transfer").context("a transfer conflict names its request")?;
            let verdicts: Vec<&str> = c.values.iter().map(|v| v.value.as_str()).collect();
            let verdict: TransferVerdict = choose(keep, &verdicts, "competing verdicts")?
                .parse()
                .map_err(|e| anyhow!("{e}"))?;
            let net_ref = crate::manage::network_ref(ws)?;
            // The sender's document, when this device holds it, guards against keeping a
            // refusal for a car that already left.
            let sender = ws
                .all_sites()?
                .into_iter()
                .map(|(_, s)| s)
                .find(|s| s.transfers.contains_key(id));
            let role = ws.config.claims.role;
            ws.edit_site(&net_ref, |am| {
                Ok(conflicts::resolve_transfer_decision(
                    am,
                    sender.as_ref(),
                    id,
                    verdict,
                    &by,
                    role,
                    now(),
                )?)
            })
        }
        ConflictKind::ForecastEdit | ConflictKind::ForecastAdjustment => {
            let cell = record(c, "forecast").context("a forecast conflict names its cell")?;
            let (month, model) = cell
                .split_once('/')
                .ok_or_else(|| anyhow!("malformed forecast record {cell:?}"))?;
            let quantity: i64 = keep.trim().parse().map_err(|_| {
                anyhow!("--keep for a forecast conflict is the quantity, e.g. --keep 12")
            })?;
            let doc = site_doc(ws, &site_of_values)?;
            if c.kind == ConflictKind::ForecastAdjustment {
                return ws.edit_site(&doc, |am| {
                    Ok(conflicts::resolve_forecast_adjustment(
                        am,
                        month,
                        model,
                        quantity,
                        &by,
                        now(),
                    )?)
                });
            }
            let net = ws.network()?;
            ws.edit_site(&doc, |am| {
                Ok(conflicts::resolve_forecast(
                    am,
                    &net,
                    month,
                    model,
                    quantity,
                    &by,
                    now(),
                )?)
            })
        }
    }
}
