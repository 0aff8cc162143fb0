//! Customer care commands: follow-ups (回访), referrals (以老带新), lost reasons,
//! areas, and complaints (投诉), through `core::domain`'s validated operations.

use dealersync_core::time::now_ms;
use std::process::ExitCode;

use anyhow::Result;
use dealersync_core::domain::{self, ComplaintUpdate, NewComplaint};
use dealersync_core::schema::{ComplaintStatus, CustomerArea};
use dealersync_core::time::parse_cst;

use crate::cli::{CareCommand, ComplaintCommand};
use crate::ctx::done;
use crate::ctx::{Ctx, find_customer, unique_id};
use crate::output::parse_date;
use crate::workspace::Workspace;

/// `care follow-up|schedule|referred-by|lost|area`.
pub fn care(ws: &Workspace, ctx: &Ctx, cmd: CareCommand) -> Result<ExitCode> {
    let doc = ws.pick_site(ctx.site.as_deref())?;
    ws.require_write(&doc)?;
    let by = ws.config.claims.sub.clone();
    let site = ws.site_doc(&doc)?.1;
    let id_of = |prefix: &str| -> Result<String> { Ok(find_customer(&site, prefix)?.id.clone()) };
    let (id, line) = match cmd {
        CareCommand::FollowUp { id, note, next, at } => {
            let id = id_of(&id)?;
            let t = now_ms();
            let at = at.as_deref().map(parse_cst).transpose()?.unwrap_or(t);
            let next = next.as_deref().map(parse_date).transpose()?;
            ws.edit_site(&doc, |am| {
                Ok(domain::record_follow_up(
                    am,
                    &id,
                    at,
                    note.as_deref(),
                    next,
                    &by,
                    t,
                )?)
            })?;
            (id.clone(), format!("follow-up of customer {id} recorded"))
        }
        CareCommand::Schedule { id, due, clear } => {
            let id = id_of(&id)?;
            let due = if clear {
                None
            } else {
                due.as_deref().map(parse_date).transpose()?
            };
            ws.edit_site(&doc, |am| {
                Ok(domain::schedule_follow_up(am, &id, due, &by, now_ms())?)
            })?;
            (
                id.clone(),
                format!("next follow-up of customer {id} planned"),
            )
        }
        CareCommand::ReferredBy { id, referrer } => {
            let (id, referrer) = (id_of(&id)?, id_of(&referrer)?);
            ws.edit_site(&doc, |am| {
                Ok(domain::link_referral(am, &id, &referrer, &by, now_ms())?)
            })?;
            (
                id.clone(),
                format!("customer {id} was referred by {referrer}"),
            )
        }
        CareCommand::Lost {
            id,
            reason,
            competitor,
        } => {
            let id = id_of(&id)?;
            ws.edit_site(&doc, |am| {
                Ok(domain::mark_lost(
                    am,
                    &id,
                    &reason,
                    competitor.as_deref(),
                    &by,
                    now_ms(),
                )?)
            })?;
            (id.clone(), format!("customer {id} lost: {reason}"))
        }
        CareCommand::Area { id, area } => {
            let id = id_of(&id)?;
            let area: Option<CustomerArea> = match area.trim() {
                "none" | "" => None,
                a => Some(a.parse()?),
            };
            ws.edit_site(&doc, |am| {
                Ok(domain::set_customer_area(am, &id, area, &by, now_ms())?)
            })?;
            (
                id.clone(),
                format!(
                    "customer {id} lives in {}",
                    area.map_or("(not set)", |a| a.label_zh())
                ),
            )
        }
    };
    let site = ws.site_doc(&doc)?.1;
    done(ctx, &site.customers[&id], line)
}

/// `complaint open|update`.
pub fn complaint(ws: &Workspace, ctx: &Ctx, cmd: ComplaintCommand) -> Result<ExitCode> {
    let doc = ws.pick_site(ctx.site.as_deref())?;
    ws.require_write(&doc)?;
    let by = ws.config.claims.sub.clone();
    let site = ws.site_doc(&doc)?.1;
    match cmd {
        ComplaintCommand::Open {
            customer,
            summary,
            owner,
            at,
        } => {
            let t = now_ms();
            let new = NewComplaint {
                id: uuid::Uuid::new_v4().to_string(),
                customer: find_customer(&site, &customer)?.id.clone(),
                summary,
                owner,
                at: at.as_deref().map(parse_cst).transpose()?.unwrap_or(t),
            };
            let c = ws.edit_site(&doc, |am| Ok(domain::open_complaint(am, &new, &by, t)?))?;
            done(
                ctx,
                &c,
                format!("complaint {} opened, owned by {}", c.id, c.owner),
            )
        }
        ComplaintCommand::Update {
            id,
            status,
            owner,
            resolution,
        } => {
            let id = unique_id(
                site.complaints.keys(),
                &id,
                "complaint",
                "dealersync report care --json",
            )?;
            let update = ComplaintUpdate {
                status: status.map(|s| s.parse::<ComplaintStatus>()).transpose()?,
                owner,
                resolution,
            };
            let c = ws.edit_site(&doc, |am| {
                Ok(domain::update_complaint(am, &id, &update, &by, now_ms())?)
            })?;
            done(
                ctx,
                &c,
                format!("complaint {id}: {}, owned by {}", c.status, c.owner),
            )
        }
    }
}
