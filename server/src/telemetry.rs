//! Logs and metrics: tracing set-up and the Prometheus metric names the relay exports.
//!
//! Metric names are constants here so that docs/operations.md, the code and the tests
//! agree on one spelling.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Open WebSocket connections (gauge).
pub const CONNECTIONS: &str = "dealersync_connections";
/// WebSocket connections accepted since start (counter).
pub const CONNECTIONS_TOTAL: &str = "dealersync_connections_total";
/// Documents held in memory by the engine (gauge).
pub const DOCUMENTS_LOADED: &str = "dealersync_documents_loaded";
/// Messages received, by `type` (counter).
pub const MESSAGES_IN: &str = "dealersync_messages_in_total";
/// Bytes received, by `type` (counter).
pub const BYTES_IN: &str = "dealersync_bytes_in_total";
/// Messages sent, by `type` (counter).
pub const MESSAGES_OUT: &str = "dealersync_messages_out_total";
/// Bytes sent, by `type` (counter).
pub const BYTES_OUT: &str = "dealersync_bytes_out_total";
/// Seconds from a `sync` message received on a connection to the next `sync` message
/// the server sends back on it, durable commit included (histogram).
pub const SYNC_ROUND_SECONDS: &str = "dealersync_sync_round_seconds";
/// Seconds one group commit takes, fsync included (histogram).
pub const COMMIT_SECONDS: &str = "dealersync_storage_commit_seconds";
/// Changes (audit rows) per group commit (histogram).
pub const COMMIT_BATCH_CHANGES: &str = "dealersync_storage_commit_batch_changes";
/// Bytes of document chunks per group commit (histogram).
pub const COMMIT_BATCH_BYTES: &str = "dealersync_storage_commit_batch_bytes";
/// Errors, by `kind`: storage `full`/`busy`/`corrupt`/`io`, and per-connection
/// `frame_too_large`, `rate_limited`, `text_frame`, `slow_consumer`, `write_timeout`,
/// `dead_socket`, `unauthorized`, `join_timeout`, `token_revoked`, the accept loop's
/// `header_timeout`, `idle_evicted`, `too_many_connections[_per_ip]`, `accept`, and the
/// engine's `bad_frame`, `protocol`, `storage`,
/// `overloaded` closes (counter).
pub const ERRORS: &str = "dealersync_errors_total";

/// 1 while the sync engine runs, 0 once it has stopped on an internal error (gauge,
/// set when `/metrics` is read; `/healthz` answers 503 at the same time).
pub const ENGINE_HEALTHY: &str = "dealersync_engine_healthy";
/// Bytes free for the relay on the data directory's file system (gauge, read when
/// `/metrics` is read): commits fail as `full` when it reaches zero.
pub const DATA_FREE_BYTES: &str = "dealersync_data_free_bytes";
/// Bytes of the data directory's file system in all (gauge, with the above).
pub const DATA_TOTAL_BYTES: &str = "dealersync_data_total_bytes";
/// Changes accepted from peers (counter).
pub const CHANGES_APPLIED: &str = "dealersync_changes_applied_total";
/// Sync messages from read-only connections whose changes were rejected (counter).
pub const READ_ONLY_REJECTIONS: &str = "dealersync_read_only_rejections_total";
/// Sync messages for which automerge walked every ancestor of the peer's heads: the
/// engine's receive fast path could not show the walk unnecessary (counter; each
/// costs CPU in proportion to the document's history).
pub const ANCESTOR_WALKS: &str = "dealersync_sync_ancestor_walks_total";
/// Ephemeral messages relayed to other peers (counter).
pub const EPHEMERAL_RELAYED: &str = "dealersync_ephemeral_relayed_total";
/// Ephemeral messages dropped as duplicates (counter).
pub const EPHEMERAL_DUPLICATES: &str = "dealersync_ephemeral_duplicates_total";
/// A downstream relay: 1 while its link to the upstream relay is up (gauge).
pub const UPSTREAM_CONNECTED: &str = "dealersync_upstream_connected";
/// A downstream relay: when a frame last came from the upstream, Unix seconds (gauge).
pub const UPSTREAM_LAST_CONTACT: &str = "dealersync_upstream_last_contact_timestamp_seconds";
/// A downstream relay: changes held here that the upstream has not acknowledged yet,
/// over every document it follows (gauge).
pub const UPSTREAM_UNACKNOWLEDGED: &str = "dealersync_upstream_unacknowledged_changes";
/// A downstream relay: connections opened to the upstream (counter).
pub const UPSTREAM_CONNECTS: &str = "dealersync_upstream_connects_total";
/// A downstream relay: bytes of frames sent to the upstream (counter).
pub const UPSTREAM_BYTES_SENT: &str = "dealersync_upstream_bytes_sent_total";
/// A downstream relay: bytes of frames received from the upstream (counter).
pub const UPSTREAM_BYTES_RECEIVED: &str = "dealersync_upstream_bytes_received_total";
/// An upstream relay: 1 while a downstream relay (labels `relay`, `site`: its relay
/// token's subject and site) has a sync connection open here (gauge).
pub const DOWNSTREAM_CONNECTED: &str = "dealersync_downstream_connected";
/// An upstream relay: when a frame last came from a downstream relay, Unix seconds,
/// kept across restarts (gauge; labels `relay`, `site`).
pub const DOWNSTREAM_LAST_CONTACT: &str = "dealersync_downstream_last_contact_timestamp_seconds";

