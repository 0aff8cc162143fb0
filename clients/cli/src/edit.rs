//! Commands that change documents, through `core::domain`'s validated operations.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::*;
use crate::commands::Ctx;
use crate::home::DocRef;
use crate::workspace::Workspace;

fn pending() -> Result<ExitCode> {
    bail!("this command needs core::domain, which this build does not include yet")
}

/// `customer add|update|status|event`.
pub fn customer(_: &Workspace, _: &Ctx, _: &DocRef, _: CustomerCommand) -> Result<ExitCode> {
    pending()
}
/// `vehicle receive|reserve|release|sell|deliver|transfer`.
pub fn vehicle(_: &Workspace, _: &Ctx, _: &DocRef, _: VehicleCommand) -> Result<ExitCode> {
    pending()
}
/// `parts adjust`.
pub fn parts(_: &Workspace, _: &Ctx, _: &DocRef, _: PartsCommand) -> Result<ExitCode> {
    pending()
}
/// `forecast set`.
pub fn forecast(_: &Workspace, _: &Ctx, _: &DocRef, _: ForecastCommand) -> Result<ExitCode> {
    pending()
}
/// Open conflicts in one document.
pub fn open_conflicts(_: &Workspace, _: &DocRef) -> Result<usize> {
    Ok(0)
}
