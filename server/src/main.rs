//! `dealersync-server`: the relay binary. `serve` runs it (every connection and API
//! call needs a token; `--demo` seeds a demo network and prints a token per role);
//! `token`, `sign-in-code`, `revoke` and `site` administer the data directory; `archive` carries
//! every site over into a new month; `doc create` adds a bare
//! document (admins only can sync it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use std::ffi::OsString;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use dealersync_core::protocol::DocumentId;
use dealersync_core::protocol::SyncLimits;
use dealersync_server::api::{self, ApiState, RevokeArgs, SiteCommand, TokenArgs};
use dealersync_server::auth::keys::KeysCommand;
use dealersync_server::auth::{AuthArgs, Authenticator};
use dealersync_server::config_file::{self, ConfigFile};
use dealersync_server::discovery::{AdvertiseArgs, Advertiser};
use dealersync_server::listener::ConnectionLimits;
use dealersync_server::registry::{DocumentWriter, Registry, StoreDocuments};
use dealersync_server::relay::RelayDocuments;
use dealersync_server::server::{self, ServeOptions};
use dealersync_server::storage::{Durability, SqliteStore, StoreOptions};
use dealersync_server::tls::TlsFiles;
use dealersync_server::trust::{self, TrustLink, TrustRefreshArgs};
use dealersync_server::upstream::{self, UpstreamArgs, UpstreamConfig};
use dealersync_server::ws::Limits;
use dealersync_server::{backup, demo, documents, late_forward, reports_api, telemetry};

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
    /// Check the configuration `serve` would run with (file, environment, flags) and
    /// print every setting with where it came from; explains each mistake.
    CheckConfig(ServeArgs),
    /// Manage documents in the data directory.
    Doc {
        #[command(subcommand)]
        command: DocCommand,
    },
    /// Issue a token and print the JWT alone on stdout.
    Token {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        token: TokenArgs,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Issue a one-time sign-in code (and its link) for a person or a phone: the code
    /// on the first line, the link on the second.
    SignInCode {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        code: dealersync_server::signin::SignInCodeArgs,
    },
    /// Revoke one token (`--jti`) or every token of a device (`--device`).
    Revoke {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        revoke: RevokeArgs,
    },
    /// List, rotate or retire the relay's token signing keys (`keys list`, `keys
    /// rotate`, `keys retire <kid>`); works while the relay runs.
    Keys {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Add or list sites.
    Site {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Carry every site over into a new month: each site's document becomes the
    /// month's archive and a new working document starts (docs/growth.md). Run it at
    /// the month's start; a second run for the same month does nothing.
    Archive {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        archive: dealersync_server::archive::ArchiveArgs,
    },
    /// Write a consistent backup of the data directory to one file (and FILE.sha256),
    /// while the relay keeps serving. The file holds the token signing secret: keep
    /// it as safe as the data directory.
    Backup {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file to create (never overwritten).
        #[arg(long)]
        to: PathBuf,
    },
    /// Check a backup file: checksum, SQLite integrity, every document loads.
    Verify {
        /// The backup file (its FILE.sha256 must be beside it).
        file: PathBuf,
    },
    /// Restore a backup into an empty data directory, then start the relay on it.
    Restore {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
    },
}

/// `--data-dir` for the admin subcommands.
#[derive(Args)]
struct DataDir {
    /// Data directory of the server.
    #[arg(
        long,
        env = "DEALERSYNC_DATA_DIR",
        default_value = "./dealersync-data",
        global = true
    )]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// A TOML file of settings, one key per flag (`listen = "0.0.0.0:443"`). Flags
    /// win over DEALERSYNC_* variables, which win over the file.
    #[arg(long, env = "DEALERSYNC_CONFIG")]
    config: Option<PathBuf>,
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
    /// Largest change accepted, uncompressed: bytes, or with a KiB/MiB/GiB suffix.
    #[arg(long, env = "DEALERSYNC_MAX_CHANGE_BYTES", default_value = "1MiB", value_parser = parse_size)]
    max_change_bytes: usize,
    /// Most operations in one change.
    #[arg(long, env = "DEALERSYNC_MAX_CHANGE_OPS", default_value_t = 100_000)]
    max_change_ops: u64,
    /// Most new changes in one sync message.
    #[arg(
        long,
        env = "DEALERSYNC_MAX_CHANGES_PER_MESSAGE",
        default_value_t = 50_000
    )]
    max_changes_per_message: u64,
    /// Most operations of new changes in one sync message.
    #[arg(
        long,
        env = "DEALERSYNC_MAX_OPS_PER_MESSAGE",
        default_value_t = 500_000
    )]
    max_ops_per_message: u64,
    /// Most bytes a sync message may inflate to (compressed changes and documents).
    #[arg(long, env = "DEALERSYNC_MAX_INFLATED_BYTES", default_value = "64MiB", value_parser = parse_size)]
    max_inflated_bytes: usize,
    /// Most operations (or changes) in a whole document sent in one sync message.
    #[arg(long, env = "DEALERSYNC_MAX_DOCUMENT_OPS", default_value_t = 5_000_000)]
    max_document_ops: u64,
    /// Largest stored document: changes that would grow one past it are refused.
    /// Keep it below --max-frame-bytes so a new device's first sync fits one frame.
    #[arg(long, env = "DEALERSYNC_MAX_DOCUMENT_BYTES", default_value = "12MiB", value_parser = parse_size)]
    max_document_bytes: usize,
    /// Messages per second a connection may send (bursts of one second's worth).
    #[arg(long, env = "DEALERSYNC_MAX_MESSAGES_PER_SEC", default_value_t = 1000)]
    max_messages_per_sec: u32,
    /// Unload a document from memory after this many seconds without connections.
    #[arg(long, env = "DEALERSYNC_IDLE_UNLOAD_SECS", default_value_t = 300)]
    idle_unload_secs: u64,
    /// Memory budget: at most this many documents in memory; documents without
    /// connections are unloaded least recently used first (0 = no limit).
    #[arg(long, env = "DEALERSYNC_MAX_LOADED_DOCS", default_value_t = 0)]
    max_loaded_docs: usize,
    /// Sync engine threads; each document lives on one, chosen by its id, so one
    /// document's expensive messages hold back only the documents of its shard
    /// (0 = one per core, at least 2).
    #[arg(long, env = "DEALERSYNC_ENGINE_SHARDS", default_value_t = 0)]
    engine_shards: usize,
    /// Seconds between keepalive pings; a peer silent for two intervals is dropped.
    #[arg(long, env = "DEALERSYNC_PING_INTERVAL_SECS", default_value_t = 20)]
    ping_interval_secs: u64,
    /// How long a commit waits for a database lock held by another process (for
    /// example `doc create` or a backup) before it fails as `busy`.
    #[arg(long, env = "DEALERSYNC_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    busy_timeout_ms: u64,
    /// Seed a demo network into an empty data directory (or reuse the one seeded
    /// earlier) and print a token per role and the URLs.
    #[arg(long, env = "DEALERSYNC_DEMO")]
    demo: bool,
    /// Seconds a client may take to send a request's headers (from connecting, or
    /// from its previous request); a silent connection is closed after this long.
    #[arg(long, env = "DEALERSYNC_HEADER_TIMEOUT_SECS", default_value_t = 10.0)]
    header_timeout_secs: f64,
    /// Seconds an upgraded WebSocket may take to send its `join`.
    #[arg(long, env = "DEALERSYNC_JOIN_TIMEOUT_SECS", default_value_t = 10.0)]
    join_timeout_secs: f64,
    /// Connections held at once (0 = derived from the file descriptor limit, keeping
    /// a tenth of it, at least 96, for the database, /healthz and the API).
    #[arg(long, env = "DEALERSYNC_MAX_CONNECTIONS", default_value_t = 0)]
    max_connections: usize,
    /// Connections held at once from one client address.
    #[arg(long, env = "DEALERSYNC_MAX_CONNECTIONS_PER_IP", default_value_t = 512)]
    max_connections_per_ip: usize,
    /// Serve HTTPS/WSS with this PEM certificate chain (with --tls-key). SIGHUP
    /// reloads both files without dropping connections.
    #[arg(long, env = "DEALERSYNC_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "DEALERSYNC_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    upstream: UpstreamArgs,
    #[command(flatten)]
    trust_refresh: TrustRefreshArgs,
    #[command(flatten)]
    advertise: AdvertiseArgs,
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
    let argv: Vec<OsString> = std::env::args_os().collect();
    // The configuration file becomes environment variables the environment does not
    // set, before clap reads flags and environment: one parser, one precedence.
    let runs_relay = matches!(
        argv.get(1).and_then(|a| a.to_str()),
        Some("serve" | "check-config")
    );
    let file = match config_file::config_path(&argv).filter(|_| runs_relay) {
        Some(path) => {
            let serve = Cli::command()
                .find_subcommand("serve")
                .cloned()
                .expect("serve is a subcommand");
            Some(ConfigFile::load(&path, &serve)?)
        }
        None => None,
    };
    // SAFETY: no other thread exists yet (the runtime starts in `serve`).
    let from_file = file
        .as_ref()
        .map(|f| unsafe { f.apply_to_env() })
        .unwrap_or_default();
    let matches = Cli::command().get_matches_from(&argv);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::CheckConfig(args) => {
            let sub = matches
                .subcommand_matches("check-config")
                .expect("parsed as check-config");
            check_config(&args, sub, file.as_ref(), &from_file)
        }
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
        Command::Token { dir, token, auth } => {
            let jwt = token.run(&dir.data_dir, auth.config()?)?;
            println!("{jwt}");
            Ok(())
        }
        Command::SignInCode { dir, code } => {
            let (issued, url) = code.run(&dir.data_dir)?;
            // The code, the browser's link, the phone app's link (for a QR code).
            let app = dealersync_server::signin::app_url(&code.base_url, &issued.code);
            println!("{}\n{url}\n{app}", issued.code);
            eprintln!(
                "good once, until {} (UTC)",
                chrono::DateTime::from_timestamp(issued.expires_at as i64, 0)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default()
            );
            Ok(())
        }
        Command::Revoke { dir, revoke } => {
            revoke.run(&dir.data_dir)?;
            Ok(())
        }
        Command::Keys { dir, command } => {
            print!("{}", command.run(&dir.data_dir)?);
            Ok(())
        }
        Command::Backup { dir, to } => {
            let report = dealersync_server::backup::backup(&dir.data_dir, &to)
                .with_context(|| format!("backup of {} failed", dir.data_dir.display()))?;
            print!("backup written and verified: {}", backup::describe(&report));
            Ok(())
        }
        Command::Verify { file } => {
            let report = dealersync_sqlite_store::backup::verify(&file)?;
            print!("backup is good: {}", backup::describe(&report));
            Ok(())
        }
        Command::Restore { dir, from } => {
            let report = dealersync_sqlite_store::backup::restore(&from, &dir.data_dir)
                .with_context(|| format!("restore into {} failed", dir.data_dir.display()))?;
            print!(
                "restored into {} (new relay storage id: devices send what the backup lacks): {}",
                dir.data_dir.display(),
                backup::describe(&report)
            );
            Ok(())
        }
        Command::Archive { dir, archive } => {
            print!(
                "{}",
                archive
                    .run(&dir.data_dir)
                    .with_context(|| format!("archive --month {} failed", archive.month))?
            );
            Ok(())
        }
        Command::Site { dir, command } => {
            let out = command.run(&dir.data_dir)?;
            print!("{out}");
            if !out.is_empty() && !out.ends_with('\n') {
                println!();
            }
            Ok(())
        }
    }
}