/// Installs the global Prometheus recorder and describes the metrics.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let seconds = [
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    ];
    let counts = [
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0,
    ];
    let bytes = [1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(SYNC_ROUND_SECONDS.into()), &seconds)?
        .set_buckets_for_metric(Matcher::Full(COMMIT_SECONDS.into()), &seconds)?
        .set_buckets_for_metric(Matcher::Full(COMMIT_BATCH_CHANGES.into()), &counts)?
        .set_buckets_for_metric(Matcher::Full(COMMIT_BATCH_BYTES.into()), &bytes)?
        .install_recorder()?;
    describe();
    Ok(handle)
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(CONNECTIONS, "Open WebSocket connections");
    describe_counter!(CONNECTIONS_TOTAL, "WebSocket connections accepted");
    describe_gauge!(DOCUMENTS_LOADED, "Documents held in memory");
    describe_gauge!(
        ENGINE_HEALTHY,
        "1 while the sync engine runs, 0 after it failed"
    );
    describe_gauge!(
        DATA_FREE_BYTES,
        Unit::Bytes,
        "Bytes available on the data directory's file system"
    );
    describe_gauge!(
        DATA_TOTAL_BYTES,
        Unit::Bytes,
        "Size of the data directory's file system"
    );
    describe_counter!(MESSAGES_IN, "Messages received by type");
    describe_counter!(BYTES_IN, Unit::Bytes, "Bytes received by message type");
    describe_counter!(MESSAGES_OUT, "Messages sent by type");
    describe_counter!(BYTES_OUT, Unit::Bytes, "Bytes sent by message type");
    describe_histogram!(
        SYNC_ROUND_SECONDS,
        Unit::Seconds,
        "From a sync message received to the next sync message sent on the connection"
    );
    describe_histogram!(COMMIT_SECONDS, Unit::Seconds, "Group commit duration");
    describe_histogram!(COMMIT_BATCH_CHANGES, "Changes per group commit");
    describe_histogram!(
        COMMIT_BATCH_BYTES,
        Unit::Bytes,
        "Chunk bytes per group commit"
    );
    describe_counter!(ERRORS, "Errors by kind");
    describe_counter!(CHANGES_APPLIED, "Changes accepted from peers");
    describe_counter!(
        READ_ONLY_REJECTIONS,
        "Sync messages from read-only connections whose changes were rejected"
    );
    describe_counter!(
        ANCESTOR_WALKS,
        "Sync messages for which automerge walked the whole history of the peer's heads"
    );
    describe_counter!(EPHEMERAL_RELAYED, "Ephemeral messages relayed");
    describe_gauge!(
        UPSTREAM_CONNECTED,
        "1 while the link to the upstream relay is up"
    );
    describe_gauge!(
        UPSTREAM_LAST_CONTACT,
        Unit::Seconds,
        "When a frame last came from the upstream relay (Unix time)"
    );
    describe_gauge!(
        DOWNSTREAM_CONNECTED,
        "1 while the downstream relay has a sync connection open here"
    );
    describe_gauge!(
        DOWNSTREAM_LAST_CONTACT,
        Unit::Seconds,
        "When a frame last came from the downstream relay (Unix time, kept across restarts)"
    );
    describe_gauge!(
        UPSTREAM_UNACKNOWLEDGED,
        "Changes held here that the upstream relay has not acknowledged"
    );
    describe_counter!(
        UPSTREAM_CONNECTS,
        "Connections opened to the upstream relay"
    );
    describe_counter!(
        UPSTREAM_BYTES_SENT,
        Unit::Bytes,
        "Bytes sent to the upstream relay"
    );
    describe_counter!(
        UPSTREAM_BYTES_RECEIVED,
        Unit::Bytes,
        "Bytes received from the upstream relay"
    );
    describe_counter!(
        EPHEMERAL_DUPLICATES,
        "Ephemeral messages dropped as duplicates"
    );
    // Present from the first scrape, so dashboards and alerts see 0 rather than nothing.
    metrics::gauge!(CONNECTIONS).set(0.0);
    metrics::counter!(CONNECTIONS_TOTAL).absolute(0);
}

