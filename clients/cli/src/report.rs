//! `report ...`: consolidation computed on the device from the documents it holds.

use dealersync_core::time::now_ms;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dealersync_core::reports::{self, OrderPlanParams, Tabular};
use dealersync_core::schema::{Period, SiteChannel, SiteDocument};
use serde::Serialize;

use crate::cli::{ReportArgs, ReportCommand};
use crate::ctx::Ctx;
use crate::output::{Table, print_json, yuan};
use crate::periods::MissingArchive;
use crate::workspace::Workspace;

/// The table of a report's flat rows, columns in the rows' field order.
fn table_of<R: Tabular>(report: &R) -> Result<Table> {
    // The csv serializer writes headers in field order (serde_json would sort them).
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in report.rows() {
        w.serialize(row)?;
    }
    let bytes = w.into_inner()?;
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let headers: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
    let mut t = Table {
        headers,
        rows: Vec::new(),
    };
    for rec in r.records() {
        t.rows.push(rec?.iter().map(str::to_string).collect());
    }
    Ok(t)
}

/// Prints a report as JSON (everything, warnings included), CSV (rows) or a table.
fn emit<R: Tabular + Serialize>(
    ctx: &Ctx,
    out: &ReportArgs,
    title: &str,
    report: &R,
    narrow: Option<&[(&str, &str)]>,
) -> Result<()> {
    if ctx.json {
        return print_json(report);
    }
    let t = table_of(report)?;
    if out.csv {
        if t.headers.is_empty() {
            // No rows: still print nothing but an empty file; headers come from rows.
            return Ok(());
        }
        print!("{}", t.to_csv()?);
        return Ok(());
    }
    println!("{title}");
    let t = for_people(t);
    let t = match narrow {
        Some(columns) if !out.wide => select(t, columns),
        _ => t,
    };
    if t.headers.is_empty() {
        println!("(no rows)");
    } else {
        print!("{}", t.render());
    }
    if let Ok(v) = serde_json::to_value(report)
        && let Some(w) = v.get("warnings").and_then(|w| w.as_array())
        && !w.is_empty()
    {
        eprintln!("{} warning(s):", w.len());
        for x in w {
            eprintln!("  {x}");
        }
    }
    Ok(())
}

/// The KPI columns shown without `--wide` (field, title): who, how many came, how many
/// of the new visitors ordered, what was sold against the target. About 100 columns wide.
const KPI_NARROW: &[(&str, &str)] = &[
    ("level", "level"),
    ("site", "site"),
    ("channel", "channel"),
    ("consultant", "consultant"),
    ("visits", "visits"),
    ("firstVisitors", "new"),
    ("closingRate", "closing"),
    ("orders", "orders"),
    ("deliveries", "units"),
    ("revenue", "revenue ¥"),
    ("targetUnits", "target"),
    ("unitsAchievement", "achieved"),
];

/// The forecast submission columns shown without `--wide`: who, where they stand, when,
/// and the units submitted against those that count after adjustment.
const SUBMISSIONS_NARROW: &[(&str, &str)] = &[
    ("site", "site"),
    ("channel", "channel"),
    ("parent", "reports to"),
    ("status", "status"),
    ("submittedAt", "submitted (CST)"),
    ("models", "models"),
    ("submittedUnits", "units sent"),
    ("adjustedModels", "adjusted"),
    ("units", "units counted"),
];

/// The transfer columns shown without `--wide`: which, where it stands, from where to
/// where, who asked and who decided.
const TRANSFERS_NARROW: &[(&str, &str)] = &[
    ("id", "id"),
    ("status", "status"),
    ("vin", "vin"),
    ("model", "model"),
    ("from", "from"),
    ("to", "to"),
    ("requestedBy", "asked by"),
    ("requestedAt", "asked (CST)"),
    ("decidedBy", "decided by"),
    ("decisionNote", "reason"),
];

/// Keeps `columns` of a table, in that order, under their short titles.
fn select(t: Table, columns: &[(&str, &str)]) -> Table {
    let idx: Vec<(usize, &str)> = columns
        .iter()
        .filter_map(|(field, title)| {
            t.headers
                .iter()
                .position(|h| h == field || h.strip_suffix(" (yuan)") == Some(field))
                .map(|i| (i, *title))
        })
        .collect();
    Table {
        headers: idx.iter().map(|(_, title)| title.to_string()).collect(),
        rows: t
            .rows
            .iter()
            .map(|r| idx.iter().map(|(i, _)| r[*i].clone()).collect())
            .collect(),
    }
}

