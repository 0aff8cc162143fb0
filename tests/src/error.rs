//! Why a harness step failed, with what a developer needs to act on it.

use std::io::{self};

/// Why a harness step failed. Each variant carries what a developer needs to act on
/// it (the missing tool, the server's log tail, the client's stderr).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// node or npm is not installed; the interop tests need both.
    #[error(
        "`{tool}` is not available ({detail}); the interop tests need Node.js >= 18 and npm on PATH"
    )]
    MissingTool {
        /// The program that could not be run.
        tool: &'static str,
        /// What running it said.
        detail: String,
    },
    /// `npm ci` in tests/js failed; its output is included.
    #[error("`npm ci` in {dir} failed ({status}):\n{output}")]
    NpmInstall {
        /// The npm project directory.
        dir: String,
        /// npm's exit status.
        status: String,
        /// npm's stdout and stderr.
        output: String,
    },
    /// The headless browser is missing or its driver failed.
    #[error("browser: {0}")]
    Chromium(String),
    /// A workspace binary (the server, the field CLI) is not where cargo puts it.
    #[error(
        "binary not found at {path}: build it first (`cargo test --workspace` or `cargo build --workspace`), or point {env} at it"
    )]
    BinaryMissing {
        /// Where it was looked for.
        path: String,
        /// The variable that names another place.
        env: String,
    },
    /// The server exited or never answered /healthz in time.
    #[error("server did not become healthy: {reason}\n--- server log (tail) ---\n{log}")]
    ServerNotHealthy {
        /// What happened instead.
        reason: String,
        /// The end of the server's stdout/stderr.
        log: String,
    },
    /// An admin subcommand of the server binary failed.
    #[error("`dealersync-server {args}` failed ({status}):\n{output}")]
    AdminCommand {
        /// The arguments given.
        args: String,
        /// Its exit status.
        status: String,
        /// Its stdout and stderr.
        output: String,
    },
    /// The JS client answered a command with `ok: false`.
    #[error("JS client {client}: `{cmd}` failed with {kind}: {message}{stderr}")]
    JsCommand {
        /// The client's name.
        client: String,
        /// The command name.
        cmd: String,
        /// The error class the script reports (`timeout`, `unavailable`, ...).
        kind: String,
        /// Its message.
        message: String,
        /// The end of the client's stderr when the failure was a timeout (set
        /// `DEBUG=automerge-repo:*` to have automerge-repo log there).
        stderr: String,
    },
    /// The JS client did not answer in time, or died.
    #[error("JS client {client}: {what}\n--- client stderr (tail) ---\n{stderr}")]
    JsProcess {
        /// The client's name.
        client: String,
        /// What went wrong.
        what: String,
        /// The end of the client's stderr.
        stderr: String,
    },
    /// The Rust engine client failed: no handshake, a closed socket, a missed deadline.
    #[error("Rust client {client}: {what}")]
    RustClient {
        /// The client's name.
        client: String,
        /// What went wrong.
        what: String,
    },
    /// An answer did not have the expected shape.
    #[error("unexpected answer from {0}: {1}")]
    BadAnswer(String, String),
    /// Spawning or talking to a child process failed.
    #[error("{0}: {1}")]
    Io(String, #[source] io::Error),
}

impl HarnessError {
    /// The error class a failed JS command reported (`timeout`, `unavailable`, ...).
    pub fn js_kind(&self) -> Option<&str> {
        match self {
            HarnessError::JsCommand { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// Shorthand for harness results.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
    let what = what.into();
    move |e| HarnessError::Io(what, e)
}