/// Counts one error of `kind`.
pub fn count_error(kind: &'static str) {
    metrics::counter!(ERRORS, "kind" => kind).increment(1);
}

/// Routes panic messages to the log, at most one a second (with the count of those
/// not logged). A panic the relay contains (automerge refusing a peer's bytes by
/// panicking, caught by the validator or the engine loop) must not let a peer fill
/// the log or stderr with one message per frame; its reason reaches the peer anyway.
pub fn install_panic_hook() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_SECOND: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    std::panic::set_hook(Box::new(|info| {
        let now = dealersync_core::time::now_ms().max(0) as u64 / 1000;
        if LAST_SECOND.swap(now, Ordering::AcqRel) == now {
            SUPPRESSED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            suppressed,
            "panic: {}",
            clip(&info.to_string())
        );
    }));
}

/// Sets up tracing: level from `RUST_LOG` (default `info`), JSON lines if asked.
/// The log filter when `RUST_LOG` is not set. automerge instruments some of its
/// functions with INFO spans whose fields are its arguments' `Debug` output (whole
/// load options, hash lists); at INFO the subscriber formats them on every call, which
/// was a sixth of the relay's CPU per ingested change. Its warnings still show.
pub const DEFAULT_LOG_FILTER: &str = "info,automerge=warn";

pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    // Colours only on a terminal: journald, log files and the tests' log tails get
    // plain text, not escape sequences.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init();
    } else {
        builder.init();
    }
}

/// Publishes what one engine's own counters grew by since `before` (each engine
/// shard counts its own; the metrics are their sum).
pub fn export_engine_stats(
    before: &dealersync_core::protocol::EngineStats,
    now: &dealersync_core::protocol::EngineStats,
) {
    let grew = |a: u64, b: u64| b.saturating_sub(a);
    metrics::counter!(CHANGES_APPLIED).increment(grew(before.changes_applied, now.changes_applied));
    metrics::counter!(READ_ONLY_REJECTIONS)
        .increment(grew(before.read_only_rejections, now.read_only_rejections));
    metrics::counter!(ANCESTOR_WALKS).increment(grew(before.ancestor_walks, now.ancestor_walks));
    metrics::counter!(EPHEMERAL_RELAYED)
        .increment(grew(before.ephemeral_relayed, now.ephemeral_relayed));
    metrics::counter!(EPHEMERAL_DUPLICATES)
        .increment(grew(before.ephemeral_duplicates, now.ephemeral_duplicates));
}

/// Most characters of peer-supplied text that [`clip`] keeps.
pub const CLIP_CHARS: usize = 80;

/// Text from a peer made safe for a log line or an error message: at most
/// [`CLIP_CHARS`] characters, control characters escaped, and when cut an ellipsis and
/// the original length in bytes. Any token holder can send ids and texts of any
/// length; without this, each one would be copied into every log line that names it.
pub fn clip(s: &str) -> String {
    clip_to(s, CLIP_CHARS)
}

/// [`clip`] to `max_chars` characters: for error messages that quote input inside a
/// longer explanation (a JSON body rejected by serde names the bad value).
pub fn clip_to(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 4) + 24);
    for (n, c) in s.chars().enumerate() {
        if n == max_chars {
            out.push_str(&format!("… ({} bytes)", s.len()));
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// (available, total) bytes of the file system holding `dir`; `None` if it cannot be
/// read.
pub fn disk_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: statvfs writes only into the struct we pass, for a NUL-terminated path.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
        let frsize = st.f_frsize as u64;
        #[allow(clippy::unnecessary_cast)]
        Some((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_with_its_length() {
        assert_eq!(clip("peer-1"), "peer-1");
        assert_eq!(clip(""), "");
        let exact = "a".repeat(CLIP_CHARS);
        assert_eq!(clip(&exact), exact);
        let long = "x".repeat(1_000_000);
        let c = clip(&long);
        assert_eq!(c, format!("{}… (1000000 bytes)", "x".repeat(CLIP_CHARS)));
        // Characters, not bytes: a cut never splits a multi-byte character.
        let wide = "王".repeat(200);
        assert_eq!(
            clip(&wide),
            format!("{}… (600 bytes)", "王".repeat(CLIP_CHARS))
        );
    }

    #[test]
    fn clip_escapes_control_characters() {
        assert_eq!(clip("a\nb\u{0}c\u{1b}[2J"), "a\\nb\\u{0}c\\u{1b}[2J");
        assert_eq!(clip_to("abcdef", 3), "abc… (6 bytes)");
    }
}
