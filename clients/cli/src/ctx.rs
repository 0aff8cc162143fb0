//! What every command shares: the common options ([`Ctx`]), finding a customer or a
//! record by the prefix of its id, the network document on this device, and printing
//! what a command did. Commands import this module, never each other.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use dealersync_core::schema::{Customer, SiteDocument};

use crate::home::DocRef;
use crate::output::print_json;
use crate::workspace::Workspace;

/// Options every command shares.
pub struct Ctx {
    /// `--site`.
    pub site: Option<String>,
    /// `--json`.
    pub json: bool,
}

/// Finds a customer by id or unique id prefix.
pub fn find_customer<'a>(site: &'a SiteDocument, id: &str) -> Result<&'a Customer> {
    if let Some(c) = site.customers.get(id) {
        return Ok(c);
    }
    let hits: Vec<&Customer> = site
        .customers
        .values()
        .filter(|c| c.id.starts_with(id))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "no customer {id:?} at site {}; `dealersync customer list` shows their ids",
            site.site.id
        ),
        many => bail!(
            "{id:?} matches {} customers at site {}; type more of the id",
            many.len(),
            site.site.id
        ),
    }
}

/// The one id among `ids` that starts with `prefix` (`what`: "complaint", ...; `list`:
/// the command that lists them), or an error saying there is none or several.
pub fn unique_id<'a>(
    ids: impl IntoIterator<Item = &'a String>,
    prefix: &str,
    what: &str,
    list: &str,
) -> Result<String> {
    let hits: Vec<&String> = ids.into_iter().filter(|k| k.starts_with(prefix)).collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no {what} {prefix:?} here; `{list}` lists them"),
        many => bail!(
            "{prefix:?} matches {} {what}s; type more of the id",
            many.len()
        ),
    }
}

/// Prints what a command did: the record as JSON, or one line for a person.
pub(crate) fn done<T: serde::Serialize>(ctx: &Ctx, record: &T, line: String) -> Result<ExitCode> {
    if ctx.json {
        print_json(record)?;
    } else {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The network document on this device.
pub(crate) fn network_ref(ws: &Workspace) -> Result<DocRef> {
    ws.config
        .documents()
        .into_iter()
        .find(|d| d.site.is_none())
        .ok_or_else(|| anyhow!("this device holds no network document; log in again"))
}
