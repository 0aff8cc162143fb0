//! What each command does, on the documents of a [`Workspace`].

use dealersync_core::time::now_ms;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use dealersync_core::schema::{Customer, CustomerStatus, EventKind, Vehicle, VehicleStatus};
use serde_json::json;

use crate::cli::*;
use crate::ctx::{Ctx, find_customer};
use crate::home::Home;
use crate::output::{Table, date, opt, print_json, when, yuan};
use crate::workspace::Workspace;

/// Runs one command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let home = Home::locate(cli.home.clone())?;
    let ctx = Ctx {
        site: cli.site.clone(),
        json: cli.json,
    };
    match cli.command {
        Command::Login(args) => crate::sync::login(home, args, &ctx),
        Command::Sync(args) => crate::sync::sync(home, args, &ctx),
        Command::Status => crate::sync::status(&Workspace::open(home)?, &ctx),
        Command::Relays(args) => crate::sync::relays(args, &ctx),
        Command::Customer(c) => customer(&Workspace::open(home)?, &ctx, c),
        Command::Vehicle(c) => vehicle(&Workspace::open(home)?, &ctx, c),
        Command::WalkIn(c) => walk_in(&Workspace::open(home)?, &ctx, c),
        Command::Discount(c) => discount(&Workspace::open(home)?, &ctx, c),
        Command::Parts(c @ (PartsCommand::Ship { .. } | PartsCommand::Receive { .. })) => {
            crate::manage::parts(&Workspace::open(home)?, &ctx, c)
        }
        Command::Parts(c) => parts(&Workspace::open(home)?, &ctx, c),
        Command::Transfer(c) => crate::manage::transfer(&Workspace::open(home)?, &ctx, c),
        Command::Network(c) => crate::manage::network(&Workspace::open(home)?, &ctx, c),
        Command::Care(c) => crate::care::care(&Workspace::open(home)?, &ctx, c),
        Command::Complaint(c) => crate::care::complaint(&Workspace::open(home)?, &ctx, c),
        Command::Forecast(c) => forecast(&Workspace::open(home)?, &ctx, c),
        Command::Conflicts(c) => crate::conflicts::run(&Workspace::open(home)?, &ctx, c),
        Command::Report(c) => crate::report::run(&Workspace::open(home)?, &ctx, c),
    }
}