/// `check-config`: the options `serve` would build, the files they name checked, and
/// every setting printed with its source. Fails (non-zero) on the first mistake.
fn check_config(
    args: &ServeArgs,
    matches: &clap::ArgMatches,
    file: Option<&ConfigFile>,
    from_file: &[String],
) -> anyhow::Result<()> {
    let options = serve_options(args)?;
    if let Some(tls) = &options.tls {
        tls.load()
            .context("--tls-cert/--tls-key cannot serve TLS")?;
    }
    args.auth.config().context("the token settings")?;
    args.upstream.config().context("the upstream settings")?;
    let dir = &options.data_dir;
    if dir.exists() {
        anyhow::ensure!(
            dir.is_dir(),
            "--data-dir {} is not a directory",
            dir.display()
        );
        let probe = dir.join(".dealersync-check-config");
        std::fs::write(&probe, b"")
            .with_context(|| format!("--data-dir {} is not writable", dir.display()))?;
        let _ = std::fs::remove_file(probe);
    }
    match file {
        Some(f) => println!(
            "configuration file: {} ({} settings)",
            f.path.display(),
            f.entries.len()
        ),
        None => println!("configuration file: none (--config or DEALERSYNC_CONFIG)"),
    }
    let serve = Cli::command()
        .find_subcommand("check-config")
        .cloned()
        .expect("check-config is a subcommand");
    for arg in serve.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let id = arg.get_id().as_str();
        let mut value = matches
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy()).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        // A secret (the upstream token) is marked hide_env_values; never print it.
        if arg.is_hide_env_values_set() && !value.is_empty() {
            value = "***".into();
        }
        let env = env.to_string_lossy();
        let source = match matches.value_source(id) {
            Some(clap::parser::ValueSource::CommandLine) => "flag".to_string(),
            Some(clap::parser::ValueSource::EnvVariable) if from_file.iter().any(|e| *e == env) => {
                "config file".to_string()
            }
            Some(clap::parser::ValueSource::EnvVariable) => format!("environment ({env})"),
            Some(clap::parser::ValueSource::DefaultValue) => "default".to_string(),
            _ => continue,
        };
        println!("  {long:<28} {value:<32} {source}");
    }
    println!("ok: `serve` would start with these settings");
    Ok(())
}

