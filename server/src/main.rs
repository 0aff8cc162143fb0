//! `dealersync-server`: the relay binary. `serve` runs it; `doc create` adds a document
//! to the data directory (also while the server runs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dealersync_core::protocol::DocumentId;
use dealersync_server::server::{self, ServeOptions};
use dealersync_server::storage::{Durability, SqliteStore, StoreOptions};
use dealersync_server::ws::Limits;
use dealersync_server::{documents, telemetry};

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
    /// Run the relay.
    Serve(ServeArgs),
    /// Manage documents in the data directory.
    Doc {
        #[command(subcommand)]
        command: DocCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "DEALERSYNC_LISTEN", default_value = "127.0.0.1:3030")]
    listen: SocketAddr,
    /// Directory for dealersync.db (created if missing).
    #[arg(long, env = "DEALERSYNC_DATA_DIR", default_value = "./dealersync-data")]
    data_dir: PathBuf,
    /// Log JSON lines instead of text (level from RUST_LOG).
    #[arg(long, env = "DEALERSYNC_LOG_JSON")]
    log_json: bool,
    /// Largest WebSocket frame accepted: bytes, or with a KiB/MiB/GiB suffix.
    #[arg(long, env = "DEALERSYNC_MAX_FRAME_BYTES", default_value = "16MiB", value_parser = parse_size)]
    max_frame_bytes: usize,
    /// Messages per second a connection may send (bursts of one second's worth).
    #[arg(long, env = "DEALERSYNC_MAX_MESSAGES_PER_SEC", default_value_t = 1000)]
    max_messages_per_sec: u32,
    /// Unload a document from memory after this many seconds without connections.
    #[arg(long, env = "DEALERSYNC_IDLE_UNLOAD_SECS", default_value_t = 300)]
    idle_unload_secs: u64,
    /// Seconds between keepalive pings; a peer silent for two intervals is dropped.
    #[arg(long, env = "DEALERSYNC_PING_INTERVAL_SECS", default_value_t = 20)]
    ping_interval_secs: u64,
    /// How long a commit waits for a database lock held by another process (for
    /// example `doc create` or a backup) before it fails as `busy`.
    #[arg(long, env = "DEALERSYNC_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    busy_timeout_ms: u64,
    /// UNSAFE: SQLite synchronous=NORMAL. Faster, but changes already acknowledged to
    /// clients can be lost on power failure or OS crash.
    #[arg(long, env = "DEALERSYNC_UNSAFE_SYNCHRONOUS_NORMAL")]
    unsafe_synchronous_normal: bool,
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

/// Parses `16777216`, `16MiB`, `512KiB`, `1GiB`.
fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 16MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}; use KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s} is too large"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
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

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init_tracing(args.log_json);
    let metrics = telemetry::install_metrics()?;
    let options = ServeOptions {
        listen: args.listen,
        data_dir: args.data_dir,
        durability: if args.unsafe_synchronous_normal {
            Durability::Normal
        } else {
            Durability::Full
        },
        limits: Limits {
            max_frame_bytes: args.max_frame_bytes,
            max_messages_per_sec: args.max_messages_per_sec,
            ping_interval: Duration::from_secs(args.ping_interval_secs.max(1)),
            ..Limits::default()
        },
        idle_unload: Duration::from_secs(args.idle_unload_secs),
        busy_timeout: Duration::from_millis(args.busy_timeout_ms),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(server::serve(options, metrics, server::shutdown_signal()))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }
}
