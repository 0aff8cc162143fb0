//! Commands that change documents, through `core::domain`'s validated operations.
//!
//! Each command checks the user's access first (nothing is loaded for a refused
//! write), lets `core` validate and apply the change, and returns only once the change
//! is committed to the device's store.

use dealersync_core::time::now_ms;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use dealersync_core::domain::{
    self, CheckDigitPolicy, CustomerUpdate, NewCustomer, NewEvent, NewVehicle, VehicleAction,
};
use dealersync_core::schema::{
    CallDirection, CustomerSource, CustomerStatus, EventKind, SiteDocument, VehicleStatus,
};
use dealersync_core::time::parse_cst;
use serde_json::json;

use dealersync_core::access::Role;

use crate::cli::*;
use crate::ctx::{Ctx, done, find_customer};
use crate::home::DocRef;
use crate::output::{parse_date, parse_yuan};
use crate::workspace::Workspace;

/// When a sale or a delivery happened: `--at` in China Standard Time, or now. The
/// vehicle's status and the customer's event both take that time; a time in the future
/// (beyond the clock skew) is refused, as for every event.
fn happened_at(at: Option<&str>) -> Result<i64> {
    let t = now_ms();
    let Some(typed) = at else { return Ok(t) };
    let at = parse_cst(typed)?;
    if at > t + domain::CLOCK_SKEW_MS {
        bail!(
            "{typed} is in the future: a sale or delivery is recorded when, or after, it happens"
        );
    }
    Ok(at)
}

/// Resolves a customer id prefix against the current document (before the write).
fn customer_id(ws: &Workspace, doc: &DocRef, prefix: &str) -> Result<String> {
    let (_, site) = ws.site_doc(doc)?;
    Ok(find_customer(&site, prefix)?.id.clone())
}

fn reread(ws: &Workspace, doc: &DocRef) -> Result<SiteDocument> {
    Ok(ws.site_doc(doc)?.1)
}

/// `customer add|update|status|event`.
pub fn customer(ws: &Workspace, ctx: &Ctx, doc: &DocRef, cmd: CustomerCommand) -> Result<ExitCode> {
    ws.require_write(doc)?;
    let by = ws.config.claims.sub.clone();
    let net = ws.network()?;
    match cmd {
        CustomerCommand::Add {
            name,
            phone,
            source,
            model,
            consultant,
        } => {
            let source: CustomerSource = source.parse()?;
            let new = NewCustomer {
                id: uuid::Uuid::new_v4().to_string(),
                name,
                phone,
                source,
                model_of_interest: model,
                consultant: Some(consultant.unwrap_or_else(|| by.clone())),
            };
            let c = ws.edit_site(doc, |am| {
                Ok(domain::add_customer(am, &net, &new, &by, now_ms())?)
            })?;
            done(
                ctx,
                &c,
                format!("added customer {} {} ({})", c.id, c.name, c.phone),
            )
        }
        CustomerCommand::Update {
            id,
            name,
            phone,
            model,
            consultant,
        } => {
            let id = customer_id(ws, doc, &id)?;
            let update = CustomerUpdate {
                name,
                phone,
                source: None,
                model_of_interest: model.map(Some),
                consultant: consultant.map(Some),
            };
            ws.edit_site(doc, |am| {
                Ok(domain::update_customer(
                    am,
                    &net,
                    &id,
                    &update,
                    &by,
                    now_ms(),
                )?)
            })?;
            let site = reread(ws, doc)?;
            let c = &site.customers[&id];
            done(ctx, c, format!("updated customer {} {}", c.id, c.name))
        }
        CustomerCommand::Status { id, status } => {
            let id = customer_id(ws, doc, &id)?;
            let status: CustomerStatus = status.parse()?;
            ws.edit_site(doc, |am| {
                Ok(domain::set_customer_status(am, &id, status, &by, now_ms())?)
            })?;
            let site = reread(ws, doc)?;
            let c = &site.customers[&id];
            done(
                ctx,
                c,
                format!("customer {} {} is now {}", c.id, c.name, c.status),
            )
        }
        CustomerCommand::Event {
            id,
            kind,
            note,
            amount,
            vin,
            score,
            at,
            direction,
        } => {
            let id = customer_id(ws, doc, &id)?;
            let kind: EventKind = kind.parse()?;
            let t = now_ms();
            let at = at.as_deref().map(parse_cst).transpose()?.unwrap_or(t);
            let event = NewEvent {
                direction: direction
                    .as_deref()
                    .map(str::parse::<CallDirection>)
                    .transpose()?,
                kind,
                at,
                note,
                amount: amount.as_deref().map(parse_yuan).transpose()?,
                vin: vin
                    .as_deref()
                    .map(|v| domain::parse_vin(v, CheckDigitPolicy::Enforce))
                    .transpose()?,
                score,
            };
            let role = ws.config.claims.role;
            let (e, request) = ws.edit_site(doc, |am| {
                let e = domain::record_event(am, &id, &event, &by, t)?;
                // A quote on a vehicle above your discount limit is also a request to
                // the manager for that discount.
                let over = match (kind, &event.vin, event.amount) {
                    (EventKind::Quote, Some(v), Some(price)) => {
                        domain::discount_over_limit(am, &net, v.as_str(), price, role)?
                            .map(|d| (v.as_str().to_string(), d))
                    }
                    _ => None,
                };
                let request = match over {
                    Some((v, d)) => Some(domain::request_discount(am, &id, &v, d, &by, t)?),
                    None => None,
                };
                Ok((e, request))
            })?;
            let mut line = format!("recorded {} for customer {id}", e.kind);
            if let Some(r) = &request {
                line.push_str(&format!(
                    "; {} off is above your limit: a discount request is waiting for a manager",
                    crate::output::yuan(r.amount.unwrap_or(0))
                ));
            }
            done(ctx, &e, line)
        }
        CustomerCommand::List { .. } | CustomerCommand::Show { .. } => {
            unreachable!("read commands are handled in commands.rs")
        }
    }
}