/// Columns that describe a row rather than measure it: never "not available".
const LABEL_COLUMNS: &[&str] = &[
    "level",
    "site",
    "siteName",
    "channel",
    "consultant",
    "available",
];

/// For people: money in yuan, rates in percent, and on a row whose documents this
/// device does not hold (`available` false) every empty figure reads "n/a", so a site
/// nobody synced is not mistaken for a site that sold nothing.
fn for_people(t: Table) -> Table {
    let mut t = money_in_yuan(t);
    let available = t.headers.iter().position(|h| h == "available");
    if let Some(i) = t.headers.iter().position(|h| h == "channel") {
        for row in &mut t.rows {
            if let Ok(c) = row[i].parse::<SiteChannel>() {
                row[i] = c.label_zh().to_string();
            }
        }
    }
    for row in &mut t.rows {
        let missing = available.is_some_and(|i| row[i] == "false");
        for (i, h) in t.headers.iter().enumerate() {
            let is_rate = h.ends_with("Rate") || h.ends_with("Ratio") || h.ends_with("Achievement");
            if is_rate && let Ok(x) = row[i].parse::<f64>() {
                row[i] = format!("{:.1}%", x * 100.0);
            }
            // Targets are set in the network document, known even without the site's.
            let known = LABEL_COLUMNS.contains(&h.as_str()) || h.starts_with("target");
            if h.ends_with("At")
                && let Ok(ms) = row[i].parse::<i64>()
            {
                row[i] = crate::output::when(ms);
            }
            if missing && row[i].is_empty() && !known {
                row[i] = "n/a".into();
            }
        }
    }
    t
}

/// Report columns that hold money in fen (see docs/reports.md).
const MONEY_COLUMNS: &[&str] = &[
    "cost",
    "costValue",
    "listPrice",
    "unitCost",
    "capital",
    "onHandCost",
    "soldCost",
    "slowMoverCost",
    "revenue",
    "targetRevenue",
];

/// For people: money columns in yuan, as everywhere else in the CLI (JSON and CSV keep
/// fen, for scripts).
fn money_in_yuan(mut t: Table) -> Table {
    let money: Vec<usize> = t
        .headers
        .iter()
        .enumerate()
        .filter(|(_, h)| MONEY_COLUMNS.contains(&h.as_str()))
        .map(|(i, _)| i)
        .collect();
    for row in &mut t.rows {
        for &i in &money {
            if let Ok(fen) = row[i].parse::<i64>() {
                row[i] = yuan(fen);
            }
        }
    }
    for &i in &money {
        t.headers[i] = format!("{} (yuan)", t.headers[i]);
    }
    t
}

fn month_or_next(month: Option<String>) -> Result<Period> {
    match month {
        Some(m) => m.parse().context("--month"),
        None => {
            let this: Period = dealersync_core::schema::month_key(now_ms()).parse()?;
            let Period::Month(y, m) = this else {
                unreachable!("month_key gives a month")
            };
            Ok(if m == 12 {
                Period::Month(y + 1, 1)
            } else {
                Period::Month(y, m + 1)
            })
        }
    }
}

/// The part of a report's title that says which sites it covers, when this device does
/// not hold every site's document (empty when it does).
/// The calendar month before this one (CST): the last full month.
fn last_month() -> Result<Period> {
    match dealersync_core::schema::month_key(now_ms()).parse::<Period>()? {
        Period::Month(y, 1) => Ok(Period::Month(y - 1, 12)),
        Period::Month(y, m) => Ok(Period::Month(y, m - 1)),
        other => Ok(other),
    }
}

/// How many missing sites a table's title names; the rest are counted (a consultant's
/// device in a network of hundreds of sites would otherwise print a title of hundreds
/// of ids). `--json` lists them all (`sitesNotAvailable`).
const TITLE_SITES: usize = 3;

fn not_here(covered: &[String], missing: &[String]) -> String {
    if missing.is_empty() {
        return String::new();
    }
    let named = missing[..missing.len().min(TITLE_SITES)].join(", ");
    let more = match missing.len().saturating_sub(TITLE_SITES) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        " — holds {} of {} sites; not available here: {named}{more}",
        covered.len(),
        covered.len() + missing.len(),
    )
}

/// What a report reads of a site's history, to know which missing archives it lacks.
#[derive(Debug, Clone, Copy)]
enum Span {
    /// What is open now (stock, follow-ups): the working document holds all of it.
    Now,
    /// One period's figures: the archives of its months are needed.
    Period(Period),
    /// Every record ever (transfers, customers at two sites).
    History,
}