/// Opens the registry and the token verifier of `data_dir` (creating the signing key
/// on first start), and with `--demo` seeds the demo network before the relay holds
/// any document; returns the banner's tokens to print once listening.
fn open_auth(
    data_dir: &Path,
    auth: &AuthArgs,
    demo: bool,
) -> anyhow::Result<(Arc<Registry>, Arc<Authenticator>, Option<demo::DemoSummary>)> {
    let registry = Arc::new(
        Registry::open_in(data_dir)
            .with_context(|| format!("cannot open the site registry in {}", data_dir.display()))?,
    );
    let authenticator = Arc::new(Authenticator::open(
        data_dir,
        auth.config()?,
        registry.clone(),
    )?);
    let summary = if demo {
        let store = Arc::new(SqliteStore::open(data_dir, &StoreOptions::default())?);
        let now = dealersync_core::time::now_ms();
        Some(demo::ensure_demo(
            &registry,
            &StoreDocuments(store),
            &authenticator,
            now,
        )?)
    } else {
        None
    };
    Ok((registry, authenticator, summary))
}

/// With `--upstream`: installs the upstream keys cached by the last run (so that the
/// relay verifies offline at once) and returns the link that keeps them fresh.
fn trust_link(
    args: &ServeArgs,
    upstream: Option<&UpstreamConfig>,
    auth: &Arc<Authenticator>,
    registry: &Arc<Registry>,
) -> anyhow::Result<Option<TrustLink>> {
    let Some(config) = upstream else {
        return Ok(None);
    };
    let cached = trust::load_cached_trust(&args.data_dir, &config.base, auth)?;
    tracing::info!(upstream = %config.base, cached_keys = cached, "running downstream of an upstream relay");
    let client = config
        .http_client(trust::REQUEST_TIMEOUT)
        .context("the upstream's HTTP client")?;
    Ok(Some(TrustLink::new(
        &config.base,
        &config.token,
        client,
        &args.data_dir,
        auth.clone(),
        registry.clone(),
    )?))
}

