//! `conflicts list|resolve`: business conflicts that merging offline edits produced,
//! found by `core::conflicts` on the documents this device holds.

use dealersync_core::time::now_ms;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use automerge::AutoCommit;
use dealersync_core::conflicts::{self, ChoiceKind, Conflict, ConflictKind, Resolution, SiteEdit};
use dealersync_core::schema::TransferVerdict;

use crate::cli::ConflictsCommand;
use crate::ctx::Ctx;
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

/// Settles `c` with the choice `keep` through `core::conflicts::Resolution`: every
/// document it writes is checked writable first, so a refused one changes nothing.
fn resolve(ws: &Workspace, c: &Conflict, keep: &str) -> Result<()> {
    let by = ws.config.claims.sub.clone();
    if c.kind == ConflictKind::TransferDecision {
        return resolve_transfer_decision(ws, c, keep, &by);
    }
    let resolution = Resolution::of(c, keep).map_err(|e| match c.choices().choose {
        ChoiceKind::Quantity | ChoiceKind::Count => anyhow!(
            "{e}; --keep for a {} is the figure to keep, e.g. --keep 12",
            c.kind.as_str()
        ),
        ChoiceKind::Customer | ChoiceKind::Site | ChoiceKind::Verdict => anyhow!("--keep: {e}"),
    })?;
    let docs: Vec<(DocRef, &SiteEdit)> = resolution
        .edits
        .iter()
        .map(|edit| {
            let d = ws.pick_site(Some(&edit.site))?;
            ws.require_write(&d)?;
            Ok((d, edit))
        })
        .collect::<Result<_>>()?;
    let network = if resolution.edits.iter().any(SiteEdit::needs_network) {
        Some(ws.network()?)
    } else {
        None
    };
    for (doc, edit) in docs {
        ws.edit_site(&doc, |am| {
            Ok(edit.apply(am, network.as_ref(), &by, now_ms())?)
        })?;
    }
    Ok(())
}

/// Head office's concurrent verdicts on one transfer request, settled in the network
/// document: `keep` is one of the competing verdicts (exactly or as a unique prefix).
fn resolve_transfer_decision(ws: &Workspace, c: &Conflict, keep: &str, by: &str) -> Result<()> {
    let id = c
        .records
        .iter()
        .find_map(|r| r.strip_prefix("transfer "))
        .ok_or_else(|| anyhow!("conflict {} names no transfer request", c.id))?;
    let options: Vec<String> = c.choices().options.into_iter().map(|o| o.value).collect();
    let keep = keep.trim();
    let hits: Vec<&String> = options
        .iter()
        .filter(|o| o.as_str() == keep || (!keep.is_empty() && o.starts_with(keep)))
        .collect();
    let [chosen] = hits.as_slice() else {
        bail!(
            "--keep {keep:?} is not one of the competing verdicts: {}",
            options.join(", ")
        );
    };
    let verdict: TransferVerdict = chosen.parse().map_err(|e| anyhow!("{e}"))?;
    let net_ref = crate::ctx::network_ref(ws)?;
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
            by,
            role,
            now_ms(),
        )?)
    })
}