/// `vehicle receive|ship|arrive|reserve|release|sell|deliver|transfer`.
pub fn vehicle(ws: &Workspace, ctx: &Ctx, doc: &DocRef, cmd: VehicleCommand) -> Result<ExitCode> {
    ws.require_write(doc)?;
    let by = ws.config.claims.sub.clone();
    let show = |vin: &str| -> Result<dealersync_core::schema::Vehicle> {
        let site = reread(ws, doc)?;
        site.vehicles
            .get(vin)
            .cloned()
            .ok_or_else(|| anyhow!("vehicle {vin} vanished from site {}", doc.label))
    };
    let vin_of = |vin: &str| -> Result<String> {
        Ok(domain::parse_vin(vin, CheckDigitPolicy::Enforce)?
            .as_str()
            .to_string())
    };
    match cmd {
        VehicleCommand::Receive {
            vin,
            model,
            trim,
            colour,
            cost,
            list_price,
            status,
            eta,
        } => {
            let net = ws.network()?;
            let new = NewVehicle {
                vin: domain::parse_vin(&vin, CheckDigitPolicy::Enforce)?,
                model,
                trim,
                colour,
                cost: cost.as_deref().map(parse_yuan).transpose()?,
                list_price: list_price.as_deref().map(parse_yuan).transpose()?,
                status: status.parse::<VehicleStatus>()?,
                eta: eta.as_deref().map(parse_date).transpose()?,
            };
            let v = ws.edit_site(doc, |am| {
                Ok(domain::receive_vehicle(am, &net, &new, &by, now_ms())?)
            })?;
            done(
                ctx,
                &v,
                format!("received {} {} ({})", v.vin, v.model, v.status),
            )
        }
        VehicleCommand::Ship { vin, eta } => {
            let vin = vin_of(&vin)?;
            let action = VehicleAction::Ship {
                eta: eta.as_deref().map(parse_date).transpose()?,
            };
            ws.edit_site(doc, |am| {
                Ok(domain::move_vehicle(am, &vin, &action, &by, now_ms())?)
            })?;
            let v = show(&vin)?;
            done(ctx, &v, format!("{vin} is in transit"))
        }
        VehicleCommand::Arrive { vin } => {
            let vin = vin_of(&vin)?;
            ws.edit_site(doc, |am| {
                Ok(domain::move_vehicle(
                    am,
                    &vin,
                    &VehicleAction::Arrive,
                    &by,
                    now_ms(),
                )?)
            })?;
            let v = show(&vin)?;
            done(
                ctx,
                &v,
                format!("{vin} arrived: in stock, days in stock count from now"),
            )
        }
        VehicleCommand::Reserve { vin, customer } => {
            let vin = vin_of(&vin)?;
            let customer = customer_id(ws, doc, &customer)?;
            let action = VehicleAction::Reserve {
                customer: customer.clone(),
            };
            ws.edit_site(doc, |am| {
                Ok(domain::move_vehicle(am, &vin, &action, &by, now_ms())?)
            })?;
            let v = show(&vin)?;
            done(ctx, &v, format!("reserved {vin} for customer {customer}"))
        }
        VehicleCommand::Release { vin } => {
            let vin = vin_of(&vin)?;
            ws.edit_site(doc, |am| {
                Ok(domain::move_vehicle(
                    am,
                    &vin,
                    &VehicleAction::Release,
                    &by,
                    now_ms(),
                )?)
            })?;
            let v = show(&vin)?;
            done(ctx, &v, format!("released {vin}; it is in stock again"))
        }
        VehicleCommand::Sell {
            vin,
            customer,
            price,
            at,
        } => {
            let vin = vin_of(&vin)?;
            let at = happened_at(at.as_deref())?;
            if customer.is_none()
                && reread(ws, doc)?
                    .vehicles
                    .get(&vin)
                    .is_some_and(|v| v.status == VehicleStatus::InStock)
            {
                bail!(
                    "vehicle {vin} is in stock, not reserved: say who buys it with --customer ID"
                );
            }
            let sale = domain::Sale {
                customer: customer.map(|c| customer_id(ws, doc, &c)).transpose()?,
                price: price.as_deref().map(parse_yuan).transpose()?,
            };
            let net = ws.network()?;
            let role = ws.config.claims.role;
            ws.edit_site(doc, |am| {
                Ok(domain::sell_vehicle(am, &net, &vin, &sale, &by, role, at)?)
            })?;
            let v = show(&vin)?;
            done(
                ctx,
                &v,
                format!(
                    "sold {vin} to customer {}; the order is on the customer's history",
                    v.sold_to.clone().unwrap_or_default()
                ),
            )
        }
        VehicleCommand::Deliver { vin, at } => {
            let vin = vin_of(&vin)?;
            let at = happened_at(at.as_deref())?;
            ws.edit_site(doc, |am| {
                Ok(domain::move_vehicle(
                    am,
                    &vin,
                    &VehicleAction::Deliver,
                    &by,
                    at,
                )?)
            })?;
            let v = show(&vin)?;
            done(
                ctx,
                &v,
                format!(
                    "delivered {vin} to customer {}; the delivery is on the customer's history",
                    v.sold_to.clone().unwrap_or_default()
                ),
            )
        }
        VehicleCommand::Transfer { vin, to } => {
            let vin = vin_of(&vin)?;
            let target = ws.pick_site(Some(&to))?;
            ws.require_write(&target)
                .context("a transfer records the vehicle at both sites")?;
            let net = ws.network()?;
            ws.edit_two(doc, &target, |from_am, to_am| {
                Ok(domain::transfer_vehicle(
                    from_am,
                    to_am,
                    &net,
                    &vin,
                    None,
                    &by,
                    now_ms(),
                )?)
            })?;
            let v = show(&vin)?;
            done(
                ctx,
                &v,
                format!("transferred {vin} from {} to {}", doc.label, target.label),
            )
        }
        VehicleCommand::List { .. } | VehicleCommand::Show { .. } => {
            unreachable!("read commands are handled in commands.rs")
        }
    }
}

