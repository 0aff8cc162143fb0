//! `dealersync`: the field client of the dealersync sales network.
//!
//! Consultants and managers run it on laptops at roadshows and in distribution
//! centres. Everything but `login` and `sync` works from the documents stored on the
//! device, with no network; `sync` exchanges changes with the relay when there is one.

mod cli;
mod commands;
mod conflicts;
mod edit;
mod home;
mod output;
mod report;
mod store;
mod sync;
mod workspace;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEALERSYNC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