/// Days a vehicle has been (or was) on this site's books: from its arrival to today,
/// or to the day it left (delivered to its customer, or transferred out), so a car
/// handed over in March does not keep ageing. `None` before it arrives.
pub fn days_on_books(v: &Vehicle, today: i64) -> Option<i64> {
    let arrived = v.arrived_at?;
    let end = match v.status {
        VehicleStatus::Delivered | VehicleStatus::TransferredOut => v.updated_at,
        _ => today,
    };
    Some(dealersync_core::time::cst_days_between(arrived, end))
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

fn customer_table(customers: &[&Customer]) -> Table {
    let mut t = Table::new(&[
        "id",
        "name",
        "phone",
        "source",
        "status",
        "consultant",
        "model",
        "events",
    ]);
    for c in customers {
        t.row(vec![
            short(&c.id),
            c.name.clone(),
            c.phone.clone(),
            c.source.to_string(),
            c.status.to_string(),
            opt(&c.consultant),
            opt(&c.model_of_interest),
            c.events.len().to_string(),
        ]);
    }
    t
}

fn customer(ws: &Workspace, ctx: &Ctx, cmd: CustomerCommand) -> Result<ExitCode> {
    let doc = ws.pick_site(ctx.site.as_deref())?;
    match cmd {
        CustomerCommand::List { status, consultant } => {
            let (_, site) = ws.site_doc(&doc)?;
            let status: Option<CustomerStatus> = status.map(|s| s.parse()).transpose()?;
            let list: Vec<&Customer> = site
                .customers
                .values()
                // A customer merged into another (a resolved duplicate) is not listed.
                .filter(|c| c.merged_into.is_none())
                .filter(|c| status.is_none_or(|s| c.status == s))
                .filter(|c| {
                    consultant
                        .as_deref()
                        .is_none_or(|k| c.consultant.as_deref() == Some(k))
                })
                .collect();
            if ctx.json {
                print_json(&list)?;
            } else {
                print!("{}", customer_table(&list).render());
            }
        }
        CustomerCommand::Show { id } => {
            let (_, site) = ws.site_doc(&doc)?;
            let c = find_customer(&site, &id)?;
            if ctx.json {
                print_json(c)?;
            } else {
                println!("{} ({})", c.name, c.id);
                println!("  phone       {}", c.phone);
                println!("  source      {}", c.source);
                println!("  status      {}", c.status);
                println!("  consultant  {}", opt(&c.consultant));
                println!("  model       {}", opt(&c.model_of_interest));
                println!("  entered     {}", when(c.created_at));
                let mut t = Table::new(&["when", "event", "by", "amount", "vin", "note"]);
                for e in &c.events {
                    t.row(vec![
                        when(e.at),
                        match e.direction {
                            Some(d) => format!("{} ({d})", e.kind),
                            None => e.kind.to_string(),
                        },
                        e.by.clone(),
                        e.amount.map(yuan).unwrap_or_else(|| "-".into()),
                        opt(&e.vin),
                        opt(&e.note),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        other => return crate::edit::customer(ws, ctx, &doc, other),
    }
    Ok(ExitCode::SUCCESS)
}

fn vehicle(ws: &Workspace, ctx: &Ctx, cmd: VehicleCommand) -> Result<ExitCode> {
    let doc = ws.pick_site(ctx.site.as_deref())?;
    match cmd {
        VehicleCommand::List { status, model } => {
            let (_, site) = ws.site_doc(&doc)?;
            let status: Option<VehicleStatus> = status.map(|s| s.parse()).transpose()?;
            let list: Vec<_> = site
                .vehicles
                .values()
                .filter(|v| status.is_none_or(|s| v.status == s))
                .filter(|v| model.as_deref().is_none_or(|m| v.model == m))
                .collect();
            if ctx.json {
                print_json(&list)?;
            } else {
                let mut t = Table::new(&[
                    "vin",
                    "model",
                    "trim",
                    "colour",
                    "status",
                    "list price",
                    "eta",
                    "arrived",
                    "days",
                    "customer",
                ]);
                let today = now_ms();
                for v in list {
                    t.row(vec![
                        v.vin.clone(),
                        v.model.clone(),
                        v.trim.clone(),
                        v.colour.clone(),
                        v.status.to_string(),
                        yuan(v.list_price),
                        v.eta.map(date).unwrap_or_else(|| "-".into()),
                        v.arrived_at.map(date).unwrap_or_else(|| "-".into()),
                        days_on_books(v, today)
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| "-".into()),
                        short(
                            v.sold_to
                                .as_deref()
                                .or(v.reserved_for.as_deref())
                                .unwrap_or("-"),
                        ),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        VehicleCommand::Show { vin } => {
            let (_, site) = ws.site_doc(&doc)?;
            let key = vin.trim().to_ascii_uppercase();
            let v = site.vehicles.get(&key).ok_or_else(|| {
                anyhow!(
                    "no vehicle {key} at site {}; `dealersync vehicle list` shows the stock",
                    site.site.id
                )
            })?;
            if ctx.json {
                print_json(v)?;
            } else {
                println!("{} {} {} {}", v.vin, v.model, v.trim, v.colour);
                println!("  status        {}", v.status);
                println!("  cost          {}", yuan(v.cost));
                println!("  list price    {}", yuan(v.list_price));
                println!("  eta           {}", v.eta.map(date).unwrap_or("-".into()));
                println!(
                    "  arrived       {}",
                    v.arrived_at.map(date).unwrap_or("-".into())
                );
                println!("  reserved for  {}", opt(&v.reserved_for));
                println!("  sold to       {}", opt(&v.sold_to));
                println!("  consultant    {}", opt(&v.consultant));
                println!("  from site     {}", opt(&v.transfer_from));
                println!("  to site       {}", opt(&v.transfer_to));
                println!("  updated       {}", when(v.updated_at));
            }
        }
        other => return crate::edit::vehicle(ws, ctx, &doc, other),
    }
    Ok(ExitCode::SUCCESS)
}

fn discount(ws: &Workspace, ctx: &Ctx, cmd: DiscountCommand) -> Result<ExitCode> {
    let doc = ws.pick_site(ctx.site.as_deref())?;
    match cmd {
        DiscountCommand::List => {
            let (_, site) = ws.site_doc(&doc)?;
            let mut rows = Vec::new();
            for c in site.customers.values().filter(|c| c.merged_into.is_none()) {
                let mut vins: Vec<&str> = c
                    .events
                    .iter()
                    .filter(|e| e.kind == EventKind::DiscountRequest)
                    .filter_map(|e| e.vin.as_deref())
                    .collect();
                vins.sort_unstable();
                vins.dedup();
                for vin in vins {
                    if let Some(state) = dealersync_core::domain::discount_state(c, vin) {
                        rows.push((c, vin.to_string(), state));
                    }
                }
            }
            use dealersync_core::domain::DiscountState::*;
            let pending_first = |s: &dealersync_core::domain::DiscountState| match s {
                Pending { .. } => 0,
                _ => 1,
            };
            rows.sort_by_key(|(c, vin, s)| (pending_first(s), c.id.clone(), vin.clone()));
            if ctx.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(c, vin, s)| json!({"customer": c.id, "vin": vin, "discount": s}))
                    .collect();
                print_json(&v)?;
            } else {
                let mut t =
                    Table::new(&["customer", "name", "vin", "state", "amount", "by", "when"]);
                for (c, vin, s) in rows {
                    let (state, amount, by, at) = match &s {
                        Pending { amount, by, at } => ("pending", amount, by, at),
                        Approved { amount, by, at } => ("approved", amount, by, at),
                        Refused { amount, by, at } => ("refused", amount, by, at),
                    };
                    t.row(vec![
                        short(&c.id),
                        c.name.clone(),
                        vin,
                        state.into(),
                        yuan(*amount),
                        by.clone(),
                        when(*at),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        other => return crate::edit::discount(ws, ctx, &doc, other),
    }
    Ok(ExitCode::SUCCESS)
}

fn walk_in(ws: &Workspace, ctx: &Ctx, cmd: WalkInCommand) -> Result<ExitCode> {
    let doc = ws.pick_site(ctx.site.as_deref())?;
    match cmd {
        WalkInCommand::List => {
            let (_, site) = ws.site_doc(&doc)?;
            let mut list: Vec<_> = site.walk_ins.values().collect();
            list.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
            if ctx.json {
                print_json(&list)?;
            } else {
                let mut t = Table::new(&["when", "people", "by", "model", "note"]);
                for w in list {
                    t.row(vec![
                        when(w.at),
                        w.party_size.to_string(),
                        w.by.clone(),
                        opt(&w.model_of_interest),
                        opt(&w.note),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        other => return crate::edit::walk_in(ws, ctx, &doc, other),
    }
    Ok(ExitCode::SUCCESS)
}

fn parts(ws: &Workspace, ctx: &Ctx, cmd: PartsCommand) -> Result<ExitCode> {
    let doc = ws.pick_site(ctx.site.as_deref())?;
    match cmd {
        PartsCommand::List => {
            let (_, site) = ws.site_doc(&doc)?;
            if ctx.json {
                let v: Vec<_> = site
                    .parts
                    .iter()
                    .map(|(p, c)| json!({"part": p, "count": c.value()}))
                    .collect();
                print_json(&v)?;
            } else {
                let mut t = Table::new(&["part", "count"]);
                for (p, c) in &site.parts {
                    t.row(vec![p.clone(), c.value().to_string()]);
                }
                print!("{}", t.render());
            }
        }
        other => return crate::edit::parts(ws, ctx, &doc, other),
    }
    Ok(ExitCode::SUCCESS)
}

fn forecast(ws: &Workspace, ctx: &Ctx, cmd: ForecastCommand) -> Result<ExitCode> {
    let doc = ws.pick_site(ctx.site.as_deref())?;
    match cmd {
        ForecastCommand::Show { month } => {
            let (_, site) = ws.site_doc(&doc)?;
            let mut rows = Vec::new();
            for (m, models) in &site.forecasts {
                if month.as_deref().is_some_and(|w| w != m) {
                    continue;
                }
                for (model, e) in models {
                    rows.push((m.clone(), model.clone(), e.clone()));
                }
            }
            if ctx.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(m, model, e)| {
                        json!({"month": m, "model": model, "quantity": e.quantity, "by": e.by, "at": e.at, "adjusted": e.adjusted, "counts": e.effective()})
                    })
                    .collect();
                print_json(&v)?;
            } else {
                let mut t = Table::new(&[
                    "month", "model", "quantity", "by", "set at", "adjusted", "adj. by", "adj. at",
                ]);
                for (m, model, e) in rows {
                    let (aq, ab, aa) = match &e.adjusted {
                        Some(a) => (a.quantity.to_string(), a.by.clone(), when(a.at)),
                        None => ("-".into(), "-".into(), "-".into()),
                    };
                    t.row(vec![
                        m,
                        model,
                        e.quantity.to_string(),
                        e.by,
                        when(e.at),
                        aq,
                        ab,
                        aa,
                    ]);
                }
                print!("{}", t.render());
            }
        }
        other => return crate::edit::forecast(ws, ctx, &doc, other),
    }
    Ok(ExitCode::SUCCESS)
}