/// `discount request|approve|refuse`.
pub fn discount(ws: &Workspace, ctx: &Ctx, doc: &DocRef, cmd: DiscountCommand) -> Result<ExitCode> {
    ws.require_write(doc)?;
    let by = ws.config.claims.sub.clone();
    let role = ws.config.claims.role;
    let vin_of = |vin: &str| -> Result<String> {
        Ok(domain::parse_vin(vin, CheckDigitPolicy::Enforce)?
            .as_str()
            .to_string())
    };
    let (vin, customer, decision) = match &cmd {
        DiscountCommand::Request { vin, customer, .. } => (vin, customer, None),
        DiscountCommand::Approve { vin, customer } => {
            (vin, customer, Some(domain::DiscountDecision::Approve))
        }
        DiscountCommand::Refuse { vin, customer } => {
            (vin, customer, Some(domain::DiscountDecision::Refuse))
        }
        DiscountCommand::List => unreachable!("read commands are handled in commands.rs"),
    };
    let vin = vin_of(vin)?;
    let customer = customer_id(ws, doc, customer)?;
    let e = match (decision, &cmd) {
        (None, DiscountCommand::Request { amount, .. }) => {
            let amount = parse_yuan(amount)?;
            ws.edit_site(doc, |am| {
                Ok(domain::request_discount(
                    am,
                    &customer,
                    &vin,
                    amount,
                    &by,
                    now_ms(),
                )?)
            })?
        }
        (Some(d), _) => {
            let net = ws.network()?;
            ws.edit_site(doc, |am| {
                Ok(domain::decide_discount(
                    am,
                    &net,
                    &customer,
                    &vin,
                    d,
                    &by,
                    role,
                    now_ms(),
                )?)
            })?
        }
        _ => unreachable!("a request has an amount"),
    };
    let line = format!(
        "{} {} on {vin} for customer {customer}",
        e.kind,
        crate::output::yuan(e.amount.unwrap_or(0))
    );
    done(ctx, &e, line)
}