/// With `--advertise`: the relay's DNS-SD advertisement on the LAN.
fn advertise(args: &ServeArgs, registry: &Registry) -> anyhow::Result<Option<Advertiser>> {
    if !args.advertise.advertise {
        return Ok(None);
    }
    let store = SqliteStore::open(&args.data_dir, &StoreOptions::default())?;
    let root = registry
        .sites()?
        .into_iter()
        .find(|s| s.parent.is_none())
        .map(|s| s.id);
    let advert = dealersync_core::discovery::RelayAdvert {
        storage_id: store.relay_storage_id()?.to_string(),
        subtree: dealersync_server::discovery::subtree_root(
            args.upstream.upstream_token.as_deref(),
            root.as_deref(),
        ),
        upstream: args.upstream.upstream.is_some(),
        tls: args.tls_cert.is_some(),
    };
    let name = args
        .advertise
        .advertise_name
        .clone()
        .unwrap_or_else(dealersync_server::discovery::default_name);
    Ok(Some(Advertiser::start(&name, args.listen, &advert)?))
}

/// The relay's options from the parsed flags (and so from the environment and the
/// configuration file): one place, for `serve` and `check-config`.
fn serve_options(args: &ServeArgs) -> anyhow::Result<ServeOptions> {
    Ok(ServeOptions {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        durability: if args.unsafe_synchronous_normal {
            Durability::Normal
        } else {
            Durability::Full
        },
        limits: Limits {
            max_frame_bytes: args.max_frame_bytes,
            max_messages_per_sec: args.max_messages_per_sec,
            ping_interval: Duration::from_secs(args.ping_interval_secs.max(1)),
            sync: SyncLimits {
                max_change_bytes: args.max_change_bytes as u64,
                max_change_ops: args.max_change_ops,
                max_changes_per_message: args.max_changes_per_message,
                max_ops_per_message: args.max_ops_per_message,
                max_inflated_bytes: args.max_inflated_bytes as u64,
                max_document_ops: args.max_document_ops,
                max_document_bytes: args.max_document_bytes as u64,
            },
            join_timeout: seconds(args.join_timeout_secs)?,
            ..Limits::default()
        },
        connections: ConnectionLimits {
            header_read_timeout: seconds(args.header_timeout_secs)?,
            max_connections: (args.max_connections > 0).then_some(args.max_connections),
            max_connections_per_ip: args.max_connections_per_ip.max(1),
        },
        idle_unload: Duration::from_secs(args.idle_unload_secs),
        busy_timeout: Duration::from_millis(args.busy_timeout_ms),
        max_loaded_docs: (args.max_loaded_docs > 0).then_some(args.max_loaded_docs),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
        engine_shards: args.engine_shards,
    })
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init_tracing(args.log_json);
    telemetry::install_panic_hook();
    let metrics = telemetry::install_metrics()?;
    let options = serve_options(&args)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let upstream = args.upstream.config().context("the upstream settings")?;
    let (registry, auth, demo) = open_auth(&args.data_dir, &args.auth, args.demo)?;
    let trust_link = trust_link(&args, upstream.as_ref(), &auth, &registry)?;
    // Withdrawn when dropped, as `serve` returns.
    let _advertiser = advertise(&args, &registry)?;
    let refresh = seconds(args.trust_refresh.upstream_trust_refresh_secs)?;
    let data_dir = args.data_dir.clone();
    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(server::serve_with(
            options,
            move |relay| {
                if let Some(link) = trust_link {
                    trust::spawn_trust_refresh(link, refresh);
                }
                let documents: Arc<dyn DocumentWriter> =
                    Arc::new(RelayDocuments::new(relay.clone()));
                let reports =
                    reports_api::start(auth.clone(), registry.clone(), &data_dir, relay, documents.clone());
                late_forward::start(registry.clone(), relay, documents.clone());
                let state = ApiState {
                    auth,
                    registry: registry.clone(),
                    documents,
                };
                let mut ext = api::extensions(state.clone());
                ext.routes = ext
                    .routes
                    .merge(upstream::attribution::router(state.clone()));
                if let Some(config) = upstream {
                    let link = upstream::start(config, relay.clone(), registry);
                    ext.routes = ext.routes.merge(upstream::router(state, link));
                }
                match reports {
                    Ok(routes) => ext.routes = ext.routes.merge(routes),
                    Err(e) => tracing::error!(error = %e, "cannot open the store for reports; /api/reports is off"),
                }
                ext
            },
            metrics,
            server::shutdown_signal(),
            move |addr| {
                if let Some(demo) = demo {
                    // The CLI's answer to `serve --demo`, not a log line.
                    println!(
                        "{}",
                        demo.banner(&format!("{scheme}://{}", banner_host(addr)))
                    );
                }
            },
        ))
}

/// A positive number of seconds from a flag.
fn seconds(s: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        s.is_finite() && s > 0.0 && s <= 86_400.0,
        "a timeout must be between 0 and 86400 seconds, not {s}"
    );
    Ok(Duration::from_secs_f64(s))
}

/// The address to print for connecting: a wildcard listen address is reachable on
/// loopback.
fn banner_host(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    }
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