/// The sites a report over `span` reads. A site whose archive of the period's months is
/// not on this device is left out, so the report says it is not available (never
/// zero), and a warning says why; over the whole history the warning only (what is
/// still open is in the working document).
fn sites_for<'a>(
    held: &'a [SiteDocument],
    missing: &[MissingArchive],
    span: Span,
) -> Vec<&'a SiteDocument> {
    let lacking: Vec<&MissingArchive> = match span {
        Span::Now => Vec::new(),
        Span::Period(p) => missing.iter().filter(|m| m.covers(p)).collect(),
        Span::History => missing.iter().collect(),
    };
    for m in &lacking {
        let what = match span {
            Span::Period(p) => format!("its figures for {p} are not available here"),
            _ => "records that stayed in it are not listed".to_string(),
        };
        eprintln!(
            "warning: site {}: the archive of {} (document {}) is not on this device; {what}",
            m.site,
            m.months(),
            m.document
        );
    }
    let out_of_period =
        |site: &str| matches!(span, Span::Period(_)) && lacking.iter().any(|m| m.site == site);
    held.iter().filter(|s| !out_of_period(&s.site.id)).collect()
}

/// Runs a `report` command over every site on the device, each read across its chain
/// of monthly documents ([`crate::periods::held_sites`]).
pub fn run(ws: &Workspace, ctx: &Ctx, cmd: ReportCommand) -> Result<ExitCode> {
    let net = ws.network()?;
    let crate::periods::HeldSites {
        sites: held,
        mut missing,
    } = crate::periods::held_sites(ws)?;
    // `--site` narrows the roll-up to that site and the sites below it.
    let held: Vec<SiteDocument> = match ctx.site.as_deref() {
        Some(root) => {
            ws.pick_site(Some(root))?;
            missing.retain(|m| ws.config.is_within(&m.site, root));
            held.into_iter()
                .filter(|(d, _)| ws.config.is_within(&d.label, root))
                .map(|(_, s)| s)
                .collect()
        }
        None => held.into_iter().map(|(_, s)| s).collect(),
    };
    let sites_over = |span| sites_for(&held, &missing, span);
    match cmd {
        ReportCommand::Stock(out) => {
            let sites = sites_over(Span::Now);
            let r = reports::stock(&net, &sites)?;
            let title = format!(
                "Stock: {} vehicles{}",
                r.total_count,
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, None)?;
        }
        ReportCommand::Forecast { out, month } => {
            let month = month_or_next(month)?;
            let sites = sites_over(Span::Period(month));
            let r = reports::forecast_rollup(&net, &sites, month)?;
            emit(
                ctx,
                &out,
                &format!("Forecast roll-up for {month}"),
                &r,
                None,
            )?;
        }
        ReportCommand::OrderPlan { out, month } => {
            let month = month_or_next(month)?;
            let sites = sites_over(Span::Period(month));
            let r =
                reports::order_plan(&net, &sites, month, now_ms(), &OrderPlanParams::default())?;
            let title = format!(
                "Order plan for {month}{}",
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, None)?;
        }
        ReportCommand::Submissions { out, month } => {
            let month = month_or_next(month)?;
            let sites = sites_over(Span::Period(month));
            let mut r = reports::forecast_submissions(&net, &sites, month, now_ms())?;
            // Per site in the caller's subtree: `--site`, else the caller's own site.
            let root = ctx.site.as_deref().unwrap_or(&ws.config.claims.site);
            r.retain(|row| ws.config.is_within(&row.site, root));
            let title = format!(
                "Forecasts for {month}: due by the end of {} (CST); on time {}, late {}, missing {}, pending {}, not on this device {}",
                r.deadline_date, r.on_time, r.late, r.missing, r.pending, r.not_available
            );
            emit(ctx, &out, &title, &r, Some(SUBMISSIONS_NARROW))?;
        }
        ReportCommand::Transfers(out) => {
            let sites = sites_over(Span::History);
            let r = reports::transfers(&net, &sites)?;
            let title = format!(
                "Transfers between regions: {} waiting for head office, {} approved and not sent{}",
                r.pending,
                r.approved_not_sent,
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, Some(TRANSFERS_NARROW))?;
        }
        ReportCommand::Duplicates(out) => {
            let sites = sites_over(Span::History);
            let r = reports::duplicate_customers(&net, &sites)?;
            let title = format!(
                "Customers registered at more than one site: {} phone number(s){}",
                r.groups,
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, None)?;
        }
        ReportCommand::FollowUps(out) => {
            let sites = sites_over(Span::Now);
            let r = reports::follow_ups_due(&net, &sites, now_ms())?;
            let title = format!(
                "Follow-ups due today or overdue: {}{}",
                r.rows.len(),
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, None)?;
        }
        ReportCommand::Care { out, period } => {
            let period: Period = match period {
                Some(p) => p.parse().context("--period")?,
                None => dealersync_core::schema::month_key(now_ms()).parse()?,
            };
            let sites = sites_over(Span::Period(period));
            let r = reports::customer_care(&net, &sites, period, now_ms())?;
            let title = format!(
                "Customer care for {period}{}",
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, None)?;
            if !ctx.json && !out.csv {
                for m in &r.mix {
                    println!("  {} {} {}: {}", m.site, m.dimension, m.value, m.count);
                }
            }
        }
        ReportCommand::Parts { out, period } => {
            let period: Period = match period {
                Some(p) => p.parse().context("--period")?,
                None => dealersync_core::schema::month_key(now_ms()).parse()?,
            };
            let sites = sites_over(Span::Period(period));
            let r = reports::parts_distribution(&net, &sites, period)?;
            let (shipped, received): (i64, i64) = r
                .centres
                .iter()
                .fold((0, 0), |(s, g), c| (s + c.shipped, g + c.received));
            let title = format!(
                "Parts shipped to agents in {period}: {shipped} units, {received} arrived, {} on the way{}",
                shipped - received,
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, None)?;
        }
        ReportCommand::Ageing { out, slow, days } => {
            let sites = sites_over(Span::Now);
            let params = reports::StockParams {
                slow_mover_days: days,
            };
            let mut r = reports::ageing(&net, &sites, now_ms(), &params)?;
            if slow {
                r.rows.retain(|row| row.slow_mover);
            }
            let title = format!(
                "Cars on hand: {} slow movers (available over {days} days), ¥{} tied up{}",
                r.slow_movers,
                crate::output::yuan(r.slow_mover_cost),
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, None)?;
        }
        ReportCommand::Turnover { out, period } => {
            let period: Period = match period {
                Some(p) => p.parse().context("--period")?,
                None => last_month()?,
            };
            let sites = sites_over(Span::Period(period));
            let r = reports::turnover(&net, &sites, period, now_ms())?;
            let title = format!(
                "Days of supply and capital turnover for {period} ({} days){}",
                r.days,
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, None)?;
        }
        ReportCommand::Kpi { out, period } => {
            let period: Period = match period {
                Some(p) => p.parse().context("--period")?,
                None => dealersync_core::schema::month_key(now_ms()).parse()?,
            };
            let sites = sites_over(Span::Period(period));
            let r = reports::kpis(&net, &sites, period)?;
            let title = format!(
                "KPIs for {period}{}",
                not_here(&r.sites_covered, &r.sites_not_available)
            );
            emit(ctx, &out, &title, &r, Some(KPI_NARROW))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_columns_are_shown_in_yuan_others_untouched() {
        let mut t = Table::new(&["model", "count", "capital"]);
        t.row(vec!["SDN-A".into(), "4".into(), "48000000".into()]);
        let t = money_in_yuan(t);
        assert_eq!(t.headers, vec!["model", "count", "capital (yuan)"]);
        assert_eq!(t.rows[0], vec!["SDN-A", "4", "480,000.00"]);
    }

    #[test]
    fn a_site_not_held_reads_not_available_and_rates_read_in_percent() {
        let mut t = Table::new(&[
            "level",
            "site",
            "available",
            "visits",
            "closingRate",
            "targetUnits",
        ]);
        t.row(vec![
            "site".into(),
            "ag-1".into(),
            "false".into(),
            "".into(),
            "".into(),
            "2".into(),
        ]);
        t.row(vec![
            "site".into(),
            "hq".into(),
            "true".into(),
            "0".into(),
            "0.3333".into(),
            "".into(),
        ]);
        let t = for_people(t);
        assert_eq!(t.rows[0], vec!["site", "ag-1", "false", "n/a", "n/a", "2"]);
        assert_eq!(t.rows[1], vec!["site", "hq", "true", "0", "33.3%", ""]);
        let narrow = select(t, &[("site", "site"), ("closingRate", "closing")]);
        assert_eq!(narrow.headers, vec!["site", "closing"]);
        assert_eq!(narrow.rows[1], vec!["hq", "33.3%"]);
    }
}