/// `walk-in add`.
pub fn walk_in(ws: &Workspace, ctx: &Ctx, doc: &DocRef, cmd: WalkInCommand) -> Result<ExitCode> {
    ws.require_write(doc)?;
    let by = ws.config.claims.sub.clone();
    let net = ws.network()?;
    match cmd {
        WalkInCommand::Add {
            party,
            model,
            note,
            at,
        } => {
            let t = now_ms();
            let new = domain::NewWalkIn {
                id: uuid::Uuid::new_v4().to_string(),
                at: at.as_deref().map(parse_cst).transpose()?.unwrap_or(t),
                party_size: party,
                model_of_interest: model,
                note,
            };
            let w = ws.edit_site(doc, |am| {
                Ok(domain::record_walk_in(am, &net, &new, &by, t)?)
            })?;
            done(
                ctx,
                &w,
                format!("recorded a walk-in of {} (one visit)", w.party_size),
            )
        }
        WalkInCommand::List => unreachable!("read commands are handled in commands.rs"),
    }
}

/// `parts adjust`.
pub fn parts(ws: &Workspace, ctx: &Ctx, doc: &DocRef, cmd: PartsCommand) -> Result<ExitCode> {
    ws.require_write(doc)?;
    let by = ws.config.claims.sub.clone();
    match cmd {
        PartsCommand::Adjust { part, delta } => {
            let count = ws.edit_site(doc, |am| {
                Ok(domain::adjust_part(am, &part, delta, &by, now_ms())?)
            })?;
            done(
                ctx,
                &json!({"part": part, "change": delta, "count": count}),
                format!("{part}: {delta:+}, now {count} on hand"),
            )
        }
        PartsCommand::Ship { .. } | PartsCommand::Receive { .. } => {
            unreachable!("shipments are handled in manage.rs")
        }
        PartsCommand::List => unreachable!("read commands are handled in commands.rs"),
    }
}

/// `forecast set`.
pub fn forecast(ws: &Workspace, ctx: &Ctx, doc: &DocRef, cmd: ForecastCommand) -> Result<ExitCode> {
    ws.require_write(doc)?;
    let by = ws.config.claims.sub.clone();
    match cmd {
        ForecastCommand::Set {
            month,
            model,
            quantity,
        } => {
            let net = ws.network()?;
            let at = now_ms();
            ws.edit_site(doc, |am| {
                Ok(domain::set_forecast(
                    am, &net, &month, &model, quantity, &by, at,
                )?)
            })?;
            done(
                ctx,
                &json!({"month": month, "model": model, "quantity": quantity, "by": by, "at": at}),
                format!("forecast {month} {model}: {quantity}"),
            )
        }
        ForecastCommand::Adjust {
            month,
            model,
            quantity,
        } => {
            // Adjusting is the level above correcting a site's figure: not the
            // consultant's own, and not a site's own figure over itself.
            if ws.config.claims.role == Role::Consultant
                || doc
                    .site
                    .as_ref()
                    .is_some_and(|s| s.id == ws.config.claims.site)
            {
                bail!(
                    "only a manager above {} (a distribution centre, head office) adjusts its forecast; the site changes its own with `forecast set`",
                    doc.label
                );
            }
            let at = now_ms();
            ws.edit_site(doc, |am| {
                Ok(domain::adjust_forecast(
                    am, &month, &model, quantity, &by, at,
                )?)
            })?;
            done(
                ctx,
                &json!({"month": month, "model": model, "adjusted": {"quantity": quantity, "by": by, "at": at}}),
                format!("forecast {month} {model} adjusted to {quantity}"),
            )
        }
        ForecastCommand::Show { .. } => unreachable!("read commands are handled in commands.rs"),
    }
}
