//! Next month's demand forecasts.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType};

use crate::schema::{Millis, NetworkDocument};

use super::{
    DomainError, Result, catalogue_model, commit_write, key_like, not_negative, parse_month,
    root_map, sole_visible_map, writable_map,
};
use crate::schema::ForecastEntry;

/// Sets next month's demand forecast for a model at this site.
///
/// The value is written so that it supersedes every concurrent value of the same cell:
/// a plain put replaces all conflicting `quantity` values, and when two devices created
/// the cell (or the month) concurrently, the cell (or month) is written afresh, keeping
/// the other cells of the month. This is also how a forecast conflict is resolved.
pub fn set_forecast(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    month: &str,
    model: &str,
    quantity: i64,
    by: &str,
    now: Millis,
) -> Result<()> {
    let month = parse_month(month)?;
    catalogue_model(net, model, || format!("forecast {month}"))?;
    not_negative(format!("forecast {month}/{model} quantity"), quantity)?;
    let by = key_like("forecast by", by)?;
    let forecasts = root_map(doc, "site", "forecasts")?;
    commit_write(
        doc,
        format!("{by}: forecast {month}/{model} = {quantity}"),
        now,
        |doc| {
            let month_obj = writable_map::<ForecastEntry>(doc, &forecasts, &month)?;
            let cell = match sole_visible_map(doc, &month_obj, model)? {
                Some(cell) => cell,
                None => doc.put_object(&month_obj, model, ObjType::Map)?,
            };
            doc.put(&cell, "quantity", quantity)?;
            doc.put(&cell, "by", by.as_str())?;
            doc.put(&cell, "at", now)?;
            Ok(())
        },
    )
}

/// A distribution centre adjusts a site's submitted forecast: the site's own figure
/// (`quantity`, `by`, `at`) stays as submitted, and the adjustment is written beside it
/// (`adjusted`: quantity, who, when), so both can be read and the roll-up uses the
/// adjusted one. Adjusting again replaces the previous adjustment. Written into the
/// site's document, which the distribution centre's manager may write (access policy).
pub fn adjust_forecast(
    doc: &mut AutoCommit,
    month: &str,
    model: &str,
    quantity: i64,
    by: &str,
    now: Millis,
) -> Result<()> {
    let month = parse_month(month)?;
    not_negative(
        format!("adjusted forecast {month}/{model} quantity"),
        quantity,
    )?;
    let by = key_like("adjusted by", by)?;
    let forecasts = root_map(doc, "site", "forecasts")?;
    let no_forecast = || DomainError::NoForecast {
        month: month.clone(),
        model: model.to_string(),
    };
    let month_obj = sole_visible_map(doc, &forecasts, &month)?.ok_or_else(no_forecast)?;
    let cell = sole_visible_map(doc, &month_obj, model)?.ok_or_else(no_forecast)?;
    commit_write(
        doc,
        format!("{by}: adjusted forecast {month}/{model} = {quantity}"),
        now,
        |doc| {
            let adjusted = match sole_visible_map(doc, &cell, "adjusted")? {
                Some(a) => a,
                None => doc.put_object(&cell, "adjusted", ObjType::Map)?,
            };
            doc.put(&adjusted, "quantity", quantity)?;
            doc.put(&adjusted, "by", by.as_str())?;
            doc.put(&adjusted, "at", now)?;
            Ok(())
        },
    )
}
