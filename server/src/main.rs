//! `dealersync-server`: the relay binary. `serve` runs it; `doc create` adds a document
//! to the data directory (also while the server runs).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dealersync_core::protocol::DocumentId;
use dealersync_server::documents;
use dealersync_server::storage::{SqliteStore, StoreOptions};

#[derive(Parser)]
#[command(
    name = "dealersync-server",
    version,
    about = "dealersync relay: automerge-repo WebSocket sync with durable SQLite storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage documents in the data directory.
    Doc {
        #[command(subcommand)]
        command: DocCommand,
    },
}

#[derive(Subcommand)]
enum DocCommand {
    /// Create a document and print its id (bare automerge-repo id).
    Create {
        /// Data directory of the server.
        #[arg(long, env = "DEALERSYNC_DATA_DIR", default_value = "./dealersync-data")]
        data_dir: PathBuf,
        /// Use this id instead of a random one.
        #[arg(long)]
        id: Option<DocumentId>,
        /// Start from this file of automerge bytes instead of an empty document.
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Doc {
            command: DocCommand::Create { data_dir, id, from },
        } => {
            let store = SqliteStore::open(&data_dir, &StoreOptions::default())?;
            let bytes = match from {
                Some(path) => std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => documents::empty_document(),
            };
            let id = id.unwrap_or_else(DocumentId::random);
            documents::create(&store, &id, &bytes)?;
            println!("{id}");
            Ok(())
        }
    }
}
